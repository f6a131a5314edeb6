//! Terminals: the container's pty pair, the caller's terminal in raw mode (restored on every
//! exit path), window size, and the relay between them. Kernel docs: pty(7), termios(3),
//! ioctl_tty(2) (TIOCGPTPEER, TIOCSPTLCK, TIOCSCTTY, TIOCGWINSZ/TIOCSWINSZ), poll(2).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::error::{Context, Result};

/// Unlocks the pty and opens its slave side through the master (no path lookup needed).
pub fn open_peer(master: BorrowedFd<'_>) -> Result<OwnedFd> {
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK takes a pointer to an int that lives across the call.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(io::Error::last_os_error()).ctx(|| "unlock the pty".into());
    }
    // SAFETY: TIOCGPTPEER returns a new descriptor for the slave, which we then own.
    let fd = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error()).ctx(|| "open the pty slave".into());
    }
    // SAFETY: fd is a fresh descriptor from the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Makes `slave` the controlling terminal of a new session and the stdio of this process.
pub fn become_session_leader_on(slave: &OwnedFd) -> Result<()> {
    // SAFETY: setsid has no arguments; failure is reported via errno.
    if unsafe { libc::setsid() } < 0 {
        return Err(io::Error::last_os_error()).ctx(|| "setsid".into());
    }
    // SAFETY: TIOCSCTTY takes an int argument (0: do not steal).
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
        return Err(io::Error::last_os_error())
            .ctx(|| "make the pty the controlling terminal".into());
    }
    for n in 0..3 {
        crate::sys::fd::dup2(slave.as_raw_fd(), n)
            .ctx(|| format!("dup the pty slave to fd {n}"))?;
    }
    Ok(())
}

/// Copies the window size of `from` (the caller's terminal) to `to` (the pty master).
pub fn copy_winsize(from: RawFd, to: RawFd) {
    // SAFETY: winsize is plain data; both ioctls take a pointer to it.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, &ws);
        }
    }
}

/// True when `fd` is a terminal.
pub fn is_tty(fd: RawFd) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

/// `-i -t` relays the caller's terminal: refuse it, as Docker does, when stdin is not one
/// (the relay would never see an end: a pipe's EOF is no terminal's VEOF). `-t` alone works
/// with any stdin (it is not read).
pub fn check_interactive(interactive: bool, tty: bool) -> Result<()> {
    if interactive && tty && !is_tty(0) {
        return Err(crate::error::user("the input device is not a TTY: use -i without -t to pipe input, or run from a terminal"));
    }
    Ok(())
}

static SAVED: Mutex<Option<(RawFd, libc::termios)>> = Mutex::new(None);
static HOOKED: AtomicBool = AtomicBool::new(false);

/// Puts the caller's terminal in raw mode until dropped (and on exit, via the restore hook).
pub struct RawMode {
    active: bool,
}

impl RawMode {
    pub fn enter(fd: RawFd) -> RawMode {
        if !is_tty(fd) {
            return RawMode { active: false };
        }
        // SAFETY: termios is plain data filled by tcgetattr before use.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut t) != 0 {
                return RawMode { active: false };
            }
            if let Ok(mut s) = SAVED.lock() {
                *s = Some((fd, t));
            }
            let mut raw = t;
            libc::cfmakeraw(&mut raw);
            libc::tcsetattr(fd, libc::TCSANOW, &raw);
        }
        if !HOOKED.swap(true, Ordering::SeqCst) {
            // SAFETY: registering a plain extern "C" fn with atexit.
            unsafe { libc::atexit(restore_at_exit) };
        }
        RawMode { active: true }
    }
}

/// Restores the caller's terminal if rrun changed it.
pub fn restore() {
    if let Ok(mut s) = SAVED.lock() {
        if let Some((fd, t)) = s.take() {
            // SAFETY: restoring attributes saved by tcgetattr on the same descriptor.
            unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) };
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
pub fn write_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: buf is a valid slice for its length.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => {
                    let mut p = libc::pollfd {
                        fd,
                        events: libc::POLLOUT,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd.
                    unsafe { libc::poll(&mut p, 1, 1000) };
                    continue;
                }
                _ => return Err(e),
            }
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}
