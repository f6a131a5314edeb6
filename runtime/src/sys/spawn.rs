//! Starting a process that execs at once, the way posix_spawn(3) does: a child that shares
//! this process's memory while this thread waits, so no copy of the address space is made,
//! written to page by page (copy on write) and torn down again at the child's exec. Kernel
//! interfaces: clone(2) with CLONE_VM | CLONE_VFORK | CLONE_PIDFD, mmap(2), mprotect(2).
//!
//! What the child may do follows from sharing memory with a suspended parent: system calls,
//! and writes to memory the parent set aside for it; no allocation, no lock, nothing that
//! waits for the parent (which only resumes once the child has exec'd or exited). A child
//! killed half-way through malloc(3) (a SIGKILL can come from the container it is entering)
//! would leave the parent's heap inconsistent, so the caller prepares everything before the
//! clone, as posix_spawn(3) does, and the child reports a failure by writing a code, not a
//! message. Its descriptor table, credentials, signal handlers, working directory, session
//! and seccomp filter are its own (no CLONE_FILES, CLONE_SIGHAND, CLONE_FS).

use std::ffi::c_void;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};

/// Bytes of the child's stack, above one guard page: the exec child needs a few KiB; pages it
/// never touches cost nothing.
const STACK: usize = 256 * 1024;
const GUARD: usize = 4096;

/// What the parent hands its child: the body, taken once.
struct Shared<F> {
    body: Option<F>,
}

/// The stack a child of [`spawn_sharing_memory`] runs on: an anonymous mapping of [`STACK`]
/// bytes above a [`GUARD`] page, unmapped on drop. Made apart from the spawn so that the
/// caller can map it before anything it may fail on later (a private writable mapping counts
/// against RLIMIT_AS and RLIMIT_DATA, setrlimit(2)).
pub struct ChildStack {
    base: *mut c_void,
}

impl ChildStack {
    /// Maps the stack and its guard page. Errors: mmap(2)'s or mprotect(2)'s.
    pub fn new() -> io::Result<ChildStack> {
        // SAFETY: a fresh anonymous private mapping at an address of the kernel's choosing;
        // it overlaps nothing this process uses, and only this ChildStack unmaps it.
        let base = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                GUARD + STACK,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::STACK,
            )
        }?;
        let stack = ChildStack { base };
        // SAFETY: the lowest page of the mapping just made becomes the guard page.
        unsafe { rustix::mm::mprotect(base, GUARD, MprotectFlags::empty()) }?;
        Ok(stack)
    }

    /// The address just above the stack, where a downward-growing stack starts (16-byte
    /// aligned: the mapping is page aligned and its size a multiple of the page).
    fn top(&self) -> *mut c_void {
        // SAFETY: one past the end of the mapping made in new(), of that size.
        unsafe { (self.base as *mut u8).add(GUARD + STACK) as *mut c_void }
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: `base` is the mapping made in new(), of that size; no child runs on it any
        // more: spawn_sharing_memory borrows the stack mutably and returns only once its child
        // has exec'd or ended.
        let _ = unsafe { rustix::mm::munmap(self.base, GUARD + STACK) };
    }
}

/// Starts a child running `body` on `stack`, which ends it: with exec, or by returning its
/// exit code (then `_exit(2)`; a panic, reported by the panic hook, is 125). Returns once the
/// child has exec'd or ended (CLONE_VFORK), with its pid and a pidfd made with it
/// (CLONE_PIDFD: no pid reuse window). The child starts with this thread's signal mask.
///
/// The caller must be single-threaded (see [`super::process::clone_fork`]). `body` may borrow
/// from the caller: the caller is suspended until the child is done with this memory. The
/// stack has a guard page, so an overflow kills the child with SIGSEGV rather than writing
/// over the caller's memory; it may serve one spawn after another. Errors: clone(2)'s.
pub fn spawn_sharing_memory<F: FnOnce() -> i32>(
    stack: &mut ChildStack,
    body: F,
) -> io::Result<(i32, OwnedFd)> {
    let mut shared = Shared { body: Some(body) };
    let mut pidfd: libc::c_int = -1;
    // SAFETY: clone(2) with CLONE_VM | CLONE_VFORK: the child runs `trampoline::<F>` on
    // `stack` (its top passed, 16-byte aligned, as x86_64 stacks grow down) in this address
    // space while this thread is suspended until the child has exec'd or exited, so `shared`
    // and the stack (borrowed mutably for as long) outlive its use of them and nothing else
    // touches them meanwhile. The trampoline never returns into a frame of this thread: it
    // ends with exec or _exit(2). CLONE_PIDFD stores the pidfd in `pidfd` (the parent_tid
    // argument); SIGCHLD makes the child one to reap.
    let pid = unsafe {
        libc::clone(
            trampoline::<F>,
            stack.top(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD,
            &mut shared as *mut Shared<F> as *mut c_void,
            &mut pidfd as *mut libc::c_int,
        )
    };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: with CLONE_PIDFD the kernel put a new descriptor, now ours alone, in `pidfd`.
    Ok((pid, unsafe { OwnedFd::from_raw_fd(pidfd) }))
}

/// The child's start: takes the body from the parent's `Shared` and ends the child with it.
extern "C" fn trampoline<F: FnOnce() -> i32>(arg: *mut c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's `Shared<F>`, alive while the parent waits (CLONE_VFORK);
    // only this child touches it meanwhile, and it takes the body once.
    let shared = unsafe { &mut *(arg as *mut Shared<F>) };
    match shared.body.take() {
        Some(body) => super::process::ends_with(body),
        None => super::process::exit_now(125),
    }
}
