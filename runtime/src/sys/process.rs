//! Processes: a fork-like clone3 into new namespaces and a cgroup, the forked child's exit,
//! pidfds and waiting. Kernel interfaces: clone3(2) (CLONE_INTO_CGROUP), _exit(2),
//! pidfd_open(2), pidfd_send_signal(2), waitpid(2).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use super::{check, check_fd};

/// A fork-like `clone3(2)` (no CLONE_VM, no new stack: the child continues on a copy of this
/// process's stack) with namespace `flags`, optionally straight into the cgroup v2 directory
/// `cgroup` (CLONE_INTO_CGROUP). Returns 0 in the child and the child's pid in the parent.
///
/// # Safety
/// The calling process must be single-threaded: the child gets a copy of this thread only, so
/// a lock (the allocator's, stdout's) held by another thread at the moment of the clone would
/// stay locked in the child forever. In the child, the caller must not return into frames
/// that also exist in the parent (their destructors would run twice, once per process) nor
/// unwind into them: it ends with `_exit` or `exec`, and catches panics before they escape.
pub unsafe fn clone_fork(flags: u64, cgroup: Option<RawFd>) -> io::Result<i32> {
    #[repr(C)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let mut args = CloneArgs {
        flags,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: 0,
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: `args` is a valid clone_args of the size passed; without CLONE_VM and with no
    // stack the child gets a private copy of the address space, exactly like fork(2).
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    check(r).map(|p| p as i32)
}

/// Runs `body` in a process just forked from rrun and ends the process with its exit code,
/// never returning into the frames it shares with its parent: a panic (already reported in
/// one line by rrun's panic hook) ends it with `_exit(125)` instead of unwinding into the
/// parent's guards (which would, say, delete the container's folder from the child).
pub fn forked_child<F: FnOnce() -> i32>(body: F) -> ! {
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // Test hook: proves that a panic here never reaches the parent's frames.
        if std::env::var_os("RRUN_TEST_PANIC_IN_FORKED_CHILD").is_some() {
            panic!("test panic in a forked child (RRUN_TEST_PANIC_IN_FORKED_CHILD)");
        }
        body()
    }))
    .unwrap_or(125);
    // SAFETY: _exit ends this process at once, without destructors or atexit handlers.
    unsafe { libc::_exit(code) }
}

/// `pidfd_open(2)`.
pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: plain integer arguments.
    check_fd(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })
}

/// `pidfd_send_signal(2)`.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    // SAFETY: null siginfo means "as kill(2)"; the fd is borrowed for the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })
    .map(drop)
}

/// Converts a wait status into the shell convention: exit code, or 128+N for signal N.
pub fn exit_code_of(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        125
    }
}

/// `waitpid(2)` retrying on EINTR. Returns the raw status.
pub fn waitpid(pid: i32, flags: i32) -> io::Result<Option<i32>> {
    loop {
        let mut st = 0;
        // SAFETY: valid pointer to an int.
        let r = unsafe { libc::waitpid(pid, &mut st, flags) };
        if r > 0 {
            return Ok(Some(st));
        }
        if r == 0 {
            return Ok(None);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
