//! Namespaces: leaving some of ours, or moving into a copy of our mount namespace whose
//! mounts are locked. Kernel interfaces: unshare(2), setns(2) (namespaces(7)).

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd};

use rustix::thread::{LinkNameSpaceType, UnshareFlags};

/// `unshare(2)` of namespaces (`flags` without CLONE_FILES, which is refused with EINVAL: a
/// descriptor table of its own is no namespace, and sharing descriptors is what rrun's
/// ownership of them relies on).
pub fn unshare(flags: UnshareFlags) -> io::Result<()> {
    if flags.contains(UnshareFlags::FILES) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: without CLONE_FILES, unshare(2) leaves this process's descriptors as they are,
    // which is all rustix's unshare_unsafe asks of its callers.
    Ok(unsafe { rustix::thread::unshare_unsafe(flags) }?)
}

/// Moves the calling process into a copy of its mount namespace whose every mount is locked
/// (MNT_LOCKED, with MNT_LOCK_READONLY, _NODEV, _NOSUID, _NOEXEC and _ATIME where set), as
/// the kernel locks the mounts that a mount namespace owned by a less privileged user
/// namespace inherits (mount_namespaces(7), "Restrictions on mount namespaces"). The caller
/// keeps its own user namespace (and every other namespace).
///
/// How: a helper cloned from the caller, sharing its memory and descriptor table (CLONE_VM
/// | CLONE_VFORK | CLONE_FILES, as posix_spawn(3) does: no copy of the address space to make
/// and tear down, the caller suspended until it exits), unshares
/// a user namespace and a mount namespace in one call (unshare(2) with CLONE_NEWUSER |
/// CLONE_NEWNS): the new mount namespace, a copy of the caller's, is owned by the new user
/// namespace, so the kernel locks the whole copied tree. The helper opens its own
/// /proc/thread-self/ns/mnt into a descriptor slot the caller reserved, and exits. The caller
/// joins that namespace with setns(2): a capability in a user namespace holds in its
/// children, so the caller may. (The descriptor is passed this way because the caller may not
/// open another process's namespace files: it is not dumpable after its uid change, and
/// ptrace access would be refused.) setns(2) leaves the caller at the root of the new
/// namespace (the same root after pivot_root), with its working directory there too.
///
/// Needs procfs at /proc. Errors: the helper's unshare error (EPERM in a chroot, ENOSPC past
/// user.max_user_namespaces or 32 nested user namespaces), its open error, or the
/// clone/setns error. The caller must be single-threaded (see [`super::process::clone_fork`]).
pub fn enter_locked_mount_ns() -> io::Result<()> {
    // The slot the helper fills: any descriptor the caller owns, replaced with dup3(2).
    let slot = rustix::fs::open(
        "/",
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    // The helper's result: 0, or the errno of the step that failed.
    let mut result = Helper {
        slot: slot.as_raw_fd(),
        errno: 0,
    };
    // The helper's stack, ample for three system calls (the kernel asks for none of its own).
    let mut stack = vec![0u128; HELPER_STACK / 16];
    // SAFETY: clone(2) with CLONE_VM | CLONE_VFORK: the helper runs `locked_ns_helper` on
    // `stack` (16-byte aligned, its top passed since x86_64 stacks grow down) in this address
    // space while this thread is suspended until the helper has exited, so `stack` and
    // `result` outlive it and nothing else touches them meanwhile. The helper makes only raw
    // system calls (rustix's linux_raw backend sets no errno, takes no lock) and ends with
    // _exit(2): it never returns into a frame of this thread. CLONE_FILES shares the
    // descriptor table, so its dup3 fills `slot` here. SIGCHLD makes it a child to reap.
    let pid = unsafe {
        let top = stack.as_mut_ptr().add(stack.len()) as *mut libc::c_void;
        libc::clone(
            locked_ns_helper,
            top,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_FILES | libc::SIGCHLD,
            &mut result as *mut Helper as *mut libc::c_void,
        )
    };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    let status = super::process::waitpid(pid, false)?.unwrap_or(0);
    drop(stack);
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return Err(io::Error::other(
            "the helper that locks the mounts was killed",
        ));
    }
    if result.errno != 0 {
        return Err(io::Error::from_raw_os_error(result.errno));
    }
    // `slot` now refers to the helper's (locked) mount namespace.
    Ok(rustix::thread::move_into_link_name_space(
        slot.as_fd(),
        Some(LinkNameSpaceType::Mount),
    )?)
}

/// Bytes of the helper's stack.
const HELPER_STACK: usize = 16 * 1024;

/// What the caller and the helper of [`enter_locked_mount_ns`] share.
#[repr(C)]
struct Helper {
    /// The descriptor the helper replaces with its mount namespace.
    slot: i32,
    /// 0, or the errno of the helper's failed step.
    errno: i32,
}

/// The helper of [`enter_locked_mount_ns`]: unshare a user and a mount namespace, put its
/// mount namespace in the caller's slot, record the outcome, _exit.
extern "C" fn locked_ns_helper(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the caller's `Helper`, alive while the caller waits (CLONE_VFORK);
    // nothing else accesses it until this helper exits.
    let shared = unsafe { &mut *(arg as *mut Helper) };
    let step = || -> rustix::io::Result<()> {
        // SAFETY: CLONE_FILES is not among the flags: the descriptor table stays shared.
        unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWUSER | UnshareFlags::NEWNS) }?;
        let ns = rustix::fs::open(
            "/proc/thread-self/ns/mnt",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        // SAFETY: `slot` is a descriptor the caller owns and keeps open while this runs.
        let mut slot = unsafe { std::os::fd::OwnedFd::from_raw_fd(shared.slot) };
        let r = rustix::io::dup3(&ns, &mut slot, rustix::io::DupFlags::CLOEXEC);
        // the caller still owns the slot: do not close it here
        std::mem::forget(slot);
        r
    };
    shared.errno = match step() {
        Ok(()) => 0,
        Err(e) => e.raw_os_error(),
    };
    // SAFETY: _exit(2) ends the helper without running anything of the caller's.
    unsafe { libc::_exit(0) }
}
