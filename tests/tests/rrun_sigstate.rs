//! A container's command starts with every signal at its default disposition and none blocked,
//! whatever signal state rrun itself was started with: run in the foreground, `rrun exec`, and
//! a detached container's command alike. rrun's caller may be a background job of a shell
//! (SIGINT and SIGQUIT ignored), nohup (SIGHUP ignored), or any program that ignores or blocks
//! signals and forgets to reset them before exec; none of that may reach the container, where
//! a command that inherits an ignored SIGTERM cannot even be stopped by `rrun stop`.

mod rrun_common;

use std::os::unix::process::CommandExt;
use std::process::Command;

use rbox_tests::unique;
use rrun_common::*;

/// What rrun's caller ignores (SIG_IGN): HUP, INT, QUIT, TERM.
const IGNORED: [i32; 4] = [libc::SIGHUP, libc::SIGINT, libc::SIGQUIT, libc::SIGTERM];
/// What it blocks: USR1, USR2, ALRM.
const BLOCKED: [i32; 3] = [libc::SIGUSR1, libc::SIGUSR2, libc::SIGALRM];

/// `c`, started with [`IGNORED`] ignored and [`BLOCKED`] blocked, on top of the clean state
/// rbox_tests::command gives it.
fn careless_caller(mut c: Command) -> Command {
    // SAFETY: between fork and exec the closure makes only sigaction(2) and sigprocmask(2)
    // calls on data of its own stack; it allocates nothing and takes no lock.
    unsafe {
        c.pre_exec(|| {
            let mut ign: libc::sigaction = std::mem::zeroed();
            ign.sa_sigaction = libc::SIG_IGN;
            libc::sigemptyset(&mut ign.sa_mask);
            for s in IGNORED {
                if libc::sigaction(s, &ign, std::ptr::null_mut()) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in BLOCKED {
                libc::sigaddset(&mut set, s);
            }
            if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c
}

/// The SigBlk and SigIgn lines of a /proc/PID/status text, in that order.
fn sig_lines(status: &str) -> Vec<String> {
    let mut v: Vec<String> = status
        .lines()
        .filter(|l| l.starts_with("SigBlk:") || l.starts_with("SigIgn:"))
        .map(String::from)
        .collect();
    v.sort();
    v
}

/// A mask of signal numbers as /proc/PID/status prints it (16 hex digits, bit N-1 = signal N).
fn mask(sigs: &[i32]) -> String {
    format!("{:016x}", sigs.iter().fold(0u64, |m, s| m | 1 << (s - 1)))
}

const CLEAN: [&str; 2] = ["SigBlk:\t0000000000000000", "SigIgn:\t0000000000000000"];
/// The command reads its own status. Not through `sh -c`: busybox's shell ignores SIGQUIT
/// itself, and keeps it ignored when it execs a `-c` command's last word.
const PROBE: [&str; 3] = ["grep", "-E", "^Sig(Blk|Ign):"];

#[test]
fn container_commands_start_with_no_signal_ignored_or_blocked_whatever_rrun_inherits() {
    let lab = Lab::new("sigstate");
    // The caller's state is really what the test says (else the test would prove nothing).
    let mut c = careless_caller(rbox_tests::command(PROBE[0]));
    c.args(&PROBE[1..]).arg("/proc/self/status");
    assert_eq!(
        sig_lines(&ok_stdout(c, "the careless caller's own state")),
        [
            format!("SigBlk:\t{}", mask(&BLOCKED)),
            format!("SigIgn:\t{}", mask(&IGNORED)),
        ]
    );

    // rrun in the foreground.
    let mut c = careless_caller(lab.rrun());
    c.args(["--net", "none", "--image", &lab.image, "--"]);
    c.args(PROBE).arg("/proc/self/status");
    assert_eq!(sig_lines(&ok_stdout(c, "rrun")), CLEAN, "rrun's command");

    // A detached container's command (its state read from outside, through exec), and a
    // command started by `rrun exec` in it.
    let name = unique("sigstate");
    let mut c = careless_caller(lab.rrun());
    c.args([
        "-d", "--name", &name, "--net", "none", "--image", &lab.image,
    ]);
    c.args(["--", "sleep", "1000"]);
    ok_stdout(c, "rrun -d");
    // rinit's child is the command
    let of_command =
        "grep -E '^Sig(Blk|Ign):' /proc/$(cut -d' ' -f1 /proc/1/task/1/children)/status";
    let mut c = lab.rrun();
    c.args(["exec", &name, "sh", "-c", of_command]);
    let detached = sig_lines(&String::from_utf8_lossy(&output(c, 60).stdout));
    let mut c = careless_caller(lab.rrun());
    c.args(["exec", &name]).args(PROBE).arg("/proc/self/status");
    let exec = sig_lines(&ok_stdout(c, "rrun exec"));
    let mut c = lab.rrun();
    c.args(["rm", "-f", &name]);
    ok_stdout(c, "rrun rm -f");
    assert_eq!(detached, CLEAN, "the detached container's command");
    assert_eq!(exec, CLEAN, "rrun exec's command");
}
