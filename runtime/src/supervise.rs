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
    /// The read ends of the container's stdout and stderr pipes, relayed to rrun's own
    /// stdout and stderr (a kept foreground container without -t).
    pub pipes: Option<[BorrowedFd<'a>; 2]>,
    /// Where a copy of everything relayed from the container goes (its log), in order.
    pub log: Option<BorrowedFd<'a>>,
}

/// Waits for process `pid` (our child) to end, forwarding signals through `pidfd` and relaying
/// the pty and the output pipes. Returns the raw wait status. After the end, the pty and the
/// pipes are drained (until they close or stay quiet for 100 ms).
pub fn wait(pid: i32, pidfd: BorrowedFd<'_>, sigfd: &OwnedFd, io: &Io<'_>) -> Result<i32> {
    let mut relay = Relay {
        io,
        stdin_open: io.stdin.is_some(),
        master_open: io.master.is_some(),
        pipes_open: [io.pipes.is_some(); 2],
        buf: vec![0u8; 16384],
    };
    if let Some(m) = io.master {
        tty::copy_winsize(io.stdin.unwrap_or(io.stdout), m.as_raw_fd());
    }
    let mut status: Option<i32> = None;
    while status.is_none() || relay.output_open() {
        let mut fds = vec![pollfd(sigfd.as_raw_fd())];
        let idx = relay.add_poll_fds(&mut fds, status.is_none());
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
        relay.pump(&fds, &idx);
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

/// The relay: the pty master to our stdout, our stdin (with -i) to the master, the container's
/// stdout and stderr pipes to ours; a copy of the container's output to its log.
struct Relay<'a> {
    io: &'a Io<'a>,
    stdin_open: bool,
    master_open: bool,
    pipes_open: [bool; 2],
    buf: Vec<u8>,
}

/// Where each relayed descriptor sits in the poll set.
struct Indexes {
    master: Option<usize>,
    stdin: Option<usize>,
    pipes: [Option<usize>; 2],
}

impl Relay<'_> {
    /// True while some output of the container may still come.
    fn output_open(&self) -> bool {
        self.master_open || self.pipes_open.iter().any(|o| *o)
    }

    /// Adds the master, the pipes and (while the child runs) stdin to the poll set.
    fn add_poll_fds(&self, fds: &mut Vec<libc::pollfd>, running: bool) -> Indexes {
        let mut add = |fd: i32| {
            fds.push(pollfd(fd));
            fds.len() - 1
        };
        let master = self
            .io
            .master
            .filter(|_| self.master_open)
            .map(|m| add(m.as_raw_fd()));
        let stdin = self
            .io
            .stdin
            .filter(|_| self.stdin_open && running)
            .map(&mut add);
        let mut pipes = [None; 2];
        if let Some(p) = self.io.pipes {
            for i in 0..2 {
                if self.pipes_open[i] {
                    pipes[i] = Some(add(p[i].as_raw_fd()));
                }
            }
        }
        Indexes {
            master,
            stdin,
            pipes,
        }
    }

    /// Copies what is ready; a side that ends (EOF or an error) is closed for good.
    fn pump(&mut self, fds: &[libc::pollfd], idx: &Indexes) {
        let ready = |i: Option<usize>| {
            i.is_some_and(|i| fds[i].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0)
        };
        let log = self.io.log.map(|l| l.as_raw_fd());
        if let (true, Some(m)) = (ready(idx.master), self.io.master) {
            self.master_open = copy(&mut self.buf, m.as_raw_fd(), &[Some(self.io.stdout), log]);
        }
        if let (true, Some(i)) = (ready(idx.stdin), self.io.stdin) {
            self.stdin_open = copy(&mut self.buf, i, &[self.io.master.map(|m| m.as_raw_fd())]);
        }
        if let Some(p) = self.io.pipes {
            for (i, to) in [1, 2].into_iter().enumerate() {
                if ready(idx.pipes[i]) {
                    self.pipes_open[i] = copy(&mut self.buf, p[i].as_raw_fd(), &[Some(to), log]);
                }
            }
        }
    }
}

/// One read from `from`, written to each of `to` (a failed write, e.g. a closed terminal, does
/// not stop the others); false once `from` has ended.
fn copy(buf: &mut [u8], from: i32, to: &[Option<i32>]) -> bool {
    // SAFETY: reading into a valid buffer of its length.
    let r = unsafe { libc::read(from, buf.as_mut_ptr().cast(), buf.len()) };
    if r > 0 {
        for fd in to.iter().flatten() {
            let _ = tty::write_all(*fd, &buf[..r as usize]);
        }
        return true;
    }
    r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
}
