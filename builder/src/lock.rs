//! Advisory whole-file locks that serialise writers of one store object.
//! Kernel interface: flock(2) (LOCK_EX/LOCK_SH), released when the descriptor closes.

use std::fs::{File, OpenOptions};
use std::path::Path;

use rustix::fs::{flock, FlockOperation};

use crate::store::StoreError;

/// Holds a flock(2) until dropped.
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Blocks until an exclusive lock on `path` (created if missing) is held.
    pub fn exclusive(path: &Path) -> Result<FileLock, StoreError> {
        Self::take(path, FlockOperation::LockExclusive)
    }

    /// Blocks until a shared lock on `path` (created if missing) is held.
    pub fn shared(path: &Path) -> Result<FileLock, StoreError> {
        Self::take(path, FlockOperation::LockShared)
    }

    fn take(path: &Path, op: FlockOperation) -> Result<FileLock, StoreError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(StoreError::io(path))?;
        loop {
            match flock(&file, op) {
                Ok(()) => return Ok(FileLock { _file: file }),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(StoreError::Io { path: path.into(), source: e.into() }),
            }
        }
    }
}
