//! Helpers shared by the rinit test files: which init runs and how (PID 1 of a fresh pid+mount
//! namespace, or a plain subreaper), a small static C probe program, commands with timeouts,
//! and a pseudo-terminal driver.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The init under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    /// Ours.
    Rinit,
    /// Debian's tini-static: the suite must pass against it too, so it tests something real.
    Tini,
}

impl Init {
    pub fn path(self) -> PathBuf {
        match self {
            Init::Rinit => rbox_tests::bin("rinit"),
            Init::Tini => {
                let p = PathBuf::from("/usr/bin/tini-static");
                assert!(
                    p.is_file(),
                    "/usr/bin/tini-static is missing: apt-get install tini"
                );
                p
            }
        }
    }
}

/// How the init runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// PID 1 of a new pid+mount namespace (`unshare --pid --fork --mount --mount-proc`), with
    /// the host's / as root. /tmp is bind-mounted onto itself first so that it counts as
    /// mounted: rinit then keeps it and the test's files there stay visible.
    Pid1,
    /// A plain process on the host with `-s` (child subreaper).
    Subreaper,
}

/// A command running `init [-g] -- args...` in `mode`.
pub fn init_command<S: AsRef<OsStr>>(init: Init, mode: Mode, group: bool, args: &[S]) -> Command {
    let mut c;
    match mode {
        Mode::Pid1 => {
            c = rbox_tests::command("unshare");
            c.args([
                "--pid",
                "--fork",
                "--mount",
                "--mount-proc",
                "--kill-child",
                "--",
            ]);
            c.args([
                "/bin/sh",
                "-c",
                "mount --bind /tmp /tmp && exec \"$@\"",
                "pid1",
            ]);
            c.arg(init.path());
        }
        Mode::Subreaper => {
            c = rbox_tests::command(init.path());
            c.arg("-s");
        }
    }
    if group {
        c.arg("-g");
    }
    c.arg("--");
    c.args(args);
    c
}

/// What a finished command printed and how it ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Finished {
    /// The exit code; a death by signal shows as 128+N like a shell would.
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| 128 + self.status.signal().unwrap_or(0))
    }
}

/// Runs `c` with stdin closed and output captured; kills it and fails after `timeout`.
pub fn run(mut c: Command, timeout: Duration) -> Finished {
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = c
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {c:?}: {e}"));
    let out = reader(child.stdout.take().expect("stdout"));
    let err = reader(child.stderr.take().expect("stderr"));
    let status = wait_or_kill(&mut child, timeout, &c);
    let elapsed = start.elapsed();
    Finished {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        elapsed,
    }
}

fn reader(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = r.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    })
}

/// Waits for `child` up to `timeout`; on timeout kills it (SIGKILL) and fails the test.
pub fn wait_or_kill(
    child: &mut Child,
    timeout: Duration,
    what: &dyn std::fmt::Debug,
) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The pid of the init started by `child`: the child itself as a subreaper, or the process
/// unshare forked (PID 1 inside) in [`Mode::Pid1`].
pub fn init_pid(child: &Child, mode: Mode) -> i32 {
    let pid = child.id() as i32;
    if mode == Mode::Subreaper {
        return pid;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        if let Some(first) = children.split_whitespace().next() {
            return first.parse().expect("a pid");
        }
        assert!(
            Instant::now() < deadline,
            "unshare (pid {pid}) started no child"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends signal `sig` to `pid`.
pub fn send(pid: i32, sig: i32) {
    let pid = rustix::process::Pid::from_raw(pid).expect("pid > 0");
    let signal = rustix::process::Signal::from_named_raw(sig).expect("a named signal");
    rustix::process::kill_process(pid, signal)
        .unwrap_or_else(|e| panic!("kill({pid:?}, {sig}): {e}"));
}

/// Lines a child prints, as they come, with a timeout per wait.
pub struct Lines {
    rx: std::sync::mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Lines {
    pub fn of(r: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(r).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines {
            rx,
            seen: Vec::new(),
        }
    }

    /// Waits until a line equal to `want` arrives; fails after `timeout`.
    pub fn expect(&mut self, want: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.seen.iter().any(|l| l == want) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("no line {want:?} within {timeout:?}; got {:?}", self.seen),
            }
        }
    }

    /// Collects what arrives during `d`.
    pub fn gather(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        while let Ok(line) = self
            .rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line);
        }
    }
}

/// The C source of the probe: a static program that runs in any root, even an empty one.
const PROBE_C: &str = r#"
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* state and ppid of pid from /proc/PID/stat; -1 when it is gone */
static int stat_of(const char *pid, char *state) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%s/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    int ppid;
    if (!p || sscanf(p + 1, " %c %d", state, &ppid) != 2) return -1;
    return ppid;
}

/* zombies whose parent is `parent` */
static int zombies_of(int parent) {
    DIR *d = opendir("/proc");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char st;
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        if (stat_of(e->d_name, &st) == parent && st == 'Z') n++;
    }
    closedir(d);
    return n;
}

/* n orphans: each middle child forks a grandchild and exits at once; the grandchild waits to
   be re-parented, reports whether its new parent is our parent (the init), then exits and
   must be reaped by the init. */
static int storm(long n, int init) {
    int p[2];
    if (pipe(p)) return perror("pipe"), 2;
    for (long i = 0; i < n; i++) {
        pid_t m = fork();
        if (m < 0) { usleep(1000); i--; continue; }
        if (m == 0) {
            pid_t mid = getpid();
            if (fork() == 0) {
                while (getppid() == mid) sched_yield();
                char c = getppid() == init ? 'y' : 'n';
                write(p[1], &c, 1);
                _exit(0);
            }
            _exit(0);
        }
        waitpid(m, NULL, 0);
    }
    close(p[1]);
    long yes = 0, no = 0;
    char buf[4096];
    ssize_t r;
    while ((r = read(p[0], buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < r; i++) buf[i] == 'y' ? yes++ : no++;
    int z = -1;
    for (int t = 0; t < 1000; t++) {
        z = zombies_of(init);
        if (z == 0) break;
        usleep(10000);
    }
    printf("orphans=%ld reparented=%ld elsewhere=%ld zombies=%d\n", n, yes, no, z);
    return yes == n && z == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "exit")) return atoi(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "raise")) {
        int sig = atoi(argv[2]);
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        signal(sig, SIG_DFL);
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, sig);
        sigprocmask(SIG_UNBLOCK, &s, NULL);
        kill(getpid(), sig);
        pause();
        return 99;
    }
    if (argc == 3 && !strcmp(argv[1], "cat")) {
        char buf[4096];
        int fd = open(argv[2], O_RDONLY);
        if (fd < 0) return perror(argv[2]), 1;
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0) write(1, buf, n);
        return 0;
    }
    if (argc == 2 && !strcmp(argv[1], "fds")) {
        DIR *d = opendir("/proc/self/fd");
        if (!d) return perror("/proc/self/fd"), 1;
        struct dirent *e;
        int mine = dirfd(d), first = 1;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.' || atoi(e->d_name) == mine) continue;
            printf(first ? "%s" : " %s", e->d_name);
            first = 0;
        }
        printf("\n");
        return 0;
    }
    /* the init is our parent, unless given (a process that joined the namespace later) */
    if (argc == 3 && !strcmp(argv[1], "storm")) return storm(atol(argv[2]), getppid());
    if (argc == 4 && !strcmp(argv[1], "storm")) return storm(atol(argv[2]), atoi(argv[3]));
    fprintf(stderr, "usage: probe exit N | raise SIG | cat FILE | fds | storm N [INIT]\n");
    return 2;
}
"#;

/// The probe, compiled static with gcc once per source version (outside /tmp, in cargo's
/// target tmp dir), e.g. `probe storm 10000`.
pub fn probe() -> PathBuf {
    static PROBE: OnceLock<PathBuf> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            PROBE_C.hash(&mut h);
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
            let path = dir.join(format!("rinit-probe-{:016x}", h.finish()));
            if path.is_file() {
                return path;
            }
            let tmp = dir.join(rbox_tests::unique("rinit-probe-build-"));
            std::fs::create_dir_all(&tmp).expect("probe build dir");
            std::fs::write(tmp.join("probe.c"), PROBE_C).expect("write probe.c");
            let out = rbox_tests::command("gcc")
                .args(["-static", "-O2", "-o"])
                .arg(tmp.join("probe"))
                .arg(tmp.join("probe.c"))
                .output()
                .expect("gcc (apt-get install gcc libc6-dev)");
            assert!(
                out.status.success(),
                "gcc -static failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::rename(tmp.join("probe"), &path).expect("install probe");
            let _ = std::fs::remove_dir_all(&tmp);
            path
        })
        .clone()
}

/// A pseudo-terminal whose slave is the controlling terminal of a command.
pub struct Pty {
    master: std::fs::File,
    buf: Arc<(Mutex<Vec<u8>>, Condvar)>,
    pub child: Child,
}

impl Pty {
    /// Starts `c` in a new session with the pty slave as stdin/stdout/stderr and controlling
    /// terminal (setsid + TIOCSCTTY in the child, as rrun does before exec'ing rinit).
    pub fn spawn(mut c: Command) -> Pty {
        use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
        let master: OwnedFd =
            openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).expect("openpt");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc_o_noctty())
            .open(Path::new(OsStr::new(
                std::str::from_utf8(name.to_bytes()).expect("utf-8 pts name"),
            )))
            .expect("open pts slave");
        c.stdin(slave.try_clone().expect("dup"))
            .stdout(slave.try_clone().expect("dup"))
            .stderr(slave);
        // SAFETY: between fork and exec the closure makes only two system calls (setsid,
        // ioctl TIOCSCTTY) through rustix, which neither allocates nor takes locks.
        unsafe {
            c.pre_exec(|| {
                rustix::process::setsid()?;
                rustix::process::ioctl_tiocsctty(std::io::stdin())?;
                Ok(())
            });
        }
        let child = c
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {c:?}: {e}"));
        drop(c); // closes our copies of the slave, so the master reads EOF when the child is gone
        let master = std::fs::File::from(master);
        let buf = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let (mut r, b) = (master.try_clone().expect("dup master"), buf.clone());
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = r.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                b.0.lock().unwrap().extend_from_slice(&chunk[..n]);
                b.1.notify_all();
            }
        });
        Pty { master, buf, child }
    }

    /// Types `s` on the terminal.
    pub fn type_in(&mut self, s: &str) {
        self.master
            .write_all(s.as_bytes())
            .expect("write to pty master");
    }

    /// Waits until the terminal showed `want`; fails after `timeout` with what it showed.
    pub fn expect(&self, want: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut seen = self.buf.0.lock().unwrap();
        loop {
            if String::from_utf8_lossy(&seen).contains(want) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the terminal never showed {want:?}; it showed:\n{}",
                String::from_utf8_lossy(&seen)
            );
            seen = self.buf.1.wait_timeout(seen, left).unwrap().0;
        }
    }

    /// Waits until the terminal's foreground process group is led by a process named `comm`
    /// (TIOCGPGRP works on the master side too), e.g. until a typed `sleep` really runs.
    pub fn wait_for_foreground(&self, comm: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(pgrp) = rustix::termios::tcgetpgrp(&self.master) {
                let name = std::fs::read_to_string(format!("/proc/{}/comm", pgrp.as_raw_nonzero()));
                if name.is_ok_and(|n| n.trim_end() == comm) {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{comm} never became the foreground job; the terminal showed:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Everything the terminal showed so far.
    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.buf.0.lock().unwrap()).into_owned()
    }

    /// Waits up to `d` for the command to end.
    pub fn wait_briefly(&mut self, d: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + d;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// Waits for the command to end; fails after `timeout` with what the terminal showed.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the command did not end within {timeout:?}; the terminal showed:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn libc_o_noctty() -> i32 {
    0o400 // O_NOCTTY on Linux
}
