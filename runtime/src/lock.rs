//! Exclusive advisory locks on files and folders rrun owns (the containers folder, one
//! container's folder, /run/rbox), held until dropped. Kernel interface: flock(2).

use std::fs::File;
use std::path::Path;

use rustix::fs::FlockOperation;
use rustix::io::Errno;

/// An exclusive flock held until dropped.
pub struct Lock {
    _file: File,
}

/// An exclusive flock(2) of the file or folder `path` (opened read-only, never created),
/// retried on EINTR; NotFound when it is missing.
pub fn flock(path: &Path) -> std::io::Result<Lock> {
    let f = File::open(path)?;
    loop {
        match rustix::fs::flock(&f, FlockOperation::LockExclusive) {
            Ok(()) => return Ok(Lock { _file: f }),
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}
