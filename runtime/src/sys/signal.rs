//! Signals: masks, a signalfd to read them as data, and the clean slate before exec.
//! Kernel interfaces: pthread_sigmask(3) (sigprocmask(2)), signalfd(2), signal(2), signal(7).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use super::check_fd;

/// Blocks `sigs` in this thread and returns the previous mask.
pub fn block_signals(sigs: &[i32]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data initialised by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in sigs {
            libc::sigaddset(&mut set, *s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        old
    }
}

/// A signalfd for `sigs` (which the caller has blocked).
pub fn signalfd(sigs: &[i32]) -> io::Result<OwnedFd> {
    // SAFETY: sigset_t initialised by sigemptyset; signalfd returns a new descriptor we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in sigs {
            libc::sigaddset(&mut set, *s);
        }
        check_fd(libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) as libc::c_long)
    }
}

/// Reads one pending signal number from a signalfd, None when none is pending.
pub fn read_signal(fd: BorrowedFd<'_>) -> Option<i32> {
    // SAFETY: signalfd_siginfo is plain data; we read at most its size into it.
    unsafe {
        let mut info: libc::signalfd_siginfo = std::mem::zeroed();
        let n = libc::read(
            fd.as_raw_fd(),
            (&mut info as *mut libc::signalfd_siginfo).cast(),
            std::mem::size_of::<libc::signalfd_siginfo>(),
        );
        (n == std::mem::size_of::<libc::signalfd_siginfo>() as isize)
            .then_some(info.ssi_signo as i32)
    }
}

/// Resets every signal disposition a child must not inherit (Rust ignores SIGPIPE) and empties
/// the signal mask; used right before exec.
pub fn reset_signals_for_exec() {
    // SAFETY: setting default dispositions and an empty mask has no memory-safety impact.
    unsafe {
        for s in [
            libc::SIGPIPE,
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGQUIT,
            libc::SIGHUP,
            libc::SIGCHLD,
            libc::SIGWINCH,
            libc::SIGTTOU,
            libc::SIGTTIN,
            libc::SIGTSTP,
        ] {
            libc::signal(s, libc::SIG_DFL);
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}
