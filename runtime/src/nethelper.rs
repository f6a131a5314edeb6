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

/// The error of starting helper `program` (from Debian package `package`): a missing program
/// is one line naming the package to install.
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
