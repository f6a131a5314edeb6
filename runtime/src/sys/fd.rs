//! File descriptors: opening beneath a root, duplicating onto a number, close-on-exec for all
//! inherited ones. Kernel interfaces: openat2(2), dup2(2), fcntl(2) F_SETFD, close_range(2).

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};

use super::{check, cstr};

/// `openat2(2)` with a `resolve` mask (e.g. RESOLVE_IN_ROOT), always O_CLOEXEC.
pub fn openat2(
    dirfd: BorrowedFd<'_>,
    path: &Path,
    flags: OFlags,
    mode: Mode,
    resolve: ResolveFlags,
) -> io::Result<OwnedFd> {
    let c = cstr(path)?;
    Ok(rustix::fs::openat2(
        dirfd,
        c.as_c_str(),
        flags | OFlags::CLOEXEC,
        mode,
        resolve,
    )?)
}

/// Marks every descriptor from `first` upwards close-on-exec (`close_range(2)`).
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: integer arguments; with CLOSE_RANGE_CLOEXEC nothing is closed now, so no
    // descriptor owned elsewhere in this process goes away under its owner.
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
