//! rinit as PID 1 of a fresh pid+mount namespace sets up the container's kernel filesystems:
//! /proc, /dev (nodes, pts, ptmx, shm, mqueue, fd links), /tmp and a read-only /sys, keeping what
//! is already mounted, saying in one line what the kernel refused, and never touching the mounts
//! of the host's init. Roots are Alpine extracted into a scratch folder, or an empty folder.

mod rinit_support;

use rbox_tests::{alpine_fixture, require_root, Scratch};
use rinit_support::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const SEC: Duration = Duration::from_secs(1);

/// A root holding Alpine 3.20 and /rinit.
fn alpine_root(scratch: &Scratch) -> PathBuf {
    let root = scratch.join("root");
    std::fs::create_dir_all(&root).expect("root dir");
    let st = rbox_tests::command("tar")
        .arg("-xzf")
        .arg(alpine_fixture("3.20.3"))
        .arg("-C")
        .arg(&root)
        .status()
        .expect("tar");
    assert!(st.success(), "extracting the Alpine fixture");
    install(&rbox_tests::bin("rinit"), &root.join("rinit"));
    root
}

/// A root holding nothing but /rinit and /probe (a static C program).
fn empty_root(scratch: &Scratch) -> PathBuf {
    let root = scratch.join("empty");
    std::fs::create_dir_all(&root).expect("root dir");
    install(&rbox_tests::bin("rinit"), &root.join("rinit"));
    install(&probe(), &root.join("probe"));
    root
}

fn install(from: &Path, to: &Path) {
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
}

/// `unshare --pid --fork --mount --root ROOT /rinit -- args...`
fn rinit_in(root: &Path, extra_unshare: &[&str], args: &[&str]) -> Command {
    let mut c = rbox_tests::command("unshare");
    c.args(extra_unshare);
    c.args(["--pid", "--fork", "--mount", "--kill-child", "--root"])
        .arg(root);
    c.args(["/rinit", "--"]).args(args);
    c
}

/// /proc/mounts as mount point -> (type, options) of the topmost mount.
fn mounts(text: &str) -> HashMap<String, (String, String)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4).then(|| (f[1].to_string(), (f[2].to_string(), f[3].to_string())))
        })
        .collect()
}

const REPORT: &str = r#"
cat /proc/mounts
echo ---
for p in /dev /tmp /dev/shm /dev/pts /dev/mqueue; do stat -c "mode %n %a" $p; done
for d in null zero full random urandom tty; do stat -c "node %n %F %t:%T %a" /dev/$d; done
for l in fd stdin stdout stderr ptmx; do echo "link /dev/$l $(readlink /dev/$l)"; done
echo "urandom $(head -c 16 /dev/urandom | wc -c)"
echo x > /dev/null && echo null-writes
echo stdout-links > /dev/stdout
echo "comm $(cat /proc/1/comm)"
echo "fds $(ls /proc/1/fd | tr '\n' ' ')"
"#;

#[test]
fn rinit_mounts_proc_dev_tmp_and_a_readonly_sys_in_an_alpine_root() {
    require_root();
    let scratch = Scratch::new("rinit-mounts");
    let root = alpine_root(&scratch);
    let f = run(rinit_in(&root, &[], &["/bin/sh", "-c", REPORT]), 30 * SEC);
    assert_eq!(f.code(), 0, "stdout {}\nstderr {}", f.stdout, f.stderr);
    assert_eq!(f.stderr, "", "nothing to complain about as real root");
    let (table, rest) = f.stdout.split_once("---\n").expect("report");
    let m = mounts(table);
    for (point, fstype) in [
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/tmp", "tmpfs"),
        ("/sys", "sysfs"),
    ] {
        assert_eq!(
            m.get(point).map(|t| t.0.as_str()),
            Some(fstype),
            "{point} in\n{table}"
        );
    }
    let opts = |p: &str| m[p].1.split(',').map(String::from).collect::<Vec<_>>();
    assert_eq!(opts("/sys")[0], "ro", "/sys is read-only");
    for o in ["mode=620", "ptmxmode=666"] {
        assert!(
            opts("/dev/pts").contains(&o.to_string()),
            "/dev/pts options {:?}",
            opts("/dev/pts")
        );
    }
    let lines: Vec<&str> = rest.lines().collect();
    for want in [
        "mode /dev 755",
        "mode /tmp 1777",
        "mode /dev/shm 1777",
        "mode /dev/pts 755",
        "node /dev/null character special file 1:3 666",
        "node /dev/zero character special file 1:5 666",
        "node /dev/full character special file 1:7 666",
        "node /dev/random character special file 1:8 666",
        "node /dev/urandom character special file 1:9 666",
        "node /dev/tty character special file 5:0 666",
        "link /dev/fd /proc/self/fd",
        "link /dev/stdin /proc/self/fd/0",
        "link /dev/stdout /proc/self/fd/1",
        "link /dev/stderr /proc/self/fd/2",
        "link /dev/ptmx pts/ptmx",
        "urandom 16",
        "null-writes",
        "stdout-links",
        "comm rinit",
        "fds 0 1 2 ",
    ] {
        assert!(lines.contains(&want), "want {want:?} in\n{rest}");
    }
}

#[test]
fn rinit_keeps_a_prepared_dev_and_adds_only_what_is_missing() {
    require_root();
    let scratch = Scratch::new("rinit-dev");
    let root = alpine_root(&scratch);
    // As rrun does: /dev is a tmpfs already, with the host's null bind-mounted into it.
    let prepare = r#"R=$1; shift
        mount -t tmpfs -o mode=755 prepared "$R/dev" && echo kept > "$R/dev/marker" &&
        touch "$R/dev/null" && mount --bind /dev/null "$R/dev/null" && exec chroot "$R" "$@""#;
    let report = r#"cat /dev/marker; grep -c ' /dev ' /proc/mounts; grep ' /dev ' /proc/mounts
        grep -c ' /dev/null ' /proc/mounts
        for p in /dev/zero /dev/pts /dev/shm /dev/mqueue; do grep " $p " /proc/mounts | cut -d' ' -f1-3; done
        stat -c '%n %F %t:%T' /dev/zero; readlink /dev/ptmx; readlink /dev/fd"#;
    let mut c = rbox_tests::command("unshare");
    c.args([
        "--pid",
        "--fork",
        "--mount",
        "--kill-child",
        "/bin/sh",
        "-c",
        prepare,
        "prep",
    ])
    .arg(&root);
    c.args(["/rinit", "--", "/bin/sh", "-c", report]);
    let f = run(c, 30 * SEC);
    assert_eq!(f.code(), 0, "stdout {}\nstderr {}", f.stdout, f.stderr);
    let want = "kept\n1\nprepared /dev tmpfs rw,relatime,mode=755 0 0\n1\n\
                devpts /dev/pts devpts\nshm /dev/shm tmpfs\nmqueue /dev/mqueue mqueue\n\
                /dev/zero character special file 1:5\npts/ptmx\n/proc/self/fd\n";
    assert_eq!(f.stdout, want, "stderr {}", f.stderr);
}

#[test]
fn rinit_keeps_a_proc_of_its_own_pid_namespace() {
    require_root();
    let scratch = Scratch::new("rinit-proc");
    let root = alpine_root(&scratch);
    let prepare = r#"R=$1; shift; mount -t proc proc "$R/proc" && exec chroot "$R" "$@""#;
    let mut c = rbox_tests::command("unshare");
    c.args([
        "--pid",
        "--fork",
        "--mount",
        "--kill-child",
        "/bin/sh",
        "-c",
        prepare,
        "prep",
    ])
    .arg(&root);
    c.args([
        "/rinit",
        "--",
        "/bin/sh",
        "-c",
        "grep -c ' /proc proc ' /proc/mounts; cat /proc/1/comm",
    ]);
    let f = run(c, 30 * SEC);
    assert_eq!(
        (f.code(), f.stdout.as_str()),
        (0, "1\nrinit\n"),
        "stderr {}",
        f.stderr
    );
}

#[test]
fn rinit_runs_in_an_empty_root_holding_only_itself_and_a_static_program() {
    require_root();
    let scratch = Scratch::new("rinit-empty");
    let root = empty_root(&scratch);
    let f = run(
        rinit_in(&root, &[], &["/probe", "cat", "/proc/1/comm"]),
        30 * SEC,
    );
    assert_eq!(
        (f.code(), f.stdout.as_str(), f.stderr.as_str()),
        (0, "rinit\n", "")
    );
    let f = run(rinit_in(&root, &[], &["/probe", "fds"]), 30 * SEC);
    assert_eq!(
        (f.code(), f.stdout.as_str()),
        (0, "0 1 2\n"),
        "stderr {}",
        f.stderr
    );
    let f = run(
        rinit_in(&root, &[], &["/probe", "cat", "/proc/mounts"]),
        30 * SEC,
    );
    let m = mounts(&f.stdout);
    for (point, fstype) in [
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/tmp", "tmpfs"),
        ("/sys", "sysfs"),
    ] {
        assert_eq!(
            m.get(point).map(|t| t.0.as_str()),
            Some(fstype),
            "{point} in\n{}",
            f.stdout
        );
    }
    let f = run(rinit_in(&root, &[], &["/probe", "exit", "9"]), 30 * SEC);
    assert_eq!(f.code(), 9);
    let f = run(rinit_in(&root, &[], &["/bin/sh"]), 30 * SEC);
    assert_eq!(f.code(), 127, "no shell in an empty root: {}", f.stderr);
    assert_eq!(
        f.stderr,
        "rinit: cannot execute /bin/sh: no such file or directory\n"
    );
}

#[test]
fn rinit_refuses_to_mount_in_the_mount_namespace_of_its_procs_init() {
    require_root();
    let probe = probe();
    // An outer private mount namespace with its own pid namespace and proc plays "the host".
    // rinit then starts as PID 1 of a new pid namespace but in that same mount namespace: it
    // must leave every mount alone (if it did not, only the throwaway outer namespace would
    // see it, never the real host).
    let host = r#"P=$1; R=$2
        echo "before $(grep -c ' /proc proc ' /proc/mounts) $(grep -c ' /tmp ' /proc/mounts)"
        unshare --pid --fork --kill-child "$R" -- /bin/sh -c \
            'echo "after $(grep -c " /proc proc " /proc/mounts) $(grep -c " /tmp " /proc/mounts)"; echo "pid $$"'"#;
    let mut c = rbox_tests::command("unshare");
    c.args([
        "--mount",
        "--propagation",
        "private",
        "--pid",
        "--fork",
        "--mount-proc",
        "--kill-child",
    ]);
    c.args(["/bin/sh", "-c", host, "host"])
        .arg(&probe)
        .arg(rbox_tests::bin("rinit"));
    let f = run(c, 30 * SEC);
    assert_eq!(f.code(), 0, "stdout {}\nstderr {}", f.stdout, f.stderr);
    let before = f
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("before "))
        .expect("before");
    let after = f
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("after "))
        .expect("after");
    assert_eq!(before, after, "rinit must not have mounted anything");
    assert!(
        f.stdout.contains("pid 2\n"),
        "the command ran under rinit as PID 1: {}",
        f.stdout
    );
    assert!(
        f.stderr
            .starts_with("rinit: not mounting /proc, /dev, /tmp or /sys"),
        "one line saying why: {:?}",
        f.stderr
    );
    assert_eq!(f.stderr.lines().count(), 1);
}

#[test]
fn rinit_says_in_one_line_which_mount_failed_and_exits_125() {
    require_root();
    let scratch = Scratch::new("rinit-fail");
    let root = empty_root(&scratch);
    // A read-only root without /proc: the mount point cannot be made.
    let ro = r#"R=$1; shift; mount --bind "$R" "$R" && mount -o remount,bind,ro "$R" && exec chroot "$R" "$@""#;
    let mut c = rbox_tests::command("unshare");
    c.args([
        "--pid",
        "--fork",
        "--mount",
        "--kill-child",
        "/bin/sh",
        "-c",
        ro,
        "ro",
    ])
    .arg(&root);
    c.args(["/rinit", "--", "/probe", "exit", "0"]);
    let f = run(c, 30 * SEC);
    assert_eq!(f.code(), 125);
    assert_eq!(
        f.stderr,
        "rinit: cannot create mount point /proc: read-only file system\n"
    );
    // /dev is a plain file: the kernel refuses to mount a tmpfs there.
    std::fs::write(root.join("dev"), "not a directory").expect("write dev");
    let f = run(rinit_in(&root, &[], &["/probe", "exit", "0"]), 30 * SEC);
    assert_eq!(f.code(), 125);
    assert_eq!(
        f.stderr,
        "rinit: cannot mount tmpfs on /dev: not a directory\n"
    );
}

#[test]
fn rinit_in_a_user_namespace_goes_on_without_what_the_kernel_refuses() {
    require_root();
    let scratch = Scratch::new("rinit-userns");
    let root = alpine_root(&scratch);
    let report = "cat /proc/mounts; id -u";
    // Without its own network namespace, sysfs is refused: quietly. mknod is refused in any
    // user namespace: one line. mqueue needs an ipc namespace of the user namespace.
    let f = run(
        rinit_in(
            &root,
            &["--user", "--map-root-user"],
            &["/bin/sh", "-c", report],
        ),
        30 * SEC,
    );
    assert_eq!(f.code(), 0, "stdout {}\nstderr {}", f.stdout, f.stderr);
    let m = mounts(&f.stdout);
    for (point, fstype) in [
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/tmp", "tmpfs"),
    ] {
        assert_eq!(
            m.get(point).map(|t| t.0.as_str()),
            Some(fstype),
            "{point} in\n{}",
            f.stdout
        );
    }
    assert!(!m.contains_key("/sys"), "sysfs cannot be mounted here");
    assert!(
        !f.stderr.contains("/sys"),
        "a refused /sys is quiet: {:?}",
        f.stderr
    );
    assert_eq!(
        f.stderr,
        "rinit: cannot create device nodes (operation not permitted): /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty\n\
         rinit: cannot mount mqueue on /dev/mqueue: operation not permitted\n"
    );
    // With its own network and ipc namespaces, /sys (read-only) and /dev/mqueue are allowed.
    let f = run(
        rinit_in(
            &root,
            &["--user", "--map-root-user", "--net", "--ipc"],
            &["/bin/sh", "-c", report],
        ),
        30 * SEC,
    );
    assert_eq!(f.code(), 0, "stderr {}", f.stderr);
    let m = mounts(&f.stdout);
    assert_eq!(
        m.get("/sys")
            .map(|t| (t.0.as_str(), t.1.split(',').next().unwrap_or(""))),
        Some(("sysfs", "ro"))
    );
    assert_eq!(m.get("/dev/mqueue").map(|t| t.0.as_str()), Some("mqueue"));
}
