//! A container's processes start with umask 0022 (runc's default, and Podman's `--umask`
//! default), whatever umask rrun's caller has: the command in the foreground, a detached
//! container's command and `rrun exec` alike. What rrun makes in the container's root on the
//! way (a missing working directory, /sys/fs/cgroup's folders) gets the mode it states, so
//! the image's other users can use it. A caller with umask 077 is common: hardened accounts,
//! some CI runners.

mod rrun_common;

use std::path::Path;

use rbox_tests::{unique, with_umask};
use rrun_common::*;

/// The umask of rrun's caller in these tests.
const CALLER: u32 = 0o077;

#[test]
fn container_processes_start_with_umask_0022_whatever_rrun_inherits() {
    let lab = Lab::new("umask");
    // The caller's umask is really 077 (else the test would prove nothing).
    let mut c = rbox_tests::command("sh");
    with_umask(&mut c, CALLER).args(["-c", "umask"]);
    assert_eq!(ok_stdout(c, "the caller's own umask").trim(), "0077");

    // In the foreground, as a user of the image other than root, in a working directory
    // rrun makes, reading its own cgroup's limit.
    let limit = match Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        true => "/sys/fs/cgroup/memory.max",
        false => "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    };
    let script = format!(
        "umask; pwd; stat -c '%a %U %n' /new /new/work; cat {limit}; \
         touch /tmp/f && stat -c '%a %n' /tmp/f"
    );
    let mut c = lab.rrun();
    with_umask(&mut c, CALLER).args([
        "--net",
        "none",
        "--memory",
        "32m",
        "-w",
        "/new/work",
        "-u",
        "405:100",
        "--image",
        &lab.image,
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(
        ok_stdout(c, "rrun").trim(),
        "0022\n/new/work\n755 root /new\n755 root /new/work\n33554432\n644 /tmp/f"
    );

    // A detached container's command (read from outside, through exec), and `rrun exec`.
    let name = unique("umask");
    let mut c = lab.rrun();
    with_umask(&mut c, CALLER).args([
        "-d", "--name", &name, "--net", "none", "--image", &lab.image, "--", "sleep", "1000",
    ]);
    ok_stdout(c, "rrun -d");
    // rinit's child is the command
    let of_command = "grep ^Umask: /proc/$(cut -d' ' -f1 /proc/1/task/1/children)/status";
    let mut c = lab.rrun();
    c.args(["exec", &name, "sh", "-c", of_command]);
    let detached = String::from_utf8_lossy(&output(c, 60).stdout)
        .trim()
        .to_string();
    let mut c = lab.rrun();
    with_umask(&mut c, CALLER).args(["exec", &name, "sh", "-c", "umask"]);
    let exec = ok_stdout(c, "rrun exec").trim().to_string();
    let mut c = lab.rrun();
    c.args(["rm", "-f", &name]);
    ok_stdout(c, "rrun rm -f");
    assert_eq!(detached, "Umask:\t0022", "the detached container's command");
    assert_eq!(exec, "0022", "rrun exec's command");
    lab.assert_clean(&[]);
}
