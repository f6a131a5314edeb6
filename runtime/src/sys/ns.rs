//! Namespaces: leaving some of ours, or moving into a copy of our mount namespace whose
//! mounts are locked. Kernel interfaces: unshare(2), setns(2) (namespaces(7)).

use std::io;
use std::os::fd::{AsFd, AsRawFd};

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
/// How: a helper forked from the caller, sharing its descriptor table (CLONE_FILES), unshares
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
/// fork/setns error. The caller must be single-threaded (see [`super::process::clone_fork`]).
pub fn enter_locked_mount_ns() -> io::Result<()> {
    // The slot the helper fills: any descriptor the caller owns, replaced with dup3(2).
    let slot = rustix::fs::open(
        "/",
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    let slot_fd = slot.as_raw_fd();
    // SAFETY: the callers (the container's child before it execs) are single-threaded. The
    // helper runs only async-signal-safe system calls (unshare, open, dup3, close, _exit) on
    // data prepared before the fork, and never returns into the frames it shares with the
    // caller.
    let pid = unsafe { super::process::clone_fork(libc::CLONE_FILES as u64, None) }?;
    if pid == 0 {
        // SAFETY: integer flags, a static NUL-terminated path, descriptors of the shared
        // table; errno is read through libc's thread-local location.
        unsafe {
            let errno = || match *libc::__errno_location() {
                e @ 1..=254 => e,
                _ => 255, // 0 would read as success
            };
            let code = if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) != 0 {
                errno()
            } else {
                let fd = libc::open(
                    c"/proc/thread-self/ns/mnt".as_ptr(),
                    libc::O_RDONLY | libc::O_CLOEXEC,
                );
                if fd < 0 || libc::dup3(fd, slot_fd, libc::O_CLOEXEC) < 0 {
                    errno()
                } else {
                    libc::close(fd);
                    0
                }
            };
            libc::_exit(code)
        }
    }
    let status = super::process::waitpid(pid, false)?.unwrap_or(0);
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        // `slot` now refers to the helper's (locked) mount namespace.
        let mount = Some(LinkNameSpaceType::Mount);
        return Ok(rustix::thread::move_into_link_name_space(
            slot.as_fd(),
            mount,
        )?);
    }
    Err(
        match libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)) {
            Some(e) if e != 0 => io::Error::from_raw_os_error(e),
            _ => io::Error::other("the helper that locks the mounts was killed"),
        },
    )
}
