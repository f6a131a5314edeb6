//! Supervision after the command started: forward signals, reap every zombie, know when the
//! command ended, then stop what is left (SIGTERM, a grace period, SIGKILL).
//! Drives rt_sigtimedwait(2), wait4(2) and kill(2); see signal(7) and pid_namespaces(7).

use crate::procfs;
use crate::sys::signal::{sig, SigSet};
use crate::sys::time::Timespec;
use crate::sys::{self, Errno};

/// Waits for signals (all are blocked) until the command `child` ended: SIGCHLD reaps every
/// zombie, any other signal goes to the child (or with `group` to its process group).
/// Returns the child's wait status. The child is recognised from wait4's pid, not from
/// signal metadata.
pub fn supervise(child: i32, group: bool) -> i32 {
    loop {
        match sys::signal::sigtimedwait(SigSet::FULL, None) {
            Ok(sig::SIGCHLD) => {
                if let Some(status) = reap(child) {
                    return status;
                }
            }
            Ok(signal) => {
                // ESRCH (the child just ended) is fine: its SIGCHLD is on the way.
                let _ = sys::process::kill(if group { -child } else { child }, signal);
            }
            Err(_) => {} // EINTR (e.g. after a ptrace stop); there is no timeout to expire
        }
    }
}

/// Reaps every zombie child; returns the wait status of `child` if it was among them.
pub fn reap(child: i32) -> Option<i32> {
    let mut found = None;
    loop {
        match sys::process::wait4(-1, sys::process::WNOHANG | sys::process::WALL) {
            Ok(Some((pid, status))) => {
                if pid == child {
                    found = Some(status);
                }
            }
            Err(Errno::EINTR) => {}
            Ok(None) | Err(_) => return found, // none ready, or ECHILD: no children at all
        }
    }
}

/// rinit's exit code for a wait status: the exit code, or 128+N when killed by signal N.
pub fn exit_code(status: i32) -> i32 {
    let signal = status & 0x7f;
    if signal == 0 {
        (status >> 8) & 0xff
    } else {
        128 + signal
    }
}

/// Which processes are "the rest" once the command ended.
#[derive(Clone, Copy)]
pub enum Scope {
    /// rinit is PID 1: every other process of its pid namespace (kill(-1, ...)).
    Namespace,
    /// rinit is a subreaper on a bigger system: only its own descendants. Never kill(-1)
    /// here: that would signal every process of the machine that we may signal.
    Descendants { me: i32 },
}

/// How long the rest get between SIGTERM and SIGKILL.
pub const GRACE_MS: u64 = 2_000;
/// How long to wait for the SIGKILLed to be gone before exiting anyway.
const KILL_WAIT_MS: u64 = 2_000;
/// How often to look again while waiting (processes that are not our children end without
/// telling us).
const POLL_MS: u64 = 20;

/// Sends SIGTERM to the rest, waits up to `grace_ms` for them to end, then SIGKILLs whatever
/// is left and reaps it. Returns at once when nothing is left.
pub fn stop_the_rest(scope: Scope, grace_ms: u64) {
    reap(0);
    if !anything_left(scope) {
        return;
    }
    signal_rest(scope, sig::SIGTERM);
    if wait_until_alone(scope, grace_ms) {
        return;
    }
    signal_rest(scope, sig::SIGKILL);
    wait_until_alone(scope, KILL_WAIT_MS);
}

fn signal_rest(scope: Scope, signal: i32) {
    match scope {
        Scope::Namespace => {
            let _ = sys::process::kill(-1, signal);
        }
        Scope::Descendants { me } => {
            procfs::for_each_descendant(me, |pid| {
                let _ = sys::process::kill(pid, signal);
            });
        }
    }
}

/// True while another process of the scope exists.
fn anything_left(scope: Scope) -> bool {
    match scope {
        // Signal 0 only checks: ESRCH means there is no other process in the namespace.
        Scope::Namespace => sys::process::kill(-1, 0).is_ok(),
        // A subreaper inherits every orphan below it, so with no child (ECHILD) it has no
        // descendant left either.
        Scope::Descendants { .. } => !matches!(
            sys::process::wait4(-1, sys::process::WNOHANG | sys::process::WALL),
            Err(Errno::ECHILD)
        ),
    }
}

/// Reaps until nothing of the scope is left (true) or `ms` passed (false).
fn wait_until_alone(scope: Scope, ms: u64) -> bool {
    let start = sys::time::monotonic_now().as_millis();
    loop {
        reap(0);
        if !anything_left(scope) {
            return true;
        }
        let elapsed = sys::time::monotonic_now().as_millis().saturating_sub(start);
        if elapsed >= ms {
            return false;
        }
        let nap = Timespec::from_millis((ms - elapsed).min(POLL_MS));
        let _ = sys::signal::sigtimedwait(SigSet::EMPTY.with(sig::SIGCHLD), Some(nap));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_from_wait_status() {
        assert_eq!(exit_code(0), 0);
        assert_eq!(exit_code(7 << 8), 7);
        assert_eq!(exit_code(255 << 8), 255);
        assert_eq!(exit_code(9), 137); // SIGKILL
        assert_eq!(exit_code(15), 143); // SIGTERM
        assert_eq!(exit_code(11 | 0x80), 139); // SIGSEGV with a core dump
    }
}
