//! rrun containment end to end: what container root can not do to the host (--userns host
//! sysctls, masks, capabilities), no controlling terminal (TIOCSTI), descriptors, id ranges,
//! hostile /etc files in images, file volumes and mount targets, hostnames, groups, mount flags.

mod rrun_common;
mod rrun_contain_support;

use std::os::fd::AsRawFd;
use std::process::Stdio;

use rbox_tests::{unique, Scratch};
use rrun_common::{line, output, wait_output, Lab};
use rrun_contain_support::{
    drain, layer_tar, on_controlling_pty, pty, static_c, with_extra_fd, Entry,
};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts a failed run: exit 125 and exactly one `rrun: ` line on stderr containing `want`.
fn assert_one_line_failure(o: &std::process::Output, want: &str, what: &str) {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{what}: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: one line expected: {err}");
    assert!(
        err.starts_with("rrun: ") && err.contains(want),
        "{what}: expected {want:?} in {err}"
    );
}

/// The command ran (status 0, `stdout` its output) after one warning line containing `want`.
fn assert_warned_and_ran(o: &std::process::Output, want: &str, stdout: &str, what: &str) {
    let err = text(&o.stderr);
    assert_eq!(
        (o.status.code(), text(&o.stdout).trim()),
        (Some(0), stdout),
        "{what}: {err}"
    );
    assert_eq!(
        err.lines().count(),
        1,
        "{what}: one warning line expected: {err}"
    );
    assert!(
        err.starts_with("rrun: warning: ") && err.contains(want),
        "{what}: expected {want:?} in {err}"
    );
}

/// `rrun --net none -u USER --image IMAGE -- ARGS...`.
fn lab_run_user(lab: &Lab, image: &str, user: &str, args: &[&str]) -> std::process::Output {
    let mut c = lab.rrun();
    c.args(["--net", "none", "-u", user, "--image", image, "--"])
        .args(args);
    output(c, 30)
}

/// A detached container named `name` running `sleep 1000`, with `opts`.
fn start_detached(lab: &Lab, name: &str, opts: &[&str]) {
    let mut c = lab.rrun();
    c.args(["-d", "--name", name, "--net", "none"])
        .args(opts)
        .args(["--image", &lab.image, "--", "sleep", "1000"]);
    let o = output(c, 60);
    assert!(o.status.success(), "rrun -d {name}: {}", text(&o.stderr));
}

const PROBE_KERNEL: &str = r#"
head -1 /proc/self/uid_map | awk '{print $1, $2, $3}'
cat /proc/sys/vm/swappiness > /proc/sys/vm/swappiness 2>/dev/null && echo sysctl-written || echo sysctl-refused
[ "$(cat /proc/kcore 2>/dev/null | head -c 1 | wc -c)" = 0 ] && echo kcore-unreadable || echo kcore-read
[ "$(head -c 1 /proc/timer_list 2>/dev/null | wc -c)" = 0 ] && echo timer_list-masked || echo timer_list-shown
mount -t tmpfs none /mnt 2>/dev/null && echo mounted || echo mount-refused
umount /proc/sys 2>/dev/null && echo unmounted-sys || echo umount-refused
umount /proc/timer_list 2>/dev/null && echo unmounted-mask || echo umount-mask-refused
awk '$1 == "CapEff:" {print $2}' /proc/self/status
awk '$2 == "/proc/sys" {split($4, o, ","); print "proc-sys-" o[1]}' /proc/mounts
"#;

#[test]
fn userns_host_root_cannot_write_sysctls_read_kernel_files_or_undo_the_masks() {
    let lab = Lab::new("ct");
    let swappiness = std::fs::read_to_string("/proc/sys/vm/swappiness").unwrap();
    let got = lab.ok(&["--userns", "host"], &["sh", "-c", PROBE_KERNEL]);
    assert_eq!(
        got.lines().collect::<Vec<_>>(),
        [
            "0 0 4294967295",
            "sysctl-refused",
            "kcore-unreadable",
            "timer_list-masked",
            "mount-refused",
            "umount-refused",
            "umount-mask-refused",
            // Docker's default capability set
            "00000000a80425fb",
            "proc-sys-ro",
        ],
        "{got}"
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/vm/swappiness").unwrap(),
        swappiness,
        "the host's swappiness changed"
    );
    // The same through exec (a process joining the container keeps the same limits).
    let name = unique("cth");
    start_detached(&lab, &name, &["--userns", "host"]);
    let o = output(
        {
            let mut c = lab.rrun();
            c.args(["exec", &name, "sh", "-c", PROBE_KERNEL]);
            c
        },
        60,
    );
    assert_eq!(
        text(&o.stdout).lines().nth(1),
        Some("sysctl-refused"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(text(&o.stdout).lines().nth(7), Some("00000000a80425fb"));
    assert!(lab
        .rrun()
        .args(["rm", "-f", &name])
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success());
    assert_eq!(
        std::fs::read_to_string("/proc/sys/vm/swappiness").unwrap(),
        swappiness
    );
    lab.assert_clean(&[]);
}

#[test]
fn remap_root_gets_dockers_default_capabilities_and_the_read_only_and_masked_paths() {
    let lab = Lab::new("ct");
    // Under remap too, container root holds Docker's default set only: no CAP_SYS_ADMIN over
    // its own namespaces either, so changing the hostname is refused, as in Docker...
    let got = lab.ok(&[], &["sh", "-c", "hostname changed 2>/dev/null && echo changed || echo refused; awk '$1 ~ /^Cap(Eff|Bnd|Inh|Amb):/ {print $2}' /proc/self/status"]);
    assert_eq!(
        got.lines().collect::<Vec<_>>(),
        // CapInh, CapEff, CapBnd, CapAmb, in /proc/self/status order
        [
            "refused",
            "0000000000000000",
            "00000000a80425fb",
            "00000000a80425fb",
            "0000000000000000"
        ],
        "{got}"
    );
    // ... and works, inside the container's own uts namespace, with --cap-add SYS_ADMIN.
    assert_eq!(
        lab.ok(
            &["--cap-add", "SYS_ADMIN"],
            &["sh", "-c", "hostname changed && hostname"]
        ),
        "changed"
    );
    let got = lab.ok(&[], &["sh", "-c", "awk '$2 == \"/proc/sys\" || $2 == \"/proc/timer_list\" || $2 == \"/sys/firmware\" {print $2, substr($4, 1, 2)}' /proc/mounts | sort"]);
    assert_eq!(
        got, "/proc/sys ro\n/proc/timer_list rw\n/sys/firmware ro",
        "(timer_list is /dev/null bound over it)"
    );
    let got = lab.ok(&[], &["sh", "-c", "cat /proc/sys/vm/swappiness > /proc/sys/vm/swappiness 2>/dev/null && echo written || echo refused"]);
    assert_eq!(got, "refused");
}

const TIOCSTI_C: &str = r#"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
static void inject(int fd, const char *what) {
    const char *s = "echo INJECTED\n";
    for (const char *p = s; *p; p++) {
        if (ioctl(fd, TIOCSTI, p) < 0) { printf("%s:%s\n", what, strerror(errno)); return; }
    }
    printf("%s:injected\n", what);
}
int main(void) {
    int fd = open("/dev/tty", O_RDWR);
    if (fd < 0) printf("tty:%s\n", strerror(errno)); else inject(fd, "tty");
    inject(0, "fd0");
    inject(2, "fd2");
    return 0;
}
"#;

/// Runs `args` (an rrun command line) with a new pty as its controlling terminal (stdin and
/// stderr on it, stdout a pipe); returns (stdout, what reached the pty's input queue, what
/// the terminal echoed).
fn run_on_pty(lab: &Lab, args: &[&str]) -> (String, Vec<u8>, Vec<u8>) {
    let (master, slave) = pty();
    let mut c = lab.rrun();
    c.args(args);
    on_controlling_pty(&mut c, &slave);
    let o = wait_output(c.spawn().unwrap(), 60);
    let out = text(&o.stdout);
    // SAFETY: fcntl on descriptors we own.
    unsafe { libc::fcntl(slave.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    (out, drain(&slave), drain(&master))
}

#[test]
fn without_t_the_container_has_no_controlling_terminal_and_tiocsti_reaches_nothing() {
    let lab = Lab::new("ct");
    let bin = Scratch::new("tiocsti");
    static_c(bin.path(), "tiocsti", TIOCSTI_C);
    let vol = format!("{}:/t:ro", bin.path().display());
    for userns in ["remap", "host"] {
        let (out, input, echo) = run_on_pty(
            &lab,
            &[
                "-i",
                "--net",
                "none",
                "--userns",
                userns,
                "-v",
                &vol,
                "--image",
                &lab.image,
                "--",
                "/t/tiocsti",
            ],
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{userns}: {out}");
        assert_eq!(
            lines[0], "tty:No such device or address",
            "{userns}: /dev/tty must not open: {out}"
        );
        assert_eq!(lines[1], "fd0:Operation not permitted", "{userns}: {out}");
        assert_eq!(lines[2], "fd2:Operation not permitted", "{userns}: {out}");
        assert!(
            input.is_empty(),
            "{userns}: injected into the caller's terminal: {:?}",
            text(&input)
        );
        assert!(
            !text(&echo).contains("INJECTED"),
            "{userns}: {:?}",
            text(&echo)
        );
    }
    // rrun exec, the same from a terminal.
    let name = unique("ctt");
    start_detached(&lab, &name, &["-v", &vol]);
    let (out, input, _) = run_on_pty(&lab, &["exec", "-i", &name, "/t/tiocsti"]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "tty:No such device or address",
            "fd0:Operation not permitted",
            "fd2:Operation not permitted"
        ]
    );
    assert!(
        input.is_empty(),
        "exec injected into the caller's terminal: {:?}",
        text(&input)
    );
    lab.rm_all();
}

#[test]
fn exec_hands_the_command_only_descriptors_0_to_2() {
    let lab = Lab::new("ct");
    let host = Scratch::new("fd7");
    std::fs::write(host.join("host-secret"), "x").unwrap();
    let name = unique("ctf");
    start_detached(&lab, &name, &[]);
    let mut c = lab.rrun();
    c.args([
        "exec",
        &name,
        "sh",
        "-c",
        "ls /proc/self/fd | tr '\\n' ' '; echo; ls /proc/self/fd/7/ 2>&1 | head -1",
    ]);
    with_extra_fd(&mut c, std::fs::File::open(host.path()).unwrap(), 7);
    let o = output(c, 60);
    let out = text(&o.stdout);
    // ls holds its own directory descriptor (3) while listing
    assert!(out.starts_with("0 1 2 3 \n"), "{out}{}", text(&o.stderr));
    assert!(
        !out.contains("host-secret"),
        "the caller's fd 7 reached the container: {out}"
    );
    lab.rm_all();
    lab.assert_clean(&[]);
}

#[test]
fn unmapped_or_minus_one_ids_are_refused_with_the_mapped_range() {
    let lab = Lab::new("ct");
    for (opts, want) in [
        (vec!["-u", "4294967295"], "uid 4294967295 is not mapped"),
        (vec!["-u", "0:4294967295"], "gid 4294967295 is not mapped"),
        (
            vec!["-u", "4294967295:4294967295"],
            "uid 4294967295 is not mapped",
        ),
        (
            vec!["-u", "65536"],
            "uid 65536 is not mapped in the container's user namespace (container uids 0-65535)",
        ),
        (
            vec!["--userns", "host", "-u", "4294967295"],
            "(container uids 0-4294967294)",
        ),
        (vec!["-u", "4294967296"], "uid 4294967296 is out of range"),
    ] {
        let o = lab.run(&opts, &["id"]);
        assert_one_line_failure(&o, want, &format!("{opts:?}"));
    }
    let img = line(lab.rbuild().args([
        "image",
        "create",
        &lab.layer,
        "--user",
        "4294967295",
        "--cmd",
        "id",
    ]));
    let mut c = lab.rrun();
    c.args(["--net", "none", "--image", &img]);
    assert_one_line_failure(&output(c, 60), "uid 4294967295 is not mapped", "image user");
    let name = unique("ctu");
    start_detached(&lab, &name, &[]);
    for u in ["4294967295", "65536", "0:70000"] {
        let o = output(
            {
                let mut c = lab.rrun();
                c.args(["exec", "-u", u, &name, "id"]);
                c
            },
            60,
        );
        assert_one_line_failure(&o, "is not mapped", &format!("exec -u {u}"));
    }
    lab.rm_all();
    lab.assert_clean(&[]);
}

/// An image of Alpine plus one layer with `entries`.
fn image_with(lab: &Lab, dir: &Scratch, name: &str, entries: &[Entry<'_>]) -> String {
    let tar = layer_tar(dir, name, entries);
    let layer = line(lab.rbuild().arg("layer").arg("add").arg(&tar));
    line(lab.rbuild().args(["image", "create", &lab.layer, &layer]))
}

fn run_image(lab: &Lab, image: &str, args: &[&str]) -> std::process::Output {
    let mut c = lab.rrun();
    c.args(["--net", "none", "--image", image, "--"]).args(args);
    output(c, 30)
}

#[test]
fn fifos_links_dirs_and_huge_files_at_etc_hosts_or_passwd_never_hang_rrun() {
    let lab = Lab::new("ct");
    let dir = Scratch::new("hostile");
    let etc = Entry::Dir("etc");
    // A FIFO at /etc/hosts is mounted over, unopened: the container works.
    let img = image_with(
        &lab,
        &dir,
        "fifo-hosts",
        &[Entry::Dir("etc"), Entry::Fifo("etc/hosts")],
    );
    let o = run_image(&lab, &img, &["sh", "-c", "grep -c localhost /etc/hosts"]);
    assert_eq!(
        (o.status.code(), text(&o.stdout).trim()),
        (Some(0), "2"),
        "{}",
        text(&o.stderr)
    );
    // A FIFO at /etc/passwd (the commands read /proc, as `id` would block on the FIFO): never
    // opened for reading by rrun; left out with one warning line when no
    // name must be looked up in it, one line of refusal when one must, at once either way.
    let img = image_with(
        &lab,
        &dir,
        "fifo-passwd",
        &[Entry::Dir("etc"), Entry::Fifo("etc/passwd")],
    );
    assert_warned_and_ran(
        &run_image(
            &lab,
            &img,
            &["awk", "/^Uid/ {print $2}", "/proc/self/status"],
        ),
        "the container's /etc/passwd is a FIFO, not a regular file",
        "0",
        "fifo passwd",
    );
    assert_warned_and_ran(
        &lab_run_user(
            &lab,
            &img,
            "7:8",
            &["awk", "/^Gid/ {print $2}", "/proc/self/status"],
        ),
        "/etc/passwd is a FIFO",
        "8",
        "fifo passwd, -u 7:8",
    );
    assert_one_line_failure(&lab_run_user(&lab, &img, "alice", &["true"]), "-u alice: the container's /etc/passwd is a FIFO, not a regular file: fix the file, or use a numeric -u UID:GID", "fifo passwd, -u alice");
    // Both files FIFOs and a group name to look up: the refusal is the only line.
    let img = image_with(
        &lab,
        &dir,
        "fifo-both",
        &[
            Entry::Dir("etc"),
            Entry::Fifo("etc/passwd"),
            Entry::Fifo("etc/group"),
        ],
    );
    assert_one_line_failure(
        &lab_run_user(&lab, &img, "0:wheel", &["true"]),
        "-u 0:wheel: the container's /etc/group is a FIFO",
        "fifo both, -u 0:wheel",
    );
    // /etc/passwd -> /dev/zero: not read forever.
    let img = image_with(
        &lab,
        &dir,
        "zero-passwd",
        &[Entry::Dir("etc"), Entry::Symlink("etc/passwd", "/dev/zero")],
    );
    assert_warned_and_ran(
        &run_image(&lab, &img, &["true"]),
        "is a character device, not a regular file",
        "",
        "passwd -> /dev/zero",
    );
    assert_one_line_failure(
        &lab_run_user(&lab, &img, "bin", &["true"]),
        "is a character device, not a regular file",
        "passwd -> /dev/zero, -u bin",
    );
    // /etc/group larger than the 1 MiB cap.
    let big = "g:x:1:\n".repeat(200_000).into_bytes();
    let img = image_with(
        &lab,
        &dir,
        "big-group",
        &[Entry::Dir("etc"), Entry::File("etc/group", big)],
    );
    assert_warned_and_ran(
        &run_image(&lab, &img, &["true"]),
        "the container's /etc/group is larger than 1024 KiB",
        "",
        "big group",
    );
    assert_one_line_failure(
        &lab_run_user(&lab, &img, "0:g", &["true"]),
        "the container's /etc/group is larger than 1024 KiB",
        "big group, -u 0:g",
    );
    // /etc/hosts a directory: refused with one line.
    let img = image_with(
        &lab,
        &dir,
        "dir-hosts",
        &[
            etc,
            Entry::Dir("etc/hosts"),
            Entry::File("etc/hosts/x", b"x".to_vec()),
        ],
    );
    assert_one_line_failure(
        &run_image(&lab, &img, &["true"]),
        "the image's /etc/hosts is a directory",
        "dir hosts",
    );
    // A symbolic link at /etc/resolv.conf pointing out of the root is replaced, never followed.
    let img = image_with(
        &lab,
        &dir,
        "link-resolv",
        &[
            Entry::Dir("etc"),
            Entry::Symlink("etc/resolv.conf", "/../../../../etc/shadow"),
        ],
    );
    let o = run_image(
        &lab,
        &img,
        &["sh", "-c", "test -L /etc/resolv.conf || echo replaced"],
    );
    assert_eq!(text(&o.stdout).trim(), "replaced", "{}", text(&o.stderr));
    lab.assert_clean(&[]);
}

#[test]
fn exec_refuses_a_fifo_or_dev_zero_passwd_in_a_running_container_at_once() {
    let lab = Lab::new("ct");
    let name = unique("cte");
    start_detached(&lab, &name, &[]);
    let exec = |args: &[&str]| {
        let mut c = lab.rrun();
        c.arg("exec").arg(&name).args(args);
        output(c, 30)
    };
    assert!(exec(&["sh", "-c", "rm /etc/passwd && mkfifo /etc/passwd"])
        .status
        .success());
    let t = std::time::Instant::now();
    // the container can still be entered (and repaired) by number, never by a name
    assert_warned_and_ran(
        &exec(&["awk", "/^Uid/ {print $2}", "/proc/self/status"]),
        "the container's /etc/passwd is a FIFO",
        "0",
        "exec, fifo passwd",
    );
    assert_one_line_failure(
        &exec(&["-u", "root", "true"]),
        "-u root: the container's /etc/passwd is a FIFO",
        "exec -u root, fifo passwd",
    );
    assert_warned_and_ran(
        &exec(&[
            "-u",
            "0:0",
            "sh",
            "-c",
            "rm /etc/passwd && echo 'root:x:0:0::/root:/bin/sh' > /etc/passwd && echo fixed",
        ]),
        "/etc/passwd is a FIFO",
        "fixed",
        "exec -u 0:0 repairs",
    );
    let o = exec(&["-u", "root", "id", "-u"]);
    assert_eq!(
        (
            o.status.code(),
            text(&o.stdout).trim(),
            text(&o.stderr).as_ref()
        ),
        (Some(0), "0", ""),
        "exec -u root after the repair"
    );
    assert!(t.elapsed().as_secs() < 10, "took {:?}", t.elapsed());
    lab.rm_all();
    let name2 = unique("ctz");
    start_detached(&lab, &name2, &[]);
    let mut c = lab.rrun();
    c.args(["exec", &name2, "ln", "-sf", "/dev/zero", "/etc/passwd"]);
    assert!(output(c, 30).status.success());
    let mut c = lab.rrun();
    c.args(["exec", &name2, "-u", "bin", "true"]);
    assert_one_line_failure(
        &output(c, 30),
        "is a character device",
        "exec -u bin, passwd -> /dev/zero",
    );
    let mut c = lab.rrun();
    c.args(["exec", &name2, "true"]);
    assert_warned_and_ran(
        &output(c, 30),
        "is a character device",
        "",
        "exec, passwd -> /dev/zero",
    );
    lab.rm_all();
    lab.assert_clean(&[]);
}

#[test]
fn file_volumes_work_and_mismatched_targets_fail_with_one_line() {
    let lab = Lab::new("ct");
    let host = Scratch::new("filevol");
    std::fs::write(host.join("data.txt"), "file-volume\n").unwrap();
    std::fs::write(
        host.join("passwd"),
        "root:x:0:0:host-passwd:/root:/bin/sh\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(host.join("data.txt"), host.join("link")).unwrap();
    let f = |n: &str| host.join(n).display().to_string();
    // a new file target, an existing file target, read-only, and a source given via a link
    assert_eq!(
        lab.ok(
            &["-v", &format!("{}:/new/dir/data.txt", f("data.txt"))],
            &["cat", "/new/dir/data.txt"]
        ),
        "file-volume"
    );
    assert_eq!(
        lab.ok(
            &["-v", &format!("{}:/etc/passwd", f("passwd"))],
            &["sh", "-c", "getent passwd root | cut -d: -f5"]
        ),
        "host-passwd"
    );
    let o = lab.run(
        &["-v", &format!("{}:/x:ro", f("data.txt"))],
        &["sh", "-c", "echo y > /x"],
    );
    assert_ne!(o.status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(host.join("data.txt")).unwrap(),
        "file-volume\n"
    );
    assert_eq!(
        lab.ok(&["-v", &format!("{}:/x", f("link"))], &["cat", "/x"]),
        "file-volume"
    );
    // a file onto a directory, a directory onto a file
    let o = lab.run(&["-v", &format!("{}:/etc", f("data.txt"))], &["true"]);
    assert_one_line_failure(
        &o,
        "/etc is a directory in the container but the source is a file",
        "file onto dir",
    );
    let o = lab.run(
        &["-v", &format!("{}:/etc/passwd", host.path().display())],
        &["true"],
    );
    assert_one_line_failure(
        &o,
        "/etc/passwd is a regular file in the container, not a directory",
        "dir onto file",
    );
    lab.assert_clean(&[]);
}

#[test]
fn root_proc_and_dev_targets_and_targets_that_are_files_fail_with_one_clear_line() {
    let lab = Lab::new("ct");
    let host = Scratch::new("tgt");
    let h = host.path().display().to_string();
    for (opts, want) in [
        (
            vec!["-v".to_string(), format!("{h}:/")],
            "/ cannot be a mount target",
        ),
        (
            vec!["--tmpfs".into(), "/".into()],
            "/ cannot be a mount target",
        ),
        (
            vec!["--tmpfs".into(), "/proc".into()],
            "/proc cannot be a mount target",
        ),
        (
            vec!["-v".into(), format!("{h}:/proc/sys")],
            "/proc/sys cannot be a mount target",
        ),
        (
            vec!["-v".into(), format!("{h}:/dev")],
            "/dev cannot be a mount target",
        ),
        (
            vec!["--tmpfs".into(), "/etc/hosts".into()],
            "--tmpfs /etc/hosts: /etc/hosts is a regular file in the container, not a directory",
        ),
        (
            vec!["-w".into(), "/etc/passwd".into()],
            "working directory /etc/passwd: /etc/passwd is not a directory in the container",
        ),
        (
            vec!["-w".into(), "/etc/passwd/x".into()],
            "/etc/passwd is not a directory in the container",
        ),
    ] {
        let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
        assert_one_line_failure(&lab.run(&opts, &["true"]), want, &format!("{opts:?}"));
    }
    // The same through a symbolic link of the image.
    let dir = Scratch::new("tgtimg");
    let img = image_with(
        &lab,
        &dir,
        "links",
        &[
            Entry::Symlink("toroot", "/"),
            Entry::Symlink("toproc", "../proc/sys"),
        ],
    );
    for t in ["/toroot", "/toproc"] {
        let mut c = lab.rrun();
        c.args([
            "--net",
            "none",
            "-v",
            &format!("{h}:{t}"),
            "--image",
            &img,
            "--",
            "true",
        ]);
        assert_one_line_failure(&output(c, 30), "cannot be a mount target", t);
    }
    // What may be replaced in /proc (lxcfs-style) still can be.
    std::fs::write(host.join("meminfo"), "MemTotal: 1 kB\n").unwrap();
    assert_eq!(
        lab.ok(
            &["-v", &format!("{h}/meminfo:/proc/meminfo:ro")],
            &["head", "-1", "/proc/meminfo"]
        ),
        "MemTotal: 1 kB"
    );
    lab.assert_clean(&[]);
}

#[test]
fn hostnames_are_rfc_1123_labels_so_nothing_reaches_etc_hosts() {
    let lab = Lab::new("ct");
    for bad in ["a\n10.0.0.1 evil", "a b", "-a", "a#b", &"x".repeat(65)] {
        let o = lab.run(&["--hostname", bad], &["true"]);
        assert_one_line_failure(&o, "bad --hostname", &format!("{bad:?}"));
    }
    assert_eq!(
        lab.ok(
            &["--hostname", "web-1.lab"],
            &["sh", "-c", "hostname; tail -1 /etc/hosts"]
        ),
        "web-1.lab\n127.0.1.1\tweb-1.lab"
    );
    lab.assert_clean(&[]);
}

#[test]
fn the_main_process_gets_the_same_supplementary_groups_as_exec() {
    let lab = Lab::new("ct");
    // Alpine lists root in these groups; Docker gives them too.
    let want = "0 1 2 3 4 6 10 11 20 26 27";
    assert_eq!(lab.ok(&[], &["id", "-G"]), want);
    assert_eq!(lab.ok(&["-u", "1000:1000"], &["id", "-G"]), "1000");
    let name = unique("ctg");
    start_detached(&lab, &name, &[]);
    let mut c = lab.rrun();
    c.args(["exec", &name, "id", "-G"]);
    assert_eq!(text(&output(c, 30).stdout).trim(), want);
    let mut c = lab.rrun();
    c.args(["exec", &name, "cat", "/proc/1/status"]);
    let status = text(&output(c, 30).stdout);
    let groups = status
        .lines()
        .find(|l| l.starts_with("Groups:"))
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(groups, want, "rinit (PID 1) runs with the same groups");
    lab.rm_all();
}

#[test]
fn mounts_rrun_makes_are_nodev_and_the_root_keeps_setuid() {
    let lab = Lab::new("ct");
    let got = lab.ok(&["--tmpfs", "/scratch"], &[
        "awk",
        "$2 == \"/\" || $2 == \"/dev\" || $2 == \"/scratch\" || $2 == \"/dev/shm\" || $2 == \"/tmp\" {print $2, ($4 ~ /nodev/ ? \"nodev\" : \"dev\"), ($4 ~ /nosuid/ ? \"nosuid\" : \"suid\")}",
        "/proc/mounts",
    ]);
    let mut lines: Vec<&str> = got.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "/ nodev suid",
            "/dev nodev nosuid",
            "/dev/shm nodev nosuid",
            "/scratch nodev nosuid",
            "/tmp nodev nosuid"
        ],
        "{got}"
    );
}

#[test]
fn exec_searches_path_past_files_that_are_not_executable() {
    let lab = Lab::new("ct");
    let name = unique("ctp");
    start_detached(&lab, &name, &[]);
    let mut c = lab.rrun();
    c.args(["exec", &name, "sh", "-c", "printf '#!/bin/sh\\necho wrong\\n' > /usr/local/bin/hello; chmod 644 /usr/local/bin/hello; printf '#!/bin/sh\\necho right\\n' > /usr/bin/hello; chmod 755 /usr/bin/hello"]);
    assert!(output(c, 30).status.success());
    let mut c = lab.rrun();
    c.args(["exec", &name, "hello"]);
    let o = output(c, 30);
    assert_eq!(
        (o.status.code(), text(&o.stdout).trim()),
        (Some(0), "right"),
        "{}",
        text(&o.stderr)
    );
    let mut c = lab.rrun();
    c.args(["exec", &name, "no-such-command"]);
    assert_eq!(output(c, 30).status.code(), Some(127));
    lab.rm_all();
}

#[test]
fn non_utf8_arguments_and_environment_values_reach_the_command_byte_for_byte() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let lab = Lab::new("ct");
    let mut c = lab.rrun();
    c.args(["--net", "none", "-e"])
        .arg(OsStr::from_bytes(b"K=a\xffb"))
        .args([
            "--image",
            &lab.image,
            "--",
            "sh",
            "-c",
            "printf %s \"$K\"; printf / ; printf %s \"$1\"",
            "sh",
        ]);
    c.arg(OsStr::from_bytes(b"\xfe\x80"));
    let o = output(c, 30);
    assert_eq!(o.stdout, b"a\xffb/\xfe\x80", "{}", text(&o.stderr));
    let name = unique("ctn");
    start_detached(&lab, &name, &[]);
    let mut c = lab.rrun();
    c.args(["exec", "-e"])
        .arg(OsStr::from_bytes(b"K=\xff"))
        .args([
            &name,
            "sh",
            "-c",
            "printf %s \"$K\"; printf %s \"$1\"",
            "sh",
        ])
        .arg(OsStr::from_bytes(b"\xfe"));
    let o = output(c, 30);
    assert_eq!(o.stdout, b"\xff\xfe", "{}", text(&o.stderr));
    assert_eq!(
        lab.inspect(&name)["command"][0],
        "sleep",
        "UTF-8 arguments stay JSON strings"
    );
    lab.rm_all();
    lab.assert_clean(&[]);
}
