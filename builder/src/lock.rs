//! Advisory whole-file locks: the store lock shared by rbuild and rrun, and the lock that
//! serialises writers of tags.json.
//! Kernel interface: flock(2) (LOCK_EX/LOCK_SH, LOCK_NB), released when the descriptor closes.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rustix::fs::{flock, FlockOperation};
use rustix::io::Errno;

use crate::store::StoreError;

/// A blocking flock(2) never reports EWOULDBLOCK; should it, it is an I/O error, not a panic.
fn would_block(path: &Path) -> StoreError {
    StoreError::Io {
        path: path.into(),
        source: Errno::WOULDBLOCK.into(),
    }
}

/// Holds a flock(2) until dropped.
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Blocks until an exclusive lock on `path` (created 0600 if missing) is held.
    pub fn exclusive(path: &Path) -> Result<FileLock, StoreError> {
        Self::take(path, FlockOperation::LockExclusive)?.ok_or_else(|| would_block(path))
    }

    /// Blocks until a shared lock on `path` (created 0600 if missing) is held.
    pub fn shared(path: &Path) -> Result<FileLock, StoreError> {
        Self::take(path, FlockOperation::LockShared)?.ok_or_else(|| would_block(path))
    }

    /// An exclusive lock if nobody else holds one right now, else None.
    pub fn try_exclusive(path: &Path) -> Result<Option<FileLock>, StoreError> {
        Self::take(path, FlockOperation::NonBlockingLockExclusive)
    }

    fn take(path: &Path, op: FlockOperation) -> Result<Option<FileLock>, StoreError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path)
            .map_err(StoreError::io(path))?;
        loop {
            match flock(&file, op) {
                Ok(()) => return Ok(Some(FileLock { _file: file })),
                Err(Errno::INTR) => continue,
                Err(Errno::WOULDBLOCK) => return Ok(None),
                Err(e) => {
                    return Err(StoreError::Io {
                        path: path.into(),
                        source: e.into(),
                    })
                }
            }
        }
    }
}
