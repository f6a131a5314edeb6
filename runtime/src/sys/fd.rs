//! File descriptors: opening beneath a root, duplicating onto a number, close-on-exec for all
//! inherited ones. Kernel interfaces: openat2(2), dup2(2), fcntl(2) F_SETFD, close_range(2).

use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::path::Path;

use super::{check, check_fd, cstr};

/// `openat2(2)` with a `resolve` mask (e.g. RESOLVE_IN_ROOT), always O_CLOEXEC.
pub fn openat2(
    dirfd: RawFd,
    path: &Path,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let c = cstr(path)?;
    // SAFETY: open_how is plain data; zeroed is a valid value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.mode = mode as u64;
    how.resolve = resolve;
    // SAFETY: `c` and `how` are valid for the call and we pass the struct's size.
    check_fd(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    })
}

/// Marks every descriptor from `first` upwards close-on-exec (`close_range(2)`).
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: integer arguments.
    check(unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    })
    .map(drop)
}

/// `dup2(2)` that also works when old == new (clears CLOEXEC then).
pub fn dup2(old: RawFd, new: RawFd) -> io::Result<()> {
    if old == new {
        // SAFETY: fcntl on a descriptor number; fails cleanly if it is not open.
        return check(unsafe { libc::fcntl(old, libc::F_SETFD, 0) } as libc::c_long).map(drop);
    }
    // SAFETY: integer descriptors.
    check(unsafe { libc::dup2(old, new) } as libc::c_long).map(drop)
}
