//! rrun without root on netd's networks (issue 12), end to end: an unprivileged user (uid and
//! gid 65534 through setpriv, given the socket's group or not) runs rrun in a throwaway host
//! namespace with a netd of the test's own (netd_common; the outside is 198.18.0.2 there,
//! nothing leaves the machine). The container gets its address, route, /etc/hosts and
//! resolv.conf; two containers of the user reach each other on a user network; a published
//! host port from 1024 answers; the network is released at exit, stop, rm and after rrun was
//! killed; and each refusal (not in the socket's group, a port below 1024, no such network,
//! no netd, a namespace not the user's) is one line naming the fix. Without --net, a user
//! netd does not serve runs with --net none and a note where pasta cannot start. netd holds nothing of the test's
//! containers afterwards: no lease, veth or published-port rule.

mod netd_common;
mod rrun_common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use netd_common::Host;
use rbox_tests::{alpine_fixture, bin, Scratch};
use rrun_common::{eventually, output};

const UID: u32 = 65534;
/// The socket's group: the user is given it (supplementary) or not.
const SOCKET_GID: u32 = 100;

/// A netd whose socket is open to group [`SOCKET_GID`], and a store of the user's with an
/// Alpine image.
struct Lab {
    h: Host,
    store: PathBuf,
    image: String,
    _scratch: Scratch,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        let mut h = Host::new(tag);
        h.write_config(&format!("socket_group = \"{SOCKET_GID}\"\n"));
        h.start_netd();
        let scratch = Scratch::new(&format!("rlbridge-{tag}"));
        let own = |p: &Path| std::os::unix::fs::chown(p, Some(UID), Some(UID)).unwrap();
        let store = scratch.join("store");
        std::fs::create_dir(&store).unwrap();
        own(&store);
        own(scratch.path());
        let tgz = scratch.join("alpine.tar.gz");
        std::fs::copy(alpine_fixture("3.15.11"), &tgz).unwrap();
        own(&tgz);
        let mut lab = Lab {
            h,
            store,
            image: String::new(),
            _scratch: scratch,
        };
        let layer = ok(lab.user(true, "rbuild", &["layer", "add", tgz.to_str().unwrap()]));
        lab.image = ok(lab.user(true, "rbuild", &["image", "create", &layer]));
        lab
    }

    /// `program ARGS` as the user (with the socket's group or without) in the host namespace.
    fn cmd(&self, in_group: bool, program: &str, args: &[&str]) -> Command {
        self.cmd_via(in_group, &[], program, args)
    }

    /// As [`Lab::cmd`], with `via` (a command line that execs what follows it, such as
    /// `/usr/bin/env NAME=VALUE`) between setpriv and the program.
    fn cmd_via(&self, in_group: bool, via: &[&str], program: &str, args: &[&str]) -> Command {
        let mut c = rbox_tests::command("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.h.ns))
            .arg("setpriv")
            .arg(format!("--reuid={UID}"))
            .arg(format!("--regid={UID}"));
        match in_group {
            true => c.arg(format!("--groups={SOCKET_GID}")),
            false => c.arg("--clear-groups"),
        };
        c.arg("--").args(via).arg(bin(program)).args(args);
        c.env("RBOX_ROOT", &self.store)
            .env("RBOX_NETD_SOCKET", self.h.socket())
            .env_remove("RBOX_RINIT")
            .current_dir("/");
        c
    }

    /// As [`Lab::cmd`] for rrun, with PATH empty of helpers for rrun alone (so that pasta,
    /// the default network where netd does not serve the user, cannot start).
    fn rrun_without_pasta(&self, in_group: bool, args: &[&str]) -> Command {
        self.cmd_via(
            in_group,
            &["/usr/bin/env", "PATH=/nonexistent"],
            "rrun",
            args,
        )
    }

    fn user(&self, in_group: bool, program: &str, args: &[&str]) -> Output {
        output(self.cmd(in_group, program, args), 90)
    }

    /// `rrun OPTS --image IMAGE -- ARGS` as the user in the socket's group.
    fn run(&self, opts: &[&str], args: &[&str]) -> Output {
        let mut a: Vec<&str> = opts.to_vec();
        a.extend(["--image", &self.image, "--"]);
        a.extend(args);
        self.user(true, "rrun", &a)
    }

    /// `rrun ARGS` as root (network create and rm are root's).
    fn root_rrun(&self, args: &[&str]) -> Output {
        let mut c = rbox_tests::command("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.h.ns))
            .arg(bin("rrun"))
            .args(args)
            .env("RBOX_ROOT", &self.store)
            .env("RBOX_NETD_SOCKET", self.h.socket());
        output(c, 60)
    }

    fn containers(&self) -> Vec<String> {
        std::fs::read_dir(self.store.join("containers"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// netd holds nothing of the test's containers: no lease, no veth (only the bridges
    /// are left of the host's links), no published port in its table; and no container
    /// folder is left in the store.
    fn assert_clean(&self, ports: &[u16]) {
        let h = &self.h;
        assert!(
            eventually(10, || h.lease_files().is_empty()),
            "leases left: {:?}\nnetd log:\n{}",
            h.lease_files(),
            h.log()
        );
        let veths: Vec<String> = h
            .links()
            .into_iter()
            .filter(|l| !l.starts_with(&h.prefix))
            .collect();
        assert!(veths.is_empty(), "links left: {veths:?}");
        let table = h.table_text();
        for p in ports {
            assert!(
                !table.contains(&format!("tcp . {p} :")),
                "rule for port {p} left:\n{table}"
            );
        }
        assert!(
            eventually(10, || self.containers().is_empty()),
            "container folders left: {:?}",
            self.containers()
        );
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "failed ({}): {}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Asserts a refusal: exit 125, one line on stderr holding every one of `want`.
fn refused(o: &Output, want: &[&str]) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    for w in want {
        assert!(err.contains(w), "{w:?} in: {err}");
    }
    err
}

#[test]
fn a_user_on_the_bridge_gets_an_address_route_hosts_and_resolv_conf() {
    let lab = Lab::new("rb");
    let script = "ip -o -4 addr show dev eth0; ip route; cat /etc/resolv.conf /etc/hosts; id -u";
    // Without --net: the default bridge, as for root, since netd serves this user.
    for opts in [
        &["--hostname", "rl1"][..],
        &["--hostname", "rl1", "--net", "bridge"],
    ] {
        let out = ok(lab.run(opts, &["sh", "-c", script]));
        assert!(out.contains("inet 10.77.0.2/24"), "{opts:?}: {out}");
        assert!(out.contains("default via 10.77.0.1 dev eth0"), "{out}");
        assert!(
            out.contains("nameserver 198.18.0.2"),
            "netd's resolver: {out}"
        );
        assert!(out.contains("10.77.0.2\trl1"), "{out}");
        assert!(out.ends_with("\n0"), "root inside: {out}");
        lab.assert_clean(&[]);
    }
    // The outside namespace (the "internet" of this test) answers through the bridge's NAT.
    let srv = lab.h.server(&lab.h.out, "tcp", "198.18.0.2", 7070, "OUT");
    let out = ok(lab.run(&[], &["sh", "-c", "nc -w 3 198.18.0.2 7070 </dev/null"]));
    assert_eq!(out, "OUT");
    drop(srv);
    lab.assert_clean(&[]);
}

#[test]
fn two_containers_of_a_user_reach_each_other_on_a_user_network() {
    let lab = Lab::new("rn");
    let net = rbox_tests::unique("un");
    ok(lab.root_rrun(&["network", "create", &net, "--subnet", "10.79.7.0/24"]));
    ok(lab.run(
        &["-d", "--name", "srv", "--net", &net],
        &["sh", "-c", "while true; do echo SRV | nc -l -p 8080; done"],
    ));
    let out = ok(lab.run(
        &["--net", &net],
        &[
            "sh",
            "-c",
            "ip -o -4 addr show dev eth0; ping -c 1 -W 3 srv >/dev/null && echo PING; nc -w 3 srv 8080 </dev/null",
        ],
    ));
    assert!(out.contains("inet 10.79.7.3/24"), "{out}");
    assert!(out.ends_with("PING\nSRV"), "by name, ping and TCP: {out}");
    ok(lab.user(true, "rrun", &["rm", "-f", "srv"]));
    lab.assert_clean(&[]);
    ok(lab.root_rrun(&["network", "rm", &net]));
}

#[test]
fn a_published_port_from_1024_answers_and_goes_with_stop_and_rm() {
    let lab = Lab::new("rp");
    ok(lab.run(
        &["-d", "--name", "web", "-p", "8080:80"],
        &["sh", "-c", "while true; do echo WEB | nc -l -p 80; done"],
    ));
    let (h, out) = (&lab.h, lab.h.out.clone());
    assert!(
        eventually(10, || h.fetch(&out, "tcp", "198.18.0.1", 8080) == "WEB"),
        "from outside"
    );
    let host = h.ns.clone();
    assert_eq!(
        h.fetch(&host, "tcp", "198.18.0.1", 8080),
        "WEB",
        "from the host itself"
    );
    assert_eq!(
        ok(lab.user(true, "rrun", &["port", "web"])),
        "80/tcp -> 0.0.0.0:8080"
    );
    assert!(
        h.table_text().contains("tcp . 8080 :"),
        "{}",
        h.table_text()
    );
    ok(lab.user(true, "rrun", &["stop", "-t", "2", "web"]));
    assert!(
        eventually(10, || h.lease_files().is_empty()),
        "stop released the lease: {:?}",
        h.lease_files()
    );
    assert_eq!(
        h.fetch(&out, "tcp", "198.18.0.1", 8080),
        "",
        "closed at stop"
    );
    ok(lab.user(true, "rrun", &["rm", "web"]));
    lab.assert_clean(&[8080]);

    // --rm and a port netd picks: gone at exit.
    let o = lab.run(&["--rm", "-p", "90"], &["true"]);
    ok(o);
    lab.assert_clean(&[]);
}

/// The host's own 127.0.0.1 reaches a user's published ports, given with 127.0.0.1 as HOSTIP
/// or with none (all of the host's addresses), as it reaches root's (netd_attach) and as
/// Docker's and Podman's answer on loopback; and the host's address still does.
#[test]
fn a_published_port_answers_on_the_hosts_loopback() {
    let lab = Lab::new("rl");
    let serve = ["sh", "-c", "while true; do echo WEB | nc -l -p 80; done"];
    ok(lab.run(&["-d", "--name", "lo", "-p", "127.0.0.1:8081:80"], &serve));
    ok(lab.run(&["-d", "--name", "all", "-p", "8082:80"], &serve));
    let (h, host) = (&lab.h, lab.h.ns.clone());
    for (addr, port) in [
        ("127.0.0.1", 8081),
        ("127.0.0.1", 8082),
        ("198.18.0.1", 8082),
    ] {
        assert!(
            eventually(10, || h.fetch(&host, "tcp", addr, port) == "WEB"),
            "from the host to {addr}:{port}\n{}",
            h.table_text()
        );
    }
    ok(lab.user(true, "rrun", &["rm", "-f", "lo", "all"]));
    lab.assert_clean(&[8081, 8082]);
}

#[test]
fn after_rrun_is_killed_stop_or_rm_release_everything() {
    let lab = Lab::new("rk");
    for end in ["rm", "stop"] {
        let mut c = lab.cmd(
            true,
            "rrun",
            &["-p", "9090:90", "--image", &lab.image, "--", "sleep", "100"],
        );
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = c.spawn().unwrap();
        assert!(
            eventually(20, || lab.h.table_text().contains("tcp . 9090 :")),
            "attached"
        );
        // nsenter and setpriv exec: the child's pid is rrun's.
        let _ = rbox_tests::command("kill")
            .args(["-KILL", &child.id().to_string()])
            .status();
        let _ = child.wait();
        let ids = lab.containers();
        assert_eq!(ids.len(), 1, "{ids:?}");
        match end {
            "rm" => ok(lab.user(true, "rrun", &["rm", "-f", &ids[0]])),
            _ => ok(lab.user(true, "rrun", &["stop", "-t", "1", &ids[0]])),
        };
        // The next command removes what is left.
        ok(lab.user(true, "rrun", &["ps", "-a"]));
        lab.assert_clean(&[9090]);
    }
}

#[test]
fn refusals_are_one_line_naming_the_fix_and_leave_nothing() {
    let lab = Lab::new("rr");
    let sock = lab.h.socket();
    let group = group_name(SOCKET_GID);

    // Not in the socket's group.
    let o = lab.user(
        false,
        "rrun",
        &["--net", "bridge", "--image", &lab.image, "--", "true"],
    );
    refused(
        &o,
        &[
            &format!("no permission to use netd's socket {}", sock.display()),
            &format!("open to group {group} only"),
            &format!("usermod -aG {group} nobody"),
        ],
    );
    lab.assert_clean(&[]);

    // Without --net, a user netd does not serve runs without a network, with a note, where
    // pasta cannot start (here: not on PATH; rrun_rootless_net tests the default to pasta).
    let c = lab.rrun_without_pasta(
        false,
        &[
            "--image",
            &lab.image,
            "--",
            "sh",
            "-c",
            "ip -o link | wc -l",
        ],
    );
    let o = output(c, 90);
    assert_eq!(ok(o.clone()), "1", "loopback only");
    assert!(
        stderr(&o).contains("has no network but loopback (--net none)")
            && stderr(&o).contains("is not open to you"),
        "{}",
        stderr(&o)
    );

    // A privileged host port.
    let o = lab.run(&["-p", "80:80"], &["true"]);
    refused(&o, &["-p 80:80: host port 80 is below 1024", "-p 8080:80"]);
    lab.assert_clean(&[]);

    // No such network: only root creates one.
    let o = lab.run(&["--net", "nosuchnet"], &["true"]);
    refused(
        &o,
        &[
            "no network nosuchnet",
            "ask root to create it (`rrun network create nosuchnet`)",
        ],
    );
    lab.assert_clean(&[]);

    // netd not running: with --net bridge a refusal, without --net a note.
    let mut c = lab.cmd(
        true,
        "rrun",
        &["--net", "bridge", "--image", &lab.image, "--", "true"],
    );
    let gone = lab.store.join("no-netd.sock");
    c.env("RBOX_NETD_SOCKET", &gone);
    refused(
        &output(c, 60),
        &["netd is not running", "start it with", "--net none"],
    );
    let mut c = lab.rrun_without_pasta(true, &["--image", &lab.image, "--", "true"]);
    c.env("RBOX_NETD_SOCKET", &gone);
    let o = output(c, 60);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("netd is not running (no listener at"),
        "{}",
        stderr(&o)
    );
    lab.assert_clean(&[]);
}

#[test]
fn a_network_namespace_the_user_does_not_own_is_refused_in_one_line() {
    let mut lab = Lab::new("ro");
    // A container whose record a hostile user edited to name a process of theirs that is
    // init of a pid namespace (as a container's is) but lives in a network namespace root
    // made (owned by the host's user namespace).
    ok(lab.run(&["--name", "f", "--net", "none"], &["true"]));
    let foreign = lab.h.container_ns();
    let mut unshare = rbox_tests::command("ip")
        .args(["netns", "exec", &foreign, "setpriv"])
        .arg(format!("--reuid={UID}"))
        .arg(format!("--regid={UID}"))
        .args(["--clear-groups", "--", "unshare", "-Urpf", "--kill-child"])
        .args(["sleep", "60"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let up = unshare.id();
    let children = format!("/proc/{up}/task/{up}/children");
    let mut pid = 0;
    assert!(
        eventually(10, || {
            let kids = std::fs::read_to_string(&children).unwrap_or_default();
            pid = kids.trim().parse().unwrap_or(0);
            pid > 0
                && std::fs::read_link(format!("/proc/{pid}/exe"))
                    .is_ok_and(|e| e.ends_with("sleep"))
        }),
        "the sleeping init"
    );
    let ids = lab.containers();
    let state = lab
        .store
        .join("containers")
        .join(&ids[0])
        .join("state.json");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let start: u64 = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    v["pid"] = pid.into();
    v["pid_start"] = start.into();
    v["finished"] = false.into();
    v["exit_code"] = serde_json::Value::Null;
    v["config"]["net"] = serde_json::json!("bridge");
    std::fs::write(&state, serde_json::to_vec(&v).unwrap()).unwrap();
    let o = lab.user(true, "rrun", &["network", "connect", "bridge", "f"]);
    refused(
        &o,
        &[
            "may attach only network namespaces owned by its own user namespaces",
            "attach a container that uid started, or run as root",
        ],
    );
    let _ = unshare.kill();
    let _ = unshare.wait();
    ok(lab.user(true, "rrun", &["rm", "-f", "f"]));
    lab.assert_clean(&[]);
}

/// The name of group `gid` in /etc/group, or the number (as rrun says it).
fn group_name(gid: u32) -> String {
    let text = std::fs::read_to_string("/etc/group").unwrap_or_default();
    text.lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2] == gid.to_string()).then(|| f[0].to_string())
        })
        .unwrap_or_else(|| gid.to_string())
}
