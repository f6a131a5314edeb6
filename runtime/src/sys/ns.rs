//! Namespaces: joining one of another process, or leaving one of ours.
//! Kernel interfaces: setns(2), unshare(2) (namespaces(7)).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::check;

/// `setns(2)`.
pub fn setns(fd: BorrowedFd<'_>, nstype: libc::c_int) -> io::Result<()> {
    // SAFETY: borrowed fd, integer flags.
    check(unsafe { libc::setns(fd.as_raw_fd(), nstype) } as libc::c_long).map(drop)
}

/// `unshare(2)`.
pub fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: integer flags only.
    check(unsafe { libc::unshare(flags) } as libc::c_long).map(drop)
}
