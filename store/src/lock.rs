//! Advisory whole-file locks: the store lock shared by rbuild and rrun (the protocol is in the
//! crate docs), and the lock that serialises writers of tags.json.
//! Kernel interface: flock(2) (LOCK_EX/LOCK_SH, LOCK_NB), released when the descriptor closes.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::fs::{flock, FlockOperation};
use rustix::io::Errno;

use crate::error::StoreError;
use crate::layout::Store;

/// How long [`Store::lock_exclusive`] waits for the store lock before giving up.
pub const LOCK_WAIT: Duration = Duration::from_secs(30);

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
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
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

/// The store lock (see the crate docs), held until dropped.
pub struct StoreLock {
    _lock: FileLock,
}

impl Store {
    /// Takes the store lock shared, waiting as long as an exclusive holder (a removal, a
    /// migration) runs. rrun holds it from before [`Store::resolve_image`] until its hold on
    /// the image is written; `rbuild image create` while it checks its layers and writes the
    /// image.
    pub fn lock_shared(&self) -> Result<StoreLock, StoreError> {
        Ok(StoreLock {
            _lock: FileLock::shared(&self.lock_path())?,
        })
    }

    /// Takes the store lock exclusive (`image rm`, `layer rm`, `gc`, a migration), waiting at
    /// most [`LOCK_WAIT`] for shared holders (rrun starting containers) to finish; then
    /// [`StoreError::Busy`].
    pub fn lock_exclusive(&self) -> Result<StoreLock, StoreError> {
        let path = self.lock_path();
        let started = Instant::now();
        loop {
            if let Some(l) = FileLock::try_exclusive(&path)? {
                return Ok(StoreLock { _lock: l });
            }
            if started.elapsed() >= LOCK_WAIT {
                return Err(StoreError::Busy {
                    path,
                    secs: LOCK_WAIT.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
