//! The user-mode network helper process of a container (pasta or slirp4netns): which process
//! it is, as kept in the container's network.json, and stopping it when the container goes.
//! The helper holds the container's network namespace open, so it never ends by itself: every
//! end of a container (rrun's finish, `rrun rm`, the next command's tidy-up after rrun was
//! killed) stops it. Also the one-line errors of starting one. Kernel interfaces:
//! /proc/PID/stat and /proc/PID/comm (proc(5)), pidfd_open(2), pidfd_send_signal(2), poll(2)
//! on a pidfd.

use std::path::Path;

use rustix::event::{PollFd, PollFlags, Timespec};
use serde::{Deserialize, Serialize};

use crate::error::{user, Error};
use crate::sys;

/// A helper process, identified beyond its pid (which the kernel may reuse once it is gone)
/// by its start time and command name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Helper {
    /// The program rrun started: `pasta` or `slirp4netns`.
    pub program: String,
    pub pid: i32,
    /// Field 22 of /proc/PID/stat (clock ticks after boot).
    pub pid_start: u64,
    /// /proc/PID/comm when it started (`passt.avx2` for Debian's pasta, say).
    pub comm: String,
}

impl Helper {
    /// The helper `program` running as `pid`, None when no such process exists (any more).
    pub fn of(program: &str, pid: i32) -> Option<Helper> {
        let pid_start = sys::procfs::proc_start_time(pid)?;
        let comm = sys::procfs::comm(pid)?;
        Some(Helper {
            program: program.to_string(),
            pid,
            pid_start,
            comm,
        })
    }

    /// True while this very process (same start time and name) runs and has not exited.
    pub fn alive(&self) -> bool {
        matches!(sys::procfs::proc_state_and_start(self.pid), Some((s, t)) if t == self.pid_start && s != 'Z' && s != 'X')
            && sys::procfs::comm(self.pid).as_deref() == Some(self.comm.as_str())
    }

    /// Kills the helper (SIGKILL: it keeps no state worth saving) and waits up to 2 s for it
    /// to end; nothing when it is gone already. The pid is checked through a pidfd taken
    /// first, so a reused pid is never signalled. Reaps it when it is this process's child.
    pub fn stop(&self) {
        let Ok(fd) = sys::process::pidfd_open(self.pid) else {
            return;
        };
        if !self.alive() {
            return;
        }
        if let Err(e) = sys::process::pidfd_send_signal(
            rustix::fd::AsFd::as_fd(&fd),
            rustix::process::Signal::KILL.as_raw(),
        ) {
            tracing::debug!("stop {} ({}): {e}", self.program, self.pid);
            return;
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            let mut fds = [PollFd::new(&fd, PollFlags::IN)];
            let t = Timespec {
                tv_sec: left.as_secs() as i64,
                tv_nsec: left.subsec_nanos() as i64,
            };
            match rustix::event::poll(&mut fds, Some(&t)) {
                Err(rustix::io::Errno::INTR) => continue,
                _ => break,
            }
        }
        let _ = sys::process::waitpid(self.pid, true);
    }
}

/// The logs the helpers write in a container's folder, made before they start: a folder
/// without one never had a helper.
const LOGS: [&str; 2] = ["pasta.log", "slirp4netns.log"];

/// Stops the helpers of container folder `dir` that no record names: those a killed rrun
/// started but had not recorded yet (pasta configures the namespace before it daemonizes and
/// says its pid, and it never ends by itself). A helper of `dir` is a process of this user
/// named pasta, passt* or slirp4netns whose command line names a file in `dir` (pasta's
/// `-P DIR/pasta.pid`) or whose working folder is `dir` (slirp4netns runs there). Scans
/// /proc again after a kill, for a pasta that forked meanwhile.
pub fn stop_strays(dir: &Path) {
    if !LOGS.iter().any(|l| dir.join(l).exists()) {
        return;
    }
    let Ok(dir) = std::fs::canonicalize(dir) else {
        return;
    };
    for _ in 0..3 {
        let strays = strays_of(&dir);
        if strays.is_empty() {
            return;
        }
        for h in strays {
            tracing::info!("stop {} ({}) that no record names", h.program, h.pid);
            h.stop();
        }
    }
}

/// The helper processes of (canonical) folder `dir`, as [`stop_strays`] finds them.
fn strays_of(dir: &Path) -> Vec<Helper> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let me = rustix::process::geteuid().as_raw();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut prefix = dir.as_os_str().as_bytes().to_vec();
    prefix.push(b'/');
    let mut out = Vec::new();
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if !std::fs::metadata(e.path()).is_ok_and(|m| m.uid() == me) {
            continue;
        }
        let Some(comm) = sys::procfs::comm(pid) else {
            continue;
        };
        let program = if comm == "slirp4netns" {
            "slirp4netns"
        } else if comm.starts_with("pasta") || comm.starts_with("passt") {
            "pasta"
        } else {
            continue;
        };
        let cwd_is_dir = std::fs::read_link(e.path().join("cwd")).is_ok_and(|c| c == dir);
        let names_dir = std::fs::read(e.path().join("cmdline"))
            .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a.starts_with(&prefix)));
        if cwd_is_dir || names_dir {
            out.extend(Helper::of(program, pid));
        }
    }
    out
}

/// Whether `program` is an executable file in one of $PATH's folders (execvp(3)'s search).
pub fn on_path(program: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|d| {
        rustix::fs::access(d.join(program), rustix::fs::Access::EXEC_OK).is_ok()
            && d.join(program).is_file()
    })
}

/// The error of starting helper `program` (from Debian package `package`): a missing program
/// is one line naming the package to install.
pub fn spawn_error(program: &str, package: &str, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        return user(format!(
            "--net {program} needs {program}, which is not installed (not found in PATH): install Debian's {package} package (apt-get install {package})"
        ));
    }
    user(format!("--net {program}: cannot start {program}: {e}"))
}

/// The last line of a helper's log worth showing (not syslog noise), for a one-line error.
pub fn last_line(log: &Path) -> String {
    let text = std::fs::read(log).unwrap_or_default();
    let text = String::from_utf8_lossy(&text[text.len().saturating_sub(64 * 1024)..]);
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("Failed to send") && !l.starts_with("WARNING"))
        .unwrap_or("no message")
        .to_string()
}
