//! Getting a handle on a store: made if missing (for what adds to it), existing and brought to
//! the current format (for what changes it), or existing and left exactly as it is (for what
//! only reads it: such a command never creates a store). Kernel interfaces: mkdir(2),
//! chmod(2), lstat(2).
//!
//! # Privacy
//!
//! The store is private to its owner: the root folder is created mode 0700, and its folders
//! ([`SUBDIRS`]) are made 0700 whenever the store is opened for writing (a layer may hold
//! setuid-root programs, and rrun's state holds `-e` values). The owner (root, or the rootless
//! user) reaches everything; overlay mounts read the lowerdirs with the mounter's credentials
//! from descriptors or paths rrun opens as that owner, so 0700 costs them nothing.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

use crate::error::StoreError;
use crate::layout::{Store, SUBDIRS};

impl Store {
    /// Opens the store at `root`, creating it (mode 0700) if missing: for what adds to a store
    /// (`rbuild layer add`). Then as [`Store::open`].
    pub fn create(root: &Path) -> Result<Store, StoreError> {
        let store = Store::at(root)?;
        if !store.root().is_dir() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(store.root())
                .map_err(StoreError::io(store.root()))?;
        }
        store.make_ready()?;
        Ok(store)
    }

    /// Opens the existing store at `root` for writing ([`StoreError::NoStore`] when there is
    /// none): its folders are made if missing and private again (see the module docs), and a
    /// store of an older format is migrated (see [`crate::migrate`]). A store of a newer
    /// format is refused.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let store = Store::open_read(root)?;
        store.make_ready()?;
        Ok(store)
    }

    /// Opens the existing store at `root` to read it ([`StoreError::NoStore`] when there is
    /// none), changing nothing: no folder is made, no mode changed, no migration run.
    pub fn open_read(root: &Path) -> Result<Store, StoreError> {
        let store = Store::at(root)?;
        if !store.exists() {
            return Err(StoreError::NoStore(store.root().to_path_buf()));
        }
        Ok(store)
    }

    /// Folders made and private, format current.
    fn make_ready(&self) -> Result<(), StoreError> {
        let mut b = fs::DirBuilder::new();
        b.mode(0o700);
        let euid = rustix::process::geteuid().as_raw();
        for sub in SUBDIRS {
            let p = self.root().join(sub);
            match fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() && m.uid() == euid && m.mode() & 0o077 != 0 => {
                    fs::set_permissions(&p, fs::Permissions::from_mode(m.mode() & 0o700))
                        .map_err(StoreError::io(&p))?;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => match b.create(&p) {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                        return Err(StoreError::Io { path: p, source: e })
                    }
                    _ => {}
                },
                Err(e) => return Err(StoreError::Io { path: p, source: e }),
            }
        }
        crate::migrate::ensure_current(self)
    }
}
