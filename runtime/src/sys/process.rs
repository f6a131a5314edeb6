//! Processes: forking (clone3 into new namespaces and a cgroup, or a plain fork), the forked
//! child's end, exec, pidfds and waiting. Kernel interfaces: clone3(2) (CLONE_INTO_CGROUP),
//! fork(2), _exit(2), execve(2), execveat(2), pidfd_open(2), pidfd_send_signal(2), waitpid(2),
//! atexit(3).
//!
//! rrun is single-threaded: no module of the crate starts a thread, so a fork here copies the
//! only thread there is. The forking functions rely on it and run the child's part to its
//! `_exit` (or exec), never returning into frames the child shares with its parent.

use std::ffi::{c_char, CStr, CString};
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use rustix::process::{Pid, PidfdFlags, Signal, WaitOptions};
use rustix::thread::UnshareFlags;

use super::check;

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
pub(super) unsafe fn clone_fork(flags: u64, cgroup: Option<RawFd>) -> io::Result<i32> {
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

/// Starts a child in new namespaces (`flags`: the CLONE_NEW* bits, which clone3(2) takes as
/// unshare(2) does), optionally straight inside the cgroup v2 directory `cgroup`. The child
/// closes its copy of `close_in_child` (the parent's end of a socketpair, say), runs
/// `child(parts)` and ends with its exit code ([`forked_child`]): it never returns here. The
/// parent gets the child's pid and `parts` back, untouched: what the child must own goes in
/// `parts`, and `child` itself should only borrow (the parent drops it on return).
pub fn clone_child<T, F: FnOnce(T) -> i32>(
    flags: UnshareFlags,
    cgroup: Option<BorrowedFd<'_>>,
    close_in_child: Option<BorrowedFd<'_>>,
    parts: T,
    child: F,
) -> (io::Result<i32>, T) {
    let cgroup = cgroup.map(|c| c.as_raw_fd());
    // SAFETY: rrun is single-threaded (see the module docs); the child runs `child` behind
    // forked_child, which ends it with _exit and catches panics, so it never returns into the
    // frames it shares with the parent.
    match unsafe { clone_fork(flags.bits() as u64, cgroup) } {
        Ok(0) => {
            if let Some(fd) = close_in_child {
                // SAFETY: the descriptor's owner lives in frames of the parent that this child
                // never returns to, so its copy here is closed once, now, and never used again.
                unsafe { libc::close(fd.as_raw_fd()) };
            }
            forked_child(|| child(parts))
        }
        r => (r, parts),
    }
}

/// fork(2): runs `child(parts)` in a child that ends with its exit code ([`forked_child`]).
/// The parent gets the child's pid and `parts` back, untouched, as in [`clone_child`].
pub fn fork<T, F: FnOnce(T) -> i32>(parts: T, child: F) -> (io::Result<i32>, T) {
    // SAFETY: rrun is single-threaded (see the module docs); the child runs `child` behind
    // forked_child, which ends it with _exit, never returning into the caller's frames.
    match unsafe { libc::fork() } {
        0 => forked_child(|| child(parts)),
        -1 => (Err(io::Error::last_os_error()), parts),
        pid => (Ok(pid), parts),
    }
}

/// Runs `body` in a process just forked from rrun and ends the process with its exit code,
/// never returning into the frames it shares with its parent: a panic (already reported in
/// one line by rrun's panic hook) ends it with `_exit(125)` instead of unwinding into the
/// parent's guards (which would, say, delete the container's folder from the child).
pub fn forked_child<F: FnOnce() -> i32>(body: F) -> ! {
    ends_with(|| {
        // Test hook: proves that a panic here never reaches the parent's frames.
        if panic_for_test() {
            panic!("test panic in a forked child (RRUN_TEST_PANIC_IN_FORKED_CHILD)");
        }
        body()
    })
}

/// Whether the test hook asks forked children to panic (`RRUN_TEST_PANIC_IN_FORKED_CHILD`).
/// A child that shares rrun's memory reads it in rrun, before the clone (sys::spawn).
pub fn panic_for_test() -> bool {
    std::env::var_os("RRUN_TEST_PANIC_IN_FORKED_CHILD").is_some()
}

/// Runs `body` and ends the process with its exit code, or 125 after a panic (reported by
/// the panic hook), never unwinding into a caller's frame (see [`forked_child`]).
pub fn ends_with<F: FnOnce() -> i32>(body: F) -> ! {
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(125);
    exit_now(code)
}

/// `_exit(2)`: ends this process at once, without destructors or atexit handlers (a forked
/// child must not run its parent's).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit ends this process at once; nothing of it runs afterwards.
    unsafe { libc::_exit(code) }
}

/// A NULL-terminated array of pointers to C strings, for exec, borrowing the strings.
pub struct CStrArray<'a> {
    ptrs: Vec<*const c_char>,
    _strings: PhantomData<&'a CString>,
}

impl<'a> CStrArray<'a> {
    pub fn new(strings: &'a [CString]) -> CStrArray<'a> {
        let mut ptrs: Vec<*const c_char> = strings.iter().map(|c| c.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        CStrArray {
            ptrs,
            _strings: PhantomData,
        }
    }
}

/// `execve(2)`; returns only on failure, with the error.
pub fn execve(path: &CStr, argv: &CStrArray<'_>, envp: &CStrArray<'_>) -> io::Error {
    // SAFETY: path is a C string; argv and envp are NULL-terminated arrays of pointers to C
    // strings that they borrow, so all of them outlive the call.
    unsafe { libc::execve(path.as_ptr(), argv.ptrs.as_ptr(), envp.ptrs.as_ptr()) };
    io::Error::last_os_error()
}

/// `execveat(2)` of the file `fd` refers to itself (AT_EMPTY_PATH, e.g. a memfd); returns
/// only on failure, with the error.
pub fn execveat_fd(fd: BorrowedFd<'_>, argv: &CStrArray<'_>, envp: &CStrArray<'_>) -> io::Error {
    // SAFETY: the empty path is a static C string; argv and envp are NULL-terminated arrays of
    // pointers to C strings that they borrow; the descriptor is borrowed for the call.
    unsafe {
        libc::execveat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            argv.ptrs.as_ptr() as *mut _,
            envp.ptrs.as_ptr() as *mut _,
            libc::AT_EMPTY_PATH,
        )
    };
    io::Error::last_os_error()
}

/// Registers `f` to run when the process exits through exit(3) (`std::process::exit`), not
/// through `_exit`.
pub fn at_exit(f: extern "C" fn()) {
    // SAFETY: registering a plain extern "C" fn with atexit; it takes and returns nothing.
    unsafe { libc::atexit(f) };
}

/// The pid as rustix wants it; EINVAL for 0 and negative numbers, which name no process.
fn pid(pid: i32) -> io::Result<Pid> {
    Pid::from_raw(pid).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
}

/// `pidfd_open(2)`.
pub fn pidfd_open(p: i32) -> io::Result<OwnedFd> {
    Ok(rustix::process::pidfd_open(pid(p)?, PidfdFlags::empty())?)
}

/// `pidfd_send_signal(2)` of signal number `sig` (1 to 64; EINVAL otherwise).
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    let sig = match Signal::from_named_raw(sig) {
        Some(s) => s,
        None if (1..=64).contains(&sig) => {
            // SAFETY: a signal number the kernel knows (a real-time one); it is sent to
            // another process, not installed in this one, so libc's own uses do not matter.
            unsafe { Signal::from_raw_unchecked(sig) }
        }
        None => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
    };
    Ok(rustix::process::pidfd_send_signal(pidfd, sig)?)
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

/// `waitpid(2)` of the child `p`, retrying on EINTR. Returns the raw status; None when
/// `nohang` and it has not changed state.
pub fn waitpid(p: i32, nohang: bool) -> io::Result<Option<i32>> {
    let opts = if nohang {
        WaitOptions::NOHANG
    } else {
        WaitOptions::empty()
    };
    let p = pid(p)?;
    loop {
        match rustix::process::waitpid(Some(p), opts) {
            Ok(r) => return Ok(r.map(|(_, st)| st.as_raw())),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Starts `cmd` as the leader of a session of its own (setsid(2): no controlling terminal, so
/// no terminal signal or hangup reaches it), with each `(from, to)` of `fds` duplicated onto
/// descriptor `to` (dup2(2), which leaves `to` open across exec). Used for the network helpers
/// (pasta, slirp4netns) that must outlive a terminal's Ctrl-C until rrun stops them.
pub fn spawn_in_new_session(
    cmd: &mut std::process::Command,
    fds: &[(RawFd, RawFd)],
) -> io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let fds = fds.to_vec();
    // SAFETY: the closure runs in the forked child before exec and calls only setsid(2),
    // dup2(2) and fcntl(2), which are async-signal-safe, on descriptors the caller keeps open until spawn
    // returns; it allocates nothing (`fds` was copied before the fork).
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            for &(from, to) in &fds {
                // dup2 onto itself keeps FD_CLOEXEC: clear it instead.
                let r = match from == to {
                    true => libc::fcntl(to, libc::F_SETFD, 0),
                    false => libc::dup2(from, to),
                };
                if r < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        })
    };
    cmd.spawn()
}

/// personality(2): sets the calling process's execution domain `persona` (PER_LINUX 0x0000,
/// PER_LINUX32 0x0008: uname(2) then reports a 32-bit machine; include/uapi/linux/personality.h).
/// Errors: EINVAL for a domain the kernel does not know.
pub fn set_personality(persona: u32) -> io::Result<()> {
    // SAFETY: personality(2) takes an integer and changes only this process's execution domain.
    let r = unsafe { libc::personality(libc::c_ulong::from(persona)) };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
