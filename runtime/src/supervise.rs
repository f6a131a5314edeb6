//! Watching a running container from rrun: forward signals to its init, relay the terminal,
//! follow the window size, reap it and turn its wait status into rrun's exit code.
//! Kernel docs: signalfd(2), poll(2), waitpid(2), pidfd_send_signal(2).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use crate::error::{Context, Result};
use crate::{sys, tty};

/// Signals rrun blocks and handles through a signalfd while a container runs.
pub const HANDLED: [i32; 8] =
    [libc::SIGCHLD, libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGWINCH];

/// What to relay.
pub struct Io<'a> {
    /// The pty master (terminal mode).
    pub master: Option<BorrowedFd<'a>>,
    /// Where the caller's input comes from (terminal mode with -i).
    pub stdin: Option<i32>,
    /// Where the terminal's output goes.
    pub stdout: i32,
}

/// Waits for process `pid` (our child) to end, forwarding signals through `pidfd` and relaying
/// the pty. Returns the raw wait status.
pub fn wait(pid: i32, pidfd: BorrowedFd<'_>, sigfd: &OwnedFd, io: &Io<'_>) -> Result<i32> {
    let mut stdin_open = io.stdin.is_some();
    let mut master_open = io.master.is_some();
    if let (Some(m), Some(i)) = (io.master, io.stdin) {
        tty::copy_winsize(i, m.as_raw_fd());
    } else if let Some(m) = io.master {
        tty::copy_winsize(io.stdout, m.as_raw_fd());
    }
    let mut buf = vec![0u8; 16384];
    let mut status: Option<i32> = None;
    loop {
        if status.is_some() && !master_open {
            break;
        }
        let mut fds = vec![libc::pollfd { fd: sigfd.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        let mi = master_open.then(|| {
            fds.push(libc::pollfd { fd: io.master.map_or(-1, |m| m.as_raw_fd()), events: libc::POLLIN, revents: 0 });
            fds.len() - 1
        });
        let si = (stdin_open && status.is_none()).then(|| {
            fds.push(libc::pollfd { fd: io.stdin.unwrap_or(-1), events: libc::POLLIN, revents: 0 });
            fds.len() - 1
        });
        // Once the container has exited, drain the pty without blocking forever.
        let timeout = if status.is_some() { 100 } else { -1 };
        // SAFETY: `fds` is a valid array of pollfd for its length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e).ctx(|| "poll".into());
        }
        if n == 0 && status.is_some() {
            break;
        }
        if fds[0].revents & libc::POLLIN != 0 {
            while let Some(sig) = sys::read_signal(sigfd.as_fd()) {
                match sig {
                    // Only our one child is waited for: reaping "any" here could take its
                    // status away from us.
                    libc::SIGCHLD if status.is_none() => {
                        status = sys::waitpid(pid, libc::WNOHANG).ctx(|| format!("wait for the container's init {pid}"))?;
                    }
                    libc::SIGCHLD => {}
                    libc::SIGWINCH => {
                        if let Some(m) = io.master {
                            tty::copy_winsize(io.stdin.unwrap_or(io.stdout), m.as_raw_fd());
                        }
                    }
                    s if status.is_none() => {
                        let _ = sys::pidfd_send_signal(pidfd, s);
                    }
                    _ => {}
                }
            }
        }
        if let Some(i) = mi {
            if fds[i].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                let m = io.master.map_or(-1, |m| m.as_raw_fd());
                // SAFETY: reading into a valid buffer of its length.
                let r = unsafe { libc::read(m, buf.as_mut_ptr().cast(), buf.len()) };
                if r > 0 {
                    let _ = tty::write_all(io.stdout, &buf[..r as usize]);
                } else if r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                    master_open = false;
                }
            }
        }
        if let Some(i) = si {
            if fds[i].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                let fd = io.stdin.unwrap_or(-1);
                // SAFETY: reading into a valid buffer of its length.
                let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
                if r > 0 {
                    if let Some(m) = io.master {
                        let _ = tty::write_all(m.as_raw_fd(), &buf[..r as usize]);
                    }
                } else if r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                    stdin_open = false;
                }
            }
        }
        if status.is_none() && fds[0].revents == 0 {
            // A SIGCHLD may have been merged with one already read: check cheaply.
            if let Ok(Some(st)) = sys::waitpid(pid, libc::WNOHANG) {
                status = Some(st);
            }
        }
    }
    Ok(status.unwrap_or(0))
}
