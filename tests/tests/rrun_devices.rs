//! rrun's device allowlist end to end: whatever device nodes reach a root container (shipped in
//! its image, on a volume, made with mknod), it may open only Docker's default devices; the
//! standard ones keep working, with and without a terminal, in every user mode, through exec.
//!
//! How each refusal is told apart: the device cgroup (v2 BPF program or v1 devices.list) answers
//! EPERM ("Operation not permitted"); a nodev mount answers EACCES ("Permission denied") before
//! the cgroup is asked. Image nodes sit on the nodev root overlay, so the tests that prove the
//! allowlist itself use a volume, which is not nodev (as with Docker's bind mounts): there only
//! the device cgroup stands between the container and the host's kvm, loop0 and kmsg.
//!
//! The nodes are chosen so that, without the allowlist, the open would succeed for any user
//! (mode 0666, no capability checked by the driver on open): kvm (c 10:232) and loop0 (b 7:0)
//! opened for reading, kmsg (c 1:11) opened for writing (reading it needs CAP_SYSLOG, which the
//! driver checks and answers EPERM itself; writing needs nothing, as review S1 showed). No test
//! ever reads from or writes to a host device: each open is closed at once.

mod rrun_common;

use std::path::Path;
use std::process::Stdio;

use rbox_tests::{cmd, Scratch};
use rrun_common::{line, output, wait_output, Lab};

const EPERM: &str = "Operation not permitted";
const EACCES: &str = "Permission denied";

/// For each path: "PATH=ok" if opening it works, else "PATH=" and the shell's reason (PATH as
/// written, unexpanded, so that "$t" can name a path the shell computes). Paths open for
/// reading, those ending in kmsg for writing (`>>`: no truncation, and nothing is written).
/// The open happens in a subshell (a failed `exec` redirection ends the shell it runs in).
fn try_open(paths: &[&str]) -> String {
    paths
        .iter()
        .map(|p| {
            let redir = if p.ends_with("kmsg") { ">>" } else { "<" };
            format!("if m=$( (exec 3{redir}{p}) 2>&1 ); then echo '{p}=ok'; else echo '{p}='\"$m\"; fi; ")
        })
        .collect()
}

/// The reason printed for `path` by [`try_open`]'s script.
fn verdict<'a>(out: &'a str, path: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{path}=")))
        .unwrap_or_else(|| panic!("no verdict for {path} in:\n{out}"))
}

/// Makes `name` in `dir` as a device node (char or block) major:minor with mode 0666.
fn mknod(dir: &Path, name: &str, kind: rustix::fs::FileType, major: u32, minor: u32) {
    let p = dir.join(name);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &p,
        kind,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(major, minor),
    )
    .unwrap_or_else(|e| panic!("mknod {}: {e}", p.display()));
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
}

/// A host folder (on the root filesystem: not nodev) holding kvm (c 10:232), kmsg (c 1:11) and
/// loop0 (b 7:0), mode 0666, for use as a volume.
fn host_nodes() -> Scratch {
    let s = Scratch::new("devvol");
    mknod(
        s.path(),
        "kvm",
        rustix::fs::FileType::CharacterDevice,
        10,
        232,
    );
    mknod(
        s.path(),
        "kmsg",
        rustix::fs::FileType::CharacterDevice,
        1,
        11,
    );
    mknod(s.path(), "loop0", rustix::fs::FileType::BlockDevice, 7, 0);
    s
}

/// The nodes of [`host_nodes`] as the container sees them under `dir`.
fn node_paths(dir: &str) -> Vec<String> {
    ["kvm", "kmsg", "loop0"]
        .iter()
        .map(|n| format!("{dir}/{n}"))
        .collect()
}

/// The user modes every check runs in: default (remap), --userns host, and a non-root user.
const MODES: [&[&str]; 3] = [&[], &["--userns", "host"], &["-u", "1000"]];

#[test]
fn host_device_nodes_on_a_volume_are_refused_by_the_device_cgroup_in_every_user_mode() {
    let lab = Lab::new("dev");
    let nodes = host_nodes();
    // The control: an unprivileged host user (nobody, no capabilities) opens the same nodes,
    // so the container's EPERM comes from its device cgroup, not from the node, the filesystem
    // or the driver.
    let paths = node_paths(&nodes.path().display().to_string());
    let host = rbox_tests::command("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--",
            "sh",
            "-c",
        ])
        .arg(try_open(
            &paths.iter().map(String::as_str).collect::<Vec<_>>(),
        ))
        .output()
        .expect("setpriv");
    let host = String::from_utf8_lossy(&host.stdout).into_owned();
    for p in &paths {
        assert_eq!(
            verdict(&host, p),
            "ok",
            "the host's nobody opens {p}:\n{host}"
        );
    }
    let vol = format!("{}:/hostdev", nodes.path().display());
    let inside = node_paths("/hostdev");
    let mut checks: Vec<&str> = inside.iter().map(String::as_str).collect();
    checks.push("/dev/null");
    for mode in MODES {
        let opts: Vec<&str> = mode.iter().copied().chain(["-v", &vol]).collect();
        let out = lab.ok(&opts, &["sh", "-c", &try_open(&checks)]);
        for p in &inside {
            assert!(
                verdict(&out, p).contains(EPERM),
                "{mode:?}: {p} must be refused by the device cgroup:\n{out}"
            );
        }
        assert_eq!(verdict(&out, "/dev/null"), "ok", "{mode:?}:\n{out}");
    }
    lab.assert_clean(&[]);
}

#[test]
fn image_device_nodes_open_nothing_in_any_user_mode() {
    let lab = Lab::new("devimg");
    // A layer with kvm (c 10:232), kmsg (c 1:11) and loop0 (b 7:0), mode 0666, on top of Alpine.
    let tarball = Scratch::new("devtar");
    let tar_path = tarball.join("devices.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&tar_path).unwrap());
    let mut dir = tar::Header::new_ustar();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_path("devs/").unwrap();
    dir.set_mode(0o755);
    dir.set_uid(0);
    dir.set_gid(0);
    dir.set_mtime(0);
    dir.set_size(0);
    dir.set_cksum();
    b.append(&dir, std::io::empty()).unwrap();
    for (name, kind, major, minor) in [
        ("devs/kvm", tar::EntryType::Char, 10, 232),
        ("devs/kmsg", tar::EntryType::Char, 1, 11),
        ("devs/loop0", tar::EntryType::Block, 7, 0),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_path(name).unwrap();
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        h.set_mode(0o666);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(0);
        h.set_cksum();
        b.append(&h, std::io::empty()).unwrap();
    }
    b.into_inner().unwrap();
    let dev_layer = line(lab.rbuild().args(["layer", "add"]).arg(&tar_path));
    let image = line(lab.rbuild().args([
        "image", "create", &lab.layer, &dev_layer, "--cmd", "/bin/sh",
    ]));
    for mode in MODES {
        let mut c = lab.rrun();
        c.args(["--net", "none"])
            .args(mode)
            .args(["--image", &image, "--", "sh", "-c"]);
        c.arg(format!(
            "stat -c '%n %F %t:%T' /devs/kmsg /devs/loop0; {}",
            try_open(&["/devs/kvm", "/devs/kmsg", "/devs/loop0", "/dev/zero"])
        ));
        let o = output(c, 60);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "{mode:?}: {}\n{out}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            out.contains("/devs/kmsg character special file 1:b")
                && out.contains("/devs/loop0 block special file 7:0"),
            "the image's nodes are there: {out}"
        );
        for p in ["/devs/kvm", "/devs/kmsg", "/devs/loop0"] {
            let v = verdict(&out, p);
            // EACCES: the root overlay is nodev; EPERM: the device cgroup. Either way, refused.
            assert!(
                v.contains(EPERM) || v.contains(EACCES),
                "{mode:?}: {p} opened:\n{out}"
            );
        }
        assert_eq!(verdict(&out, "/dev/zero"), "ok", "{mode:?}:\n{out}");
    }
    lab.assert_clean(&[]);
}

#[test]
fn a_node_made_with_mknod_inside_the_container_opens_nothing() {
    // --userns host keeps CAP_MKNOD (as Docker does) and the allowlist lets any node be made
    // ("c *:* m"): making a kvm node works, opening it does not. A remapped root may not mknod.
    let lab = Lab::new("devmk");
    let s = Scratch::new("devmkvol");
    let vol = format!("{}:/vol", s.path().display());
    let script = format!(
        "mknod /vol/k c 10 232 && chmod 666 /vol/k && echo made; {}",
        try_open(&["/vol/k"])
    );
    let out = lab.ok(&["--userns", "host", "-v", &vol], &["sh", "-c", &script]);
    assert!(out.contains("made"), "mknod is allowed: {out}");
    assert!(verdict(&out, "/vol/k").contains(EPERM), "{out}");
    lab.assert_clean(&[]);
}

#[test]
fn the_default_devices_work_in_every_user_mode() {
    let lab = Lab::new("devok");
    let script = "for f in null zero full random urandom; do (exec 3</dev/$f) && echo $f=r; done; \
                  for f in null full; do (exec 3>/dev/$f) && echo $f=w; done; \
                  (exec 3<>/dev/ptmx) && echo ptmx=rw; \
                  head -c 4 /dev/urandom | wc -c; echo hi > /dev/null && echo wrote";
    for mode in MODES {
        let out = lab.ok(mode, &["sh", "-c", script]);
        for want in [
            "null=r",
            "zero=r",
            "full=r",
            "random=r",
            "urandom=r",
            "null=w",
            "full=w",
            "ptmx=rw",
            "4",
            "wrote",
        ] {
            assert!(
                out.lines().any(|l| l.trim() == want),
                "{mode:?}: {want} missing:\n{out}"
            );
        }
    }
    lab.assert_clean(&[]);
}

/// Runs `rrun ARGS...` on a pseudo-terminal and returns what it printed there.
fn on_a_terminal(lab: &Lab, args: &[&str]) -> String {
    let driver = r#"
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
buf = b""
while True:
    try:
        d = os.read(fd, 4096)
    except OSError:
        break
    if not d:
        break
    buf += d
_, st = os.waitpid(pid, 0)
print(buf.decode(errors="replace"))
print("exit=%d" % os.waitstatus_to_exitcode(st))
"#;
    let mut c = rbox_tests::command("python3");
    c.arg("-c")
        .arg(driver)
        .arg(rbox_tests::bin("rrun"))
        .args(args);
    c.env("RBOX_ROOT", lab.store.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let o = wait_output(c.spawn().expect("python3"), 60);
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

#[test]
fn the_terminal_devices_work_with_a_pty_in_every_user_mode() {
    let lab = Lab::new("devtty");
    let script = format!(
        "t=$(tty); echo tty=$t; (exec 3<>/dev/tty) && echo devtty=rw; {} (exec 3<>/dev/ptmx) && echo ptmx=rw; echo done",
        try_open(&["$t"])
    );
    for mode in MODES {
        let mut args = vec!["-t", "--net", "none"];
        args.extend(mode.iter().copied());
        args.extend(["--image", &lab.image, "--", "sh", "-c", &script]);
        let out = on_a_terminal(&lab, &args);
        for want in ["tty=/dev/pts/", "devtty=rw", "ptmx=rw", "done", "exit=0"] {
            assert!(out.contains(want), "{mode:?}: {want} missing:\n{out}");
        }
        // Reopening the pty by name: allowed by the device cgroup (c 136:*). As -u 1000 the
        // kernel may still say EACCES: the pty belongs to the container's root, mode 0620.
        let pts = verdict(&out, "$t");
        assert!(
            !pts.contains(EPERM),
            "{mode:?}: the device cgroup refused the pty:\n{out}"
        );
        if mode.is_empty() || mode[0] == "--userns" {
            assert_eq!(pts.trim(), "ok", "{mode:?}:\n{out}");
        }
    }
    lab.assert_clean(&[]);
}

#[test]
fn exec_in_a_running_container_gets_the_same_allowlist() {
    let lab = Lab::new("devexec");
    let nodes = host_nodes();
    let vol = format!("{}:/hostdev", nodes.path().display());
    let name = rbox_tests::unique("devx");
    let id = line(lab.rrun().args([
        "-d", "--name", &name, "--net", "none", "-v", &vol, "--image", &lab.image, "--", "sleep",
        "60",
    ]));
    assert!(!id.is_empty());
    let mut c = cmd("rrun");
    c.env("RBOX_ROOT", lab.store.path()).args([
        "exec",
        &name,
        "sh",
        "-c",
        &try_open(&["/hostdev/kvm", "/hostdev/loop0", "/dev/null"]),
    ]);
    let o = output(c, 30);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "exec: {}\n{out}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(verdict(&out, "/hostdev/kvm").contains(EPERM), "{out}");
    assert!(verdict(&out, "/hostdev/loop0").contains(EPERM), "{out}");
    assert_eq!(verdict(&out, "/dev/null"), "ok", "{out}");
    // exec -t: a pty of the container's devpts, /dev/tty and the pty by name work.
    let script = format!(
        "t=$(tty); echo tty=$t; (exec 3<>/dev/tty) && echo devtty=rw; {} echo done",
        try_open(&["$t", "/hostdev/kvm"])
    );
    let out = on_a_terminal(&lab, &["exec", "-t", &name, "sh", "-c", &script]);
    for want in ["tty=/dev/pts/", "devtty=rw", "$t=ok", "done", "exit=0"] {
        assert!(out.contains(want), "exec -t: {want} missing:\n{out}");
    }
    assert!(verdict(&out, "/hostdev/kvm").contains(EPERM), "{out}");
    lab.rm_all();
    lab.assert_clean(&[]);
}

#[test]
fn a_rootless_container_cannot_open_a_device_node_in_its_root() {
    // Rootless runs get no device cgroup: their overlay is mounted inside their user namespace,
    // and the kernel marks such superblocks nodev (SB_I_NODEV), whatever the mount flags say.
    // Rootless extraction skips device nodes, so plant one (kvm, 0666) in the layer as root.
    rbox_tests::require_root();
    let scratch = Scratch::new("devrl");
    let store = scratch.join("store");
    std::fs::create_dir(&store).unwrap();
    let fixture = scratch.join("alpine.tar.gz");
    std::fs::copy(rbox_tests::alpine_fixture("3.15.11"), &fixture).unwrap();
    for p in [scratch.path(), &store, &fixture] {
        std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
    }
    let nobody = |program: &str, args: &[&str]| {
        let mut c = rbox_tests::command("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(rbox_tests::bin(program))
            .args(args);
        c.env("RBOX_ROOT", &store)
            .env_remove("RBOX_RINIT")
            .current_dir("/");
        output(c, 60)
    };
    let layer = nobody("rbuild", &["layer", "add", fixture.to_str().unwrap()]);
    assert!(
        layer.status.success(),
        "{}",
        String::from_utf8_lossy(&layer.stderr)
    );
    let layer = String::from_utf8_lossy(&layer.stdout).trim().to_string();
    let image = nobody("rbuild", &["image", "create", &layer]);
    assert!(
        image.status.success(),
        "{}",
        String::from_utf8_lossy(&image.stderr)
    );
    let image = String::from_utf8_lossy(&image.stdout).trim().to_string();
    let hex = layer.trim_start_matches("sha256:");
    let rootfs = store.join("layers").join(hex).join("rootfs");
    assert!(rootfs.is_dir(), "{} missing", rootfs.display());
    mknod(
        &rootfs,
        "kvm",
        rustix::fs::FileType::CharacterDevice,
        10,
        232,
    );
    let o = nobody(
        "rrun",
        &[
            "--net",
            "none",
            "--image",
            &image,
            "--",
            "sh",
            "-c",
            &try_open(&["/kvm", "/dev/null"]),
        ],
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{}\n{out}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(verdict(&out, "/kvm").contains(EACCES), "{out}");
    assert_eq!(verdict(&out, "/dev/null"), "ok", "{out}");
    let _ = std::fs::remove_file(rootfs.join("kvm"));
}

/// `rrun ARGS...` in a mount namespace of its own where the given cgroup mounts are unmounted
/// first: how rrun sees a host without them (nothing changes for the rest of the machine).
fn rrun_without(lab: &Lab, unmount: &[&str], args: &[&str]) -> std::process::Output {
    let mut script = String::new();
    for m in unmount {
        script.push_str(&format!("umount {m} || exit 99; "));
    }
    script.push_str("exec \"$@\"");
    let mut c = rbox_tests::command("unshare");
    c.args([
        "-m",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        &script,
        "sh",
    ])
    .arg(rbox_tests::bin("rrun"))
    .args(args);
    c.env("RBOX_ROOT", lab.store.path());
    output(c, 60)
}

#[test]
fn on_a_host_without_cgroup_v2_the_v1_devices_controller_keeps_the_allowlist() {
    let lab = Lab::new("devv1");
    assert!(
        Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists()
            && Path::new("/sys/fs/cgroup/devices/devices.list").exists()
    );
    let nodes = host_nodes();
    let vol = format!("{}:/hostdev", nodes.path().display());
    let mut checks = node_paths("/hostdev");
    checks.push("/dev/null".into());
    let script = try_open(&checks.iter().map(String::as_str).collect::<Vec<_>>());
    let assert_refused = |what: &str, out: &str| {
        for p in &checks[..3] {
            assert!(verdict(out, p).contains(EPERM), "{what}: {p}:\n{out}");
        }
        assert_eq!(verdict(out, "/dev/null"), "ok", "{what}:\n{out}");
    };
    for mode in MODES {
        let mut args = vec!["--net", "none"];
        args.extend(mode.iter().copied());
        args.extend(["-v", &vol, "--image", &lab.image, "--", "sh", "-c", &script]);
        let o = rrun_without(&lab, &["/sys/fs/cgroup/unified"], &args);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "{mode:?}: {}\n{out}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_refused(&format!("{mode:?}"), &out);
    }
    // Where the allowlist lives: a devices cgroup of the container's own with exactly the list.
    let name = rbox_tests::unique("devv1d");
    let o = rrun_without(
        &lab,
        &["/sys/fs/cgroup/unified"],
        &[
            "-d", "--name", &name, "--net", "none", "-v", &vol, "--image", &lab.image, "--",
            "sleep", "60",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let paths: Vec<String> = lab.inspect(&name)["cgroup_paths"]
        .as_array()
        .expect("cgroup_paths")
        .iter()
        .filter_map(|p| p.as_str().map(str::to_string))
        .collect();
    assert!(!paths.iter().any(|p| p.contains("/unified")), "{paths:?}");
    let dev = paths
        .iter()
        .find(|p| p.starts_with("/sys/fs/cgroup/devices/"))
        .unwrap_or_else(|| panic!("no devices cgroup in {paths:?}"));
    let list = std::fs::read_to_string(Path::new(dev).join("devices.list")).unwrap();
    assert_eq!(
        list.lines().collect::<Vec<_>>(),
        [
            "c *:* m",
            "b *:* m",
            "c 1:3 rwm",
            "c 1:5 rwm",
            "c 1:7 rwm",
            "c 1:8 rwm",
            "c 1:9 rwm",
            "c 5:0 rwm",
            "c 5:2 rwm",
            "c 136:* rwm",
            "c 10:200 rwm"
        ]
    );
    // rrun exec joins it too.
    let mut c = lab.rrun();
    c.args(["exec", &name, "sh", "-c", &script]);
    let o = output(c, 30);
    assert!(
        o.status.success(),
        "exec: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_refused("exec", &String::from_utf8_lossy(&o.stdout));
    lab.rm_all();
    assert!(!Path::new(dev).exists(), "rm removed {dev}");
    lab.assert_clean(&[]);
}

#[test]
fn without_any_device_control_rrun_refuses_to_start_with_one_line_and_leaves_nothing() {
    let lab = Lab::new("devno");
    let o = rrun_without(
        &lab,
        &["/sys/fs/cgroup/unified", "/sys/fs/cgroup/devices"],
        &["--net", "none", "--image", &lab.image, "--", "true"],
    );
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("rrun: ") && err.contains("default device allowlist"),
        "{err}"
    );
    assert!(
        lab.container_ids().is_empty(),
        "left: {:?}",
        lab.container_ids()
    );
    lab.assert_clean(&[]);
}
