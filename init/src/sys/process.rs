//! Processes: ids, process groups, fork, exec, waiting, signals to others, exit, and the
//! process attributes rinit sets (name, child subreaper, umask). Kernel interfaces: getpid(2),
//! getppid(2), getpgid(2), setpgid(2), fork(2), execve(2), wait4(2), kill(2), exit_group(2),
//! umask(2), prctl(2) (PR_SET_NAME, PR_SET_CHILD_SUBREAPER).

use core::ffi::CStr;

use super::{call_ints, check, cptr, nr, syscall, Errno, SysResult};

pub const WNOHANG: i32 = 1;

/// Also wait for children whose exit signal is not SIGCHLD (clone(2) with another exit signal).
pub const WALL: i32 = 0x4000_0000;

pub const PR_SET_NAME: usize = 15;

pub const PR_SET_CHILD_SUBREAPER: usize = 36;

pub fn getpid() -> i32 {
    call_ints(nr::GETPID, [0; 6]).map_or(0, |p| p as i32)
}

pub fn getppid() -> i32 {
    call_ints(nr::GETPPID, [0; 6]).map_or(0, |p| p as i32)
}

pub fn getpgid(pid: i32) -> SysResult<i32> {
    call_ints(nr::GETPGID, [pid as usize, 0, 0, 0, 0, 0]).map(|p| p as i32)
}

pub fn setpgid(pid: i32, pgid: i32) -> SysResult<()> {
    call_ints(nr::SETPGID, [pid as usize, pgid as usize, 0, 0, 0, 0]).map(drop)
}

/// The result of [`fork`], seen from each side.
pub enum Fork {
    Child,
    Parent(i32),
}

/// fork(2). The child gets a copy of the calling thread only; rinit never starts another one,
/// and has no allocator and no locks, so its child can run any of its code.
pub fn fork() -> SysResult<Fork> {
    // SAFETY: fork takes no arguments and touches no memory of ours; see above for why the
    // child, a copy of rinit's only thread, may run any of rinit's code.
    let pid = check(unsafe { syscall(nr::FORK, [0; 6]) })?;
    Ok(if pid == 0 {
        Fork::Child
    } else {
        Fork::Parent(pid as i32)
    })
}

/// execve(2); returns only on failure.
///
/// # Safety
/// `argv` and `envp` must point to NULL-terminated arrays of pointers to NUL-terminated strings.
pub unsafe fn execve(path: &CStr, argv: *const *const u8, envp: *const *const u8) -> Errno {
    // SAFETY: path is NUL-terminated; the caller guarantees argv and envp.
    match check(unsafe {
        syscall(
            nr::EXECVE,
            [cptr(path), argv as usize, envp as usize, 0, 0, 0],
        )
    }) {
        Ok(_) => Errno(0),
        Err(e) => e,
    }
}

pub fn exit_group(code: i32) -> ! {
    let _ = call_ints(nr::EXIT_GROUP, [code as usize, 0, 0, 0, 0, 0]);
    // exit_group does not return; should it ever, do not fall through.
    loop {
        core::hint::spin_loop();
    }
}

/// wait4(2) without rusage: `Ok(None)` when WNOHANG found nothing, else `(pid, wait status)`.
pub fn wait4(pid: i32, options: i32) -> SysResult<Option<(i32, i32)>> {
    let mut status = 0i32;
    // SAFETY: status is a writable int; the rusage pointer is NULL (not wanted).
    let p = check(unsafe {
        syscall(
            nr::WAIT4,
            [
                pid as usize,
                &mut status as *mut i32 as usize,
                options as usize,
                0,
                0,
                0,
            ],
        )
    })?;
    Ok(if p == 0 {
        None
    } else {
        Some((p as i32, status))
    })
}

/// kill(2): `pid` > 0 a process, < -1 a process group, -1 every process we may signal.
pub fn kill(pid: i32, signal: i32) -> SysResult<()> {
    call_ints(nr::KILL, [pid as usize, signal as usize, 0, 0, 0, 0]).map(drop)
}

pub fn umask(mask: u32) -> u32 {
    call_ints(nr::UMASK, [mask as usize, 0, 0, 0, 0, 0]).map_or(0o022, |m| m as u32)
}

pub fn prctl_set_name(name: &CStr) -> SysResult<()> {
    // SAFETY: PR_SET_NAME reads at most 16 bytes from a NUL-terminated string, which name is.
    check(unsafe { syscall(nr::PRCTL, [PR_SET_NAME, cptr(name), 0, 0, 0, 0]) }).map(drop)
}

pub fn prctl_set_child_subreaper() -> SysResult<()> {
    call_ints(nr::PRCTL, [PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0, 0]).map(drop)
}
