//! Signals: numbers, sets, the signal mask, and waiting for one synchronously.
//! Kernel interfaces: rt_sigprocmask(2), rt_sigtimedwait(2), signal(7).

use super::time::Timespec;
use super::{check, nr, syscall, SysResult};

/// Signal numbers (signal(7), x86_64).
pub mod sig {
    pub const SIGHUP: i32 = 1;
    pub const SIGINT: i32 = 2;
    pub const SIGQUIT: i32 = 3;
    pub const SIGKILL: i32 = 9;
    pub const SIGUSR1: i32 = 10;
    pub const SIGUSR2: i32 = 12;
    pub const SIGPIPE: i32 = 13;
    pub const SIGTERM: i32 = 15;
    pub const SIGCHLD: i32 = 17;
    pub const SIGCONT: i32 = 18;
    pub const SIGSTOP: i32 = 19;
    pub const SIGWINCH: i32 = 28;
    /// Highest signal number (SIGRTMAX).
    pub const MAX: i32 = 64;
}

/// A set of signals 1..=64 as the kernel's rt_sig* calls take it (one bit per signal).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SigSet(pub u64);

impl SigSet {
    pub const EMPTY: SigSet = SigSet(0);
    /// Every signal (the kernel silently ignores SIGKILL and SIGSTOP in a mask).
    pub const FULL: SigSet = SigSet(u64::MAX);
    pub fn with(self, signal: i32) -> SigSet {
        SigSet(self.0 | 1u64 << (signal - 1))
    }
    pub fn contains(self, signal: i32) -> bool {
        (1..=sig::MAX).contains(&signal) && self.0 & (1u64 << (signal - 1)) != 0
    }
}

pub const SIG_SETMASK: usize = 2;

/// rt_sigprocmask(2) with SIG_SETMASK: installs `set`, returns the previous mask.
pub fn sigprocmask_set(set: SigSet) -> SysResult<SigSet> {
    let mut old = SigSet::EMPTY;
    // SAFETY: both pointers are to 8-byte sets, matching the sigsetsize argument (8).
    check(unsafe {
        syscall(
            nr::RT_SIGPROCMASK,
            [
                SIG_SETMASK,
                &set as *const SigSet as usize,
                &mut old as *mut SigSet as usize,
                8,
                0,
                0,
            ],
        )
    })?;
    Ok(old)
}

/// rt_sigtimedwait(2): waits for one signal of `set` (which must be blocked) and returns its
/// number; EAGAIN when `timeout` passed first.
pub fn sigtimedwait(set: SigSet, timeout: Option<Timespec>) -> SysResult<i32> {
    // siginfo_t is 128 bytes; rinit only needs the signal number, which is the return value.
    let mut info = [0u64; 16];
    let ts = timeout.unwrap_or_default();
    let ts_ptr = if timeout.is_some() {
        &ts as *const Timespec as usize
    } else {
        0
    };
    // SAFETY: set is an 8-byte set (sigsetsize 8), info a writable 128-byte siginfo buffer,
    // ts_ptr NULL or a readable timespec; all live for the call.
    check(unsafe {
        syscall(
            nr::RT_SIGTIMEDWAIT,
            [
                &set as *const SigSet as usize,
                info.as_mut_ptr() as usize,
                ts_ptr,
                8,
                0,
                0,
            ],
        )
    })
    .map(|s| s as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigset_bits_match_signal_numbers() {
        let s = SigSet::EMPTY.with(sig::SIGHUP).with(sig::SIGCHLD);
        assert_eq!(s.0, 1 | 1 << 16);
        assert!(s.contains(sig::SIGCHLD));
        assert!(!s.contains(sig::SIGTERM));
        assert!(!s.contains(0) && !s.contains(65));
    }
}
