//! Terminals: the container's pty pair, the caller's terminal in raw mode (restored on every
//! exit path), window size, and the relay between them. Kernel docs: pty(7), termios(3),
//! ioctl_tty(2) (TIOCGPTPEER, TIOCSPTLCK, TIOCSCTTY, TIOCGWINSZ/TIOCSWINSZ), poll(2).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use rustix::pty::OpenptFlags;
use rustix::termios::{OptionalActions, Termios};

use crate::error::{Context, Result, Step, StepError};
use crate::sys;

/// Unlocks the pty and opens its slave side through the master (no path lookup needed).
pub fn open_peer(master: BorrowedFd<'_>) -> Result<OwnedFd> {
    rustix::pty::unlockpt(master).ctx(|| "unlock the pty".into())?;
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    rustix::pty::ioctl_tiocgptpeer(master, flags).ctx(|| "open the pty slave".into())
}

/// Makes `slave` the controlling terminal of a new session and the stdio of this process.
pub fn become_session_leader_on(slave: &OwnedFd) -> std::result::Result<(), StepError> {
    rustix::process::setsid().step("setsid")?;
    rustix::process::ioctl_tiocsctty(slave).step("make the pty the controlling terminal")?;
    let what = [
        "dup the pty slave to fd 0",
        "dup the pty slave to fd 1",
        "dup the pty slave to fd 2",
    ];
    for (n, what) in what.into_iter().enumerate() {
        sys::fd::dup2(slave.as_raw_fd(), n as i32).step(what)?;
    }
    Ok(())
}

/// Copies the window size of `from` (the caller's terminal) to `to` (the pty master).
pub fn copy_winsize(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    if let Ok(ws) = rustix::termios::tcgetwinsize(from) {
        let _ = rustix::termios::tcsetwinsize(to, ws);
    }
}

/// True when `fd` is a terminal.
pub fn is_tty(fd: BorrowedFd<'_>) -> bool {
    rustix::termios::isatty(fd)
}

/// `-i -t` relays the caller's terminal: refuse it, as Docker does, when stdin is not one
/// (the relay would never see an end: a pipe's EOF is no terminal's VEOF). `-t` alone works
/// with any stdin (it is not read).
pub fn check_interactive(interactive: bool, tty: bool) -> Result<()> {
    if interactive && tty && !is_tty(rustix::stdio::stdin()) {
        return Err(crate::error::user("the input device is not a TTY: use -i without -t to pipe input, or run from a terminal"));
    }
    Ok(())
}

static SAVED: Mutex<Option<(BorrowedFd<'static>, Termios)>> = Mutex::new(None);
static HOOKED: AtomicBool = AtomicBool::new(false);

/// Puts the caller's terminal in raw mode until dropped (and on exit, via the restore hook).
pub struct RawMode {
    active: bool,
}

impl RawMode {
    pub fn enter(fd: BorrowedFd<'static>) -> RawMode {
        if !is_tty(fd) {
            return RawMode { active: false };
        }
        let Ok(t) = rustix::termios::tcgetattr(fd) else {
            return RawMode { active: false };
        };
        if let Ok(mut s) = SAVED.lock() {
            *s = Some((fd, t.clone()));
        }
        let mut raw = t;
        raw.make_raw();
        let _ = rustix::termios::tcsetattr(fd, OptionalActions::Now, &raw);
        if !HOOKED.swap(true, Ordering::SeqCst) {
            sys::process::at_exit(restore_at_exit);
        }
        RawMode { active: true }
    }
}

/// Restores the caller's terminal if rrun changed it.
pub fn restore() {
    if let Ok(mut s) = SAVED.lock() {
        if let Some((fd, t)) = s.take() {
            let _ = rustix::termios::tcsetattr(fd, OptionalActions::Now, &t);
        }
    }
}

extern "C" fn restore_at_exit() {
    restore();
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if self.active {
            restore();
        }
    }
}

/// Writes all of `buf` to a (possibly non-blocking) fd, waiting with poll when it is full.
pub fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match rustix::io::write(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => {
                let mut p = [PollFd::new(&fd, PollFlags::OUT)];
                let second = rustix::event::Timespec {
                    tv_sec: 1,
                    tv_nsec: 0,
                };
                let _ = rustix::event::poll(&mut p, Some(&second));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
