//! Watching a running container from rrun: forward signals to its init, relay the terminal,
//! follow the window size, reap it and turn its wait status into rrun's exit code.
//! Kernel docs: signalfd(2), poll(2), waitpid(2), pidfd_send_signal(2).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::process::Signal;

use crate::error::{Context, Result};
use crate::{sys, tty};

const SIGCHLD: i32 = Signal::CHILD.as_raw();
const SIGWINCH: i32 = Signal::WINCH.as_raw();

/// Signals rrun blocks and handles through a signalfd while a container runs.
pub const HANDLED: [i32; 8] = [
    SIGCHLD,
    Signal::INT.as_raw(),
    Signal::TERM.as_raw(),
    Signal::HUP.as_raw(),
    Signal::QUIT.as_raw(),
    Signal::USR1.as_raw(),
    Signal::USR2.as_raw(),
    SIGWINCH,
];

/// What to relay.
pub struct Io<'a> {
    /// The pty master (terminal mode).
    pub master: Option<BorrowedFd<'a>>,
    /// Where the caller's input comes from (terminal mode with -i).
    pub stdin: Option<BorrowedFd<'a>>,
    /// Where the terminal's output goes.
    pub stdout: BorrowedFd<'a>,
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
        tty::copy_winsize(io.stdin.unwrap_or(io.stdout), m);
    }
    let mut status: Option<i32> = None;
    // Once the container has exited, drain the pty without blocking forever.
    let drain = Timespec {
        tv_sec: 0,
        tv_nsec: 100_000_000,
    };
    while status.is_none() || relay.output_open() {
        let mut fds = vec![PollFd::new(sigfd, PollFlags::IN)];
        let idx = relay.add_poll_fds(&mut fds, status.is_none());
        let timeout = status.is_some().then_some(&drain);
        let n = match rustix::event::poll(&mut fds, timeout) {
            Ok(n) => n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e).ctx(|| "poll".into()),
        };
        if n == 0 && status.is_some() {
            break;
        }
        let ready = Ready::of(&fds, &idx);
        drop(fds);
        if ready.signal {
            status = handle_signals(pid, pidfd, sigfd, io, status)?;
        } else if status.is_none() {
            // A SIGCHLD may have been merged with one already read: check cheaply.
            status = sys::process::waitpid(pid, true).ok().flatten();
        }
        relay.pump(&ready);
    }
    Ok(status.unwrap_or(0))
}

/// Where each relayed descriptor sits in the poll set.
struct Indexes {
    master: Option<usize>,
    stdin: Option<usize>,
    pipes: [Option<usize>; 2],
}

/// Which of the polled descriptors are ready: the signalfd, the master, stdin, the pipes.
struct Ready {
    signal: bool,
    master: bool,
    stdin: bool,
    pipes: [bool; 2],
}

impl Ready {
    fn of(fds: &[PollFd<'_>], idx: &Indexes) -> Ready {
        let ready = |i: Option<usize>| {
            let any = PollFlags::IN | PollFlags::HUP | PollFlags::ERR;
            i.is_some_and(|i| fds[i].revents().intersects(any))
        };
        Ready {
            signal: fds[0].revents().contains(PollFlags::IN),
            master: ready(idx.master),
            stdin: ready(idx.stdin),
            pipes: [ready(idx.pipes[0]), ready(idx.pipes[1])],
        }
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
            SIGCHLD if status.is_none() => {
                status = sys::process::waitpid(pid, true)
                    .ctx(|| format!("wait for the container's init {pid}"))?;
            }
            SIGCHLD => {}
            SIGWINCH => {
                if let Some(m) = io.master {
                    tty::copy_winsize(io.stdin.unwrap_or(io.stdout), m);
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

impl<'a> Relay<'a> {
    /// True while some output of the container may still come.
    fn output_open(&self) -> bool {
        self.master_open || self.pipes_open.iter().any(|o| *o)
    }

    /// Adds the master, the pipes and (while the child runs) stdin to the poll set.
    fn add_poll_fds<'f>(&self, fds: &mut Vec<PollFd<'f>>, running: bool) -> Indexes
    where
        'a: 'f,
    {
        let mut add = |fd: BorrowedFd<'a>| {
            fds.push(PollFd::from_borrowed_fd(fd, PollFlags::IN));
            fds.len() - 1
        };
        let master = self.io.master.filter(|_| self.master_open).map(&mut add);
        let stdin = self
            .io
            .stdin
            .filter(|_| self.stdin_open && running)
            .map(&mut add);
        let mut pipes = [None; 2];
        if let Some(p) = self.io.pipes {
            for i in 0..2 {
                if self.pipes_open[i] {
                    pipes[i] = Some(add(p[i]));
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
    fn pump(&mut self, ready: &Ready) {
        let log = self.io.log;
        if let (true, Some(m)) = (ready.master, self.io.master) {
            self.master_open = copy(&mut self.buf, m, &[Some(self.io.stdout), log]);
        }
        if let (true, Some(i)) = (ready.stdin, self.io.stdin) {
            self.stdin_open = copy(&mut self.buf, i, &[self.io.master]);
        }
        if let Some(p) = self.io.pipes {
            let ours = [rustix::stdio::stdout(), rustix::stdio::stderr()];
            for i in 0..2 {
                if ready.pipes[i] {
                    self.pipes_open[i] = copy(&mut self.buf, p[i], &[Some(ours[i]), log]);
                }
            }
        }
    }
}

/// One read from `from`, written to each of `to` (a failed write, e.g. a closed terminal, does
/// not stop the others); false once `from` has ended.
fn copy(buf: &mut [u8], from: BorrowedFd<'_>, to: &[Option<BorrowedFd<'_>>]) -> bool {
    match rustix::io::read(from, &mut *buf) {
        Ok(0) => false,
        Ok(n) => {
            for fd in to.iter().flatten() {
                let _ = tty::write_all(*fd, &buf[..n]);
            }
            true
        }
        Err(e) => e == Errno::INTR,
    }
}
