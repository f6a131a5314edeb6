//! Exclusive advisory locks on files and folders rrun owns (the containers folder, one
//! container's folder, /run/rbox), held until dropped. Kernel interface: flock(2).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

/// An exclusive flock held until dropped.
pub struct Lock {
    _file: File,
}

/// An exclusive flock(2) of the file or folder `path` (opened read-only, never created),
/// retried on EINTR; NotFound when it is missing.
pub fn flock(path: &Path) -> std::io::Result<Lock> {
    let f = File::open(path)?;
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(Lock { _file: f });
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
