//! Rootless user-mode networks (issue 12): `--net pasta` and `--net slirp4netns` as an
//! unprivileged user. The container reaches a server in "the internet" and serves a port
//! published with `-p` to the host; refusals are one line; the helper process never outlives
//! the container, however it ends (run --rm, detached + stop + rm, rrun killed).
//!
//! The network (NETWORK SAFETY: nothing leaves the machine): the test makes a namespace H, the
//! user's "host", joined by a veth to a namespace I, "the internet" (198.18.0.1/24, H is
//! 198.18.0.2, default route via I), and runs the user's rrun inside H (nsenter --net), so the
//! helpers copy H's addresses and routes and every packet of the container ends in I.
//! A throwaway system user (useradd -r: no subordinate ids, the single-id map) runs rrun, so
//! that its processes are known to be the test's. rrun runs in a private mount namespace
//! where /dev/net/tun is mode 0666, as udev makes it (a machine without udev has the kernel's
//! 0600, which the helpers cannot open as a user; rrun's own refusal of that is tested too).

mod rrun_common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use rbox_tests::{alpine_fixture, bin, require_root, unique, Scratch};
use rrun_common::eventually;

/// Makes /dev/net/tun mode $TUN_MODE (666: usable by users) in this mount namespace, then
/// runs "$@" in netns $H.
const WRAP: &str = r#"set -e
d=$(mktemp -d)
mount -t tmpfs -o mode=755 tun "$d"
mknod -m "$TUN_MODE" "$d/tun" c 10 200
mount --bind "$d/tun" /dev/net/tun
umount -l "$d"
rmdir "$d"
exec nsenter --net="/run/netns/$H" "$@""#;

/// A throwaway system user (no /etc/subuid range), removed on drop.
struct User {
    name: String,
    uid: u32,
    gid: u32,
}

impl User {
    fn new() -> User {
        let name = unique("rln");
        let ok = rbox_tests::command("useradd")
            .args(["-r", "-M", "-N", "-s", "/bin/false", &name])
            .status()
            .unwrap()
            .success();
        assert!(ok, "useradd {name}");
        let id = |flag: &str| -> u32 {
            let o = rbox_tests::command("id")
                .args([flag, &name])
                .output()
                .unwrap();
            String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        User { name, uid, gid }
    }

    /// The pids of this user's processes.
    fn processes(&self) -> Vec<(i32, String)> {
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(st) = std::fs::read_to_string(e.path().join("status")) else {
                continue;
            };
            let uid = st
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next()?.parse::<u32>().ok());
            let zombie = st
                .lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'));
            if uid == Some(self.uid) && !zombie {
                let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
                out.push((pid, comm.trim().to_string()));
            }
        }
        out
    }
}

impl Drop for User {
    fn drop(&mut self) {
        rbox_tests::userdel(&self.name);
    }
}

/// The namespaces H ("the host") and I ("the internet"), removed on drop.
struct Nets {
    h: String,
    i: String,
}

impl Nets {
    fn new() -> Nets {
        let (h, i) = (unique("rlnH"), unique("rlnI"));
        let (vh, vi) = (unique("rlh"), unique("rli"));
        let n = Nets { h, i };
        let (h, i) = (n.h.as_str(), n.i.as_str());
        for args in [
            vec!["netns", "add", h],
            vec!["netns", "add", i],
            vec![
                "link", "add", &vh, "netns", h, "type", "veth", "peer", "name", &vi, "netns", i,
            ],
            vec!["-n", h, "addr", "add", "198.18.0.2/24", "dev", &vh],
            vec!["-n", h, "link", "set", &vh, "up"],
            vec!["-n", h, "link", "set", "lo", "up"],
            vec!["-n", h, "route", "add", "default", "via", "198.18.0.1"],
            vec!["-n", i, "addr", "add", "198.18.0.1/24", "dev", &vi],
            vec!["-n", i, "link", "set", &vi, "up"],
            vec!["-n", i, "link", "set", "lo", "up"],
        ] {
            let ok = rbox_tests::command("ip")
                .args(&args)
                .status()
                .unwrap()
                .success();
            assert!(ok, "ip {args:?}");
        }
        n
    }

    /// A command run in namespace `ns`.
    fn in_ns(ns: &str, program: &str) -> Command {
        let mut c = rbox_tests::command("nsenter");
        c.arg(format!("--net=/run/netns/{ns}")).arg(program);
        c
    }

    /// An HTTP server in I on 198.18.0.1:`port` serving `dir`; killed on drop.
    fn internet_server(&self, dir: &Path, port: u16) -> Server {
        let mut c = Nets::in_ns(&self.i, "python3");
        c.args(["-m", "http.server", "--bind", "198.18.0.1", "--directory"])
            .arg(dir)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let s = Server(c.spawn().unwrap());
        assert!(
            eventually(10, || self.fetch_in(&self.i, "198.18.0.1", port).is_some()),
            "the server in I does not answer"
        );
        s
    }

    /// What a TCP server at `addr:port`, reached from namespace `ns`, sends to a client that
    /// sends an HTTP GET (None: no connection or nothing read).
    fn fetch_in(&self, ns: &str, addr: &str, port: u16) -> Option<String> {
        let mut c = Nets::in_ns(ns, "python3");
        c.args([
            "-c",
            "import socket,sys\n\
             s=socket.create_connection((sys.argv[1],int(sys.argv[2])),3)\n\
             s.settimeout(3)\n\
             s.sendall(b'GET /hello HTTP/1.0\\r\\n\\r\\n')\n\
             d=b''\n\
             while True:\n\
             \x20   b=s.recv(4096)\n\
             \x20   if not b: break\n\
             \x20   d+=b\n\
             sys.stdout.write(d.decode())",
            addr,
            &port.to_string(),
        ]);
        let o = rrun_common::output(c, 20);
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        (o.status.success() && !text.is_empty()).then_some(text)
    }

    /// What a server in the container published on H's `addr:port` answers (waiting for it
    /// to listen, up to 10 s).
    fn fetch_published(&self, addr: &str, port: u16) -> String {
        let mut got = None;
        eventually(10, || {
            got = self.fetch_in(&self.h, addr, port);
            got.is_some()
        });
        got.unwrap_or_else(|| panic!("nothing answers on {addr}:{port} in H"))
    }
}

impl Drop for Nets {
    fn drop(&mut self) {
        for ns in [&self.h, &self.i] {
            let _ = rbox_tests::command("ip")
                .args(["netns", "del", ns])
                .status();
        }
    }
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The test's world: user, namespaces, a store with the Alpine image.
struct Lab {
    user: User,
    nets: Nets,
    store: PathBuf,
    image: String,
    _scratch: Scratch,
}

impl Lab {
    fn new() -> Lab {
        require_root();
        for tool in ["pasta", "slirp4netns", "python3", "nsenter", "useradd"] {
            let found = rbox_tests::command("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .unwrap()
                .success();
            assert!(found, "{tool} is missing: run .ci/deps.sh (passt, slirp4netns, python3, util-linux, passwd)");
        }
        let scratch = Scratch::new("rlnet");
        let user = User::new();
        let nets = Nets::new();
        let own = |p: &Path| std::os::unix::fs::chown(p, Some(user.uid), Some(user.gid)).unwrap();
        own(scratch.path());
        let store = scratch.join("store");
        std::fs::create_dir(&store).unwrap();
        own(&store);
        let fixture = scratch.join("alpine.tar.gz");
        std::fs::copy(alpine_fixture("3.15.11"), &fixture).unwrap();
        own(&fixture);
        let mut lab = Lab {
            user,
            nets,
            store,
            image: String::new(),
            _scratch: scratch,
        };
        let layer = lab.ok_prog("rbuild", &["layer", "add", fixture.to_str().unwrap()]);
        lab.image = lab.ok_prog("rbuild", &["image", "create", &layer]);
        lab
    }

    /// `program args` (one of the project's binaries) as the user, inside H, with a usable
    /// /dev/net/tun.
    fn cmd(&self, program: &str, args: &[&str]) -> Command {
        self.cmd_path(&bin(program), args)
    }

    /// As [`Lab::cmd`], for the program at `path`.
    fn cmd_path(&self, path: &Path, args: &[&str]) -> Command {
        let mut c = rbox_tests::command("unshare");
        c.args(["-m", "--", "sh", "-c", WRAP, "wrap", "setpriv"])
            .arg(format!("--reuid={}", self.user.uid))
            .arg(format!("--regid={}", self.user.gid))
            .args(["--clear-groups", "--"])
            .arg(path)
            .args(args);
        c.env("H", &self.nets.h)
            .env("TUN_MODE", "666")
            .env("RBOX_ROOT", &self.store)
            .env("HOME", "/nonexistent")
            .env_remove("RBOX_RINIT")
            .current_dir("/");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        rrun_common::output(self.cmd("rrun", args), 120)
    }

    fn ok_prog(&self, program: &str, args: &[&str]) -> String {
        let o = rrun_common::output(self.cmd(program, args), 120);
        assert!(
            o.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    fn ok(&self, args: &[&str]) -> String {
        self.ok_prog("rrun", args)
    }

    /// rrun's one-line refusal of `args`.
    fn refused(&self, args: &[&str]) -> String {
        refusal(&self.run(args))
    }

    /// Asserts that none of the user's processes is left (the helpers included).
    fn assert_no_processes(&self, when: &str) {
        let mut left = Vec::new();
        let gone = eventually(5, || {
            left = self.user.processes();
            left.is_empty()
        });
        assert!(gone, "{when}: processes left: {left:?}");
    }
}

/// The one line of a refusal on stderr (besides rrun's note that the user has no subordinate
/// ids, printed before the container is made).
fn refusal(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("rrun: note: /etc/subuid has no entry"))
        .collect();
    assert!(!o.status.success(), "accepted: {err}");
    assert_eq!(lines.len(), 1, "one line: {err}");
    lines[0].to_string()
}

/// The container reaches I, and the server it runs answers on the published port.
fn reaches_the_internet_and_publishes(mode: &str, resolver: &str) {
    let lab = Lab::new();
    let www = lab._scratch.join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("hello"), "hello from the internet\n").unwrap();
    let _server = lab.nets.internet_server(&www, 8000);

    // Outgoing: run --rm, the helper gone with the container.
    let out = lab.ok(&[
        "--rm",
        "--net",
        mode,
        "--hostname",
        "box",
        "--image",
        &lab.image,
        "--",
        "sh",
        "-c",
        "cat /etc/resolv.conf /etc/hosts; wget -q -T 10 -O - http://198.18.0.1:8000/hello",
    ]);
    assert!(out.contains("hello from the internet"), "{out}");
    assert!(out.contains(&format!("nameserver {resolver}")), "{out}");
    assert!(
        out.lines()
            .any(|l| l.ends_with("\tbox") && !l.starts_with("127.")),
        "/etc/hosts names the hostname with the container's address: {out}"
    );
    lab.assert_no_processes(&format!("--net {mode} run --rm"));

    // Published: a server in a detached container, reached from H on loopback and on H's
    // address; `rrun port` and inspect show it.
    let name = unique("pub");
    lab.ok(&[
        "-d",
        "--name",
        &name,
        "--net",
        mode,
        "-p",
        "18080:80",
        "--image",
        &lab.image,
        "--",
        "nc",
        "-lk",
        "-p",
        "80",
        "-e",
        "echo",
        "published hello",
    ]);
    for addr in ["127.0.0.1", "198.18.0.2"] {
        let got = lab.nets.fetch_published(addr, 18080);
        assert_eq!(got.trim(), "published hello", "from {addr}");
    }
    assert_eq!(lab.ok(&["port", &name]), "80/tcp -> 0.0.0.0:18080");
    let inspect: serde_json::Value = serde_json::from_str(&lab.ok(&["inspect", &name])).unwrap();
    assert_eq!(inspect["network"]["mode"], mode);
    assert_eq!(inspect["ports"][0]["host_port"], 18080);
    assert_eq!(inspect["ports"][0]["port"], 80);
    lab.ok(&["stop", "-t", "1", &name]);
    lab.assert_no_processes(&format!("--net {mode} detached, after stop"));
    lab.ok(&["rm", &name]);

    // A free host port is picked when -p names none.
    let name = unique("any");
    lab.ok(&[
        "-d", "--name", &name, "--net", mode, "-p", "80", "--image", &lab.image, "--", "nc", "-lk",
        "-p", "80", "-e", "echo", "any port",
    ]);
    let line = lab.ok(&["port", &name]);
    let port: u16 = line
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("rrun port: {line}"));
    assert_eq!(
        lab.nets.fetch_published("127.0.0.1", port).trim(),
        "any port"
    );
    lab.ok(&["rm", "-f", &name]);
    lab.assert_no_processes(&format!("--net {mode} after rm -f"));
}

#[test]
fn pasta_reaches_the_internet_and_publishes_ports() {
    reaches_the_internet_and_publishes("pasta", "169.254.1.1");
}

#[test]
fn slirp4netns_reaches_the_internet_and_publishes_ports() {
    reaches_the_internet_and_publishes("slirp4netns", "10.0.2.3");
}

/// Starts container `name` (`sleep SECS` on `--net mode`) and SIGKILLs its rrun once it runs
/// (every wrapper of [`Lab::cmd`] execs, so the signal reaches rrun itself).
fn kill_rrun_once_running(lab: &Lab, name: &str, mode: &str, secs: &str) {
    let mut rrun = lab.cmd(
        "rrun",
        &[
            "--name", name, "--net", mode, "--image", &lab.image, "--", "sleep", secs,
        ],
    );
    let mut child = rrun
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(eventually(20, || lab
        .run(&["inspect", name])
        .status
        .success()
        && lab.ok(&["inspect", name]).contains("\"running\"")));
    child.kill().unwrap();
    let _ = child.wait();
}

/// rrun killed with SIGKILL: `rm -f` of the running container, or the next command's tidy-up
/// once it ended by itself, stops the helper.
fn killed_rrun_leaves_no_helper(mode: &str) {
    let lab = Lab::new();
    // Running when rrun is killed, removed by rm -f.
    let name = unique("kil");
    kill_rrun_once_running(&lab, &name, mode, "1000");
    assert!(lab.ok(&["ps", "-a"]).contains(&name));
    lab.ok(&["rm", "-f", &name]);
    lab.assert_no_processes(&format!("--net {mode}, rrun killed, rm -f"));

    // Ended by itself after rrun was killed: `rrun ps -a` stops the helper.
    let name = unique("end");
    kill_rrun_once_running(&lab, &name, mode, "2");
    assert!(eventually(10, || lab
        .ok(&["inspect", &name])
        .contains("\"exited\"")));
    lab.ok(&["ps", "-a"]);
    lab.assert_no_processes(&format!(
        "--net {mode}, rrun killed, container ended, ps -a"
    ));
    lab.ok(&["rm", &name]);
}

#[test]
fn pasta_outlives_no_killed_rrun() {
    killed_rrun_leaves_no_helper("pasta");
}

#[test]
fn slirp4netns_outlives_no_killed_rrun() {
    killed_rrun_leaves_no_helper("slirp4netns");
}

/// rrun killed while pasta configures the namespace, before pasta says its pid: the next
/// command stops that pasta too. The pasta here is a stand-in that never finishes starting
/// (a script named pasta, as Debian's is named passt.avx2: a helper name either way).
#[test]
fn rrun_killed_while_pasta_starts_leaves_no_pasta() {
    let lab = Lab::new();
    let fake = lab._scratch.join("fakebin");
    std::fs::create_dir(&fake).unwrap();
    let pasta = fake.join("pasta");
    std::fs::write(
        &pasta,
        "#!/usr/bin/python3\nimport time\ntime.sleep(1000)\n",
    )
    .unwrap();
    // The lab's user runs it, whatever the runner's umask.
    use std::os::unix::fs::PermissionsExt;
    for p in [&fake, &pasta] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut c = lab.cmd_path(Path::new("/usr/bin/env"), &[]);
    c.arg(format!("PATH={}:/usr/bin:/bin", fake.display()))
        .arg(bin("rrun"))
        .args(["--net", "pasta", "--image", &lab.image, "--", "true"]);
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = eventually(20, || {
        lab.user.processes().iter().any(|(_, comm)| comm == "pasta")
    });
    child.kill().unwrap(); // SIGKILL to rrun itself (every wrapper execs it)
    let _ = child.wait();
    assert!(started, "the stand-in pasta never started");
    lab.ok(&["ps", "-a"]);
    lab.assert_no_processes("--net pasta, rrun killed while pasta started, ps -a");
}

#[test]
fn user_mode_network_refusals_are_one_line() {
    let lab = Lab::new();
    for (mode, package) in [("pasta", "passt"), ("slirp4netns", "slirp4netns")] {
        // The helper missing from PATH.
        let mut c = lab.cmd_path(Path::new("/usr/bin/env"), &[]);
        c.arg("PATH=/nonexistent")
            .arg(bin("rrun"))
            .args(["--rm", "--net", mode, "--image", &lab.image, "--", "true"]);
        let err = refusal(&rrun_common::output(c, 60));
        assert!(
            err.contains(&format!("install Debian's {package} package")),
            "{err}"
        );

        // A privileged host port.
        let err = lab.refused(&[
            "--rm", "--net", mode, "-p", "80:80", "--image", &lab.image, "--", "true",
        ]);
        assert!(err.contains("host port 80 is privileged"), "{err}");

        // A host port in use (a listener in H).
        let mut l = Nets::in_ns(&lab.nets.h, "python3");
        l.args(["-c", "import socket,time\ns=socket.socket()\ns.bind(('0.0.0.0',18090))\ns.listen()\nprint('up',flush=True)\ntime.sleep(60)"]);
        let (busy, up) = rrun_common::spawn_until_first_line(&mut l);
        let _busy = Server(busy);
        assert_eq!(up, "up");
        let err = lab.refused(&[
            "--rm", "--net", mode, "-p", "18090:80", "--image", &lab.image, "--", "true",
        ]);
        assert!(
            err.contains("host port 18090/tcp is already in use"),
            "{err}"
        );

        // /dev/net/tun as the kernel makes it without udev (0600): rrun's line, not pasta's.
        let mut c = lab.cmd(
            "rrun",
            &["--rm", "--net", mode, "--image", &lab.image, "--", "true"],
        );
        c.env("TUN_MODE", "600");
        let err = refusal(&rrun_common::output(c, 60));
        assert!(
            err.contains("needs /dev/net/tun readable and writable") && err.contains("mode 0600"),
            "{err}"
        );
    }
    let err = lab.refused(&[
        "--rm",
        "--net",
        "slirp4netns",
        "-p",
        "[::1]:18091:80",
        "--image",
        &lab.image,
        "--",
        "true",
    ]);
    assert!(
        err.contains("slirp4netns publishes on IPv4 host addresses only"),
        "{err}"
    );
    lab.assert_no_processes("after the refusals");
}

/// Without --net, a user whom netd does not serve (here: no netd at the socket's path) gets
/// pasta, as Podman's rootless default, and -p works on it; where pasta cannot start
/// (/dev/net/tun 0600), --net none with a note naming why.
#[test]
fn without_netd_the_default_network_is_pasta_else_none_with_a_note() {
    let lab = Lab::new();
    let gone = lab._scratch.join("no-netd.sock");
    let mut c = lab.cmd(
        "rrun",
        &[
            "--rm",
            "-p",
            "18094:80",
            "--image",
            &lab.image,
            "--",
            "sh",
            "-c",
            "grep nameserver /etc/resolv.conf; ip -o link | wc -l",
        ],
    );
    c.env("RBOX_NETD_SOCKET", &gone);
    let o = rrun_common::output(c, 120);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("nameserver 169.254.1.1"),
        "pasta's resolver: {out}"
    );
    assert_ne!(out.lines().last(), Some("1"), "more than loopback: {out}");
    assert!(!err.contains("note: the container has no network"), "{err}");

    let mut c = lab.cmd(
        "rrun",
        &[
            "--rm",
            "--image",
            &lab.image,
            "--",
            "sh",
            "-c",
            "ip -o link | wc -l",
        ],
    );
    c.env("RBOX_NETD_SOCKET", &gone).env("TUN_MODE", "600");
    let o = rrun_common::output(c, 120);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "1",
        "loopback only"
    );
    assert!(
        err.contains("has no network but loopback (--net none): netd is not running")
            && err.contains("pasta cannot start"),
        "{err}"
    );
    lab.assert_no_processes("after the default networks");
}

/// As root: slirp4netns works the same (a remapped container reaches I, publishes a port, no
/// slirp4netns left); pasta is refused in one line (it drops root's capabilities before it
/// opens the container's namespaces).
#[test]
fn as_root_slirp4netns_works_and_pasta_is_refused() {
    let lab = rrun_common::Lab::new("rlnroot");
    let nets = Nets::new();
    let www = lab.store.join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("hello"), "hello root\n").unwrap();
    let _server = nets.internet_server(&www, 8000);
    let rrun_in_h = |args: &[&str]| {
        let mut c = Nets::in_ns(&nets.h, bin("rrun").to_str().unwrap());
        c.env("RBOX_ROOT", lab.store.path()).args(args);
        rrun_common::output(c, 60)
    };
    let name = unique("rsl");
    let o = rrun_in_h(&[
        "-d",
        "--name",
        &name,
        "--net",
        "slirp4netns",
        "-p",
        "18081:80",
        "--image",
        &lab.image,
        "--",
        "sh",
        "-c",
        "wget -q -T 10 -O /tmp/got http://198.18.0.1:8000/hello; nc -lk -p 80 -e cat /tmp/got",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        nets.fetch_published("127.0.0.1", 18081).trim(),
        "hello root"
    );
    let inspect = rrun_in_h(&["inspect", &name]);
    let inspect: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let helper = inspect["network"]["helper"]["pid"].as_i64().unwrap() as i32;
    assert!(rrun_common::processes_with("slirp4netns").contains(&helper));
    assert!(rrun_in_h(&["rm", "-f", &name]).status.success());
    assert!(
        eventually(5, || !rrun_common::processes_with("slirp4netns")
            .contains(&helper)),
        "slirp4netns ({helper}) left"
    );

    let o = rrun_in_h(&[
        "--rm", "--net", "pasta", "--image", &lab.image, "--", "true",
    ]);
    assert!(refusal(&o).contains("--net pasta is for rootless containers"));
    lab.assert_clean(&[]);
}
