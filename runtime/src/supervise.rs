//! Watching a running container from rrun: forward signals to its init, relay the terminal,
//! follow the window size, reap it and turn its wait status into rrun's exit code.
//! Kernel docs: signalfd(2), poll(2), waitpid(2), pidfd_send_signal(2).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use crate::error::{Context, Result};
use crate::{sys, tty};

/// Signals rrun blocks and handles through a signalfd while a container runs.
pub const HANDLED: [i32; 8] = [
    libc::SIGCHLD,
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

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
/// the pty. Returns the raw wait status. After the end, the pty is drained (until it closes or
/// stays quiet for 100 ms).
pub fn wait(pid: i32, pidfd: BorrowedFd<'_>, sigfd: &OwnedFd, io: &Io<'_>) -> Result<i32> {
    let mut relay = Relay {
        io,
        stdin_open: io.stdin.is_some(),
        master_open: io.master.is_some(),
        buf: vec![0u8; 16384],
    };
    if let Some(m) = io.master {
        tty::copy_winsize(io.stdin.unwrap_or(io.stdout), m.as_raw_fd());
    }
    let mut status: Option<i32> = None;
    while status.is_none() || relay.master_open {
        let mut fds = vec![pollfd(sigfd.as_raw_fd())];
        let (mi, si) = relay.add_poll_fds(&mut fds, status.is_none());
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
            status = handle_signals(pid, pidfd, sigfd, io, status)?;
        } else if status.is_none() {
            // A SIGCHLD may have been merged with one already read: check cheaply.
            status = sys::process::waitpid(pid, libc::WNOHANG).ok().flatten();
        }
        relay.pump(&fds, mi, si);
    }
    Ok(status.unwrap_or(0))
}

fn pollfd(fd: i32) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// Reads every pending signal: SIGCHLD reaps our one child (never "any" child, which could
/// take its status away), SIGWINCH resizes the pty, the others go to the container's init
/// while it runs. Returns the wait status once the child has ended.
fn handle_signals(
    pid: i32,
    pidfd: BorrowedFd<'_>,
    sigfd: &OwnedFd,
    io: &Io<'_>,
    mut status: Option<i32>,
) -> Result<Option<i32>> {
    while let Some(sig) = sys::signal::read_signal(sigfd.as_fd()) {
        match sig {
            libc::SIGCHLD if status.is_none() => {
                status = sys::process::waitpid(pid, libc::WNOHANG)
                    .ctx(|| format!("wait for the container's init {pid}"))?;
            }
            libc::SIGCHLD => {}
            libc::SIGWINCH => {
                if let Some(m) = io.master {
                    tty::copy_winsize(io.stdin.unwrap_or(io.stdout), m.as_raw_fd());
                }
            }
            s if status.is_none() => {
                let _ = sys::process::pidfd_send_signal(pidfd, s);
            }
            _ => {}
        }
    }
    Ok(status)
}

/// The pty relay: master to our stdout, our stdin (with -i) to the master.
struct Relay<'a> {
    io: &'a Io<'a>,
    stdin_open: bool,
    master_open: bool,
    buf: Vec<u8>,
}

impl Relay<'_> {
    /// Adds the master and (while the child runs) stdin to the poll set; returns their indexes.
    fn add_poll_fds(
        &self,
        fds: &mut Vec<libc::pollfd>,
        running: bool,
    ) -> (Option<usize>, Option<usize>) {
        let mut add = |fd: i32| {
            fds.push(pollfd(fd));
            fds.len() - 1
        };
        let mi = self
            .io
            .master
            .filter(|_| self.master_open)
            .map(|m| add(m.as_raw_fd()));
        let si = self
            .io
            .stdin
            .filter(|_| self.stdin_open && running)
            .map(add);
        (mi, si)
    }

    /// Copies what is ready; a side that ends (EOF or an error) is closed for good.
    fn pump(&mut self, fds: &[libc::pollfd], mi: Option<usize>, si: Option<usize>) {
        let ready = |i: Option<usize>| {
            i.is_some_and(|i| fds[i].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0)
        };
        if let (true, Some(m)) = (ready(mi), self.io.master) {
            self.master_open = copy(&mut self.buf, m.as_raw_fd(), Some(self.io.stdout));
        }
        if let (true, Some(i)) = (ready(si), self.io.stdin) {
            self.stdin_open = copy(&mut self.buf, i, self.io.master.map(|m| m.as_raw_fd()));
        }
    }
}

/// One read from `from`, written to `to`; false once `from` has ended.
fn copy(buf: &mut [u8], from: i32, to: Option<i32>) -> bool {
    // SAFETY: reading into a valid buffer of its length.
    let r = unsafe { libc::read(from, buf.as_mut_ptr().cast(), buf.len()) };
    if r > 0 {
        if let Some(to) = to {
            let _ = tty::write_all(to, &buf[..r as usize]);
        }
        return true;
    }
    r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
}
