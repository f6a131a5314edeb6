//! The store's own small files (config.json, layer.json, tags.json, holds, the format marker):
//! bounded reads that never follow a symlink or wait on a FIFO, atomic replacement, and unique
//! staging names. Kernel interfaces: openat(2) O_NOFOLLOW|O_NONBLOCK, fstat(2), rename(2),
//! fsync(2).

use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{FileType, Mode, OFlags, CWD};
use rustix::io::Errno;

use crate::error::StoreError;

/// The most the store reads of one of its own small files.
pub const MAX_STORE_FILE: u64 = 16 << 20;

/// A value unique within this process, mixed with the clock, for staging names.
pub fn nonce() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!("{:x}{:x}", t, N.fetch_add(1, Ordering::Relaxed))
}

/// The contents of the store file `path`: a regular file (its last component not followed, a
/// FIFO never waited on) of at most [`MAX_STORE_FILE`] bytes. A file that is something else
/// or bigger is an `InvalidData` error saying so; other errors (NotFound...) are kept as they
/// are. A store changed behind rbox's back must not make it hang or read without end.
pub fn read_store_file(path: &Path) -> io::Result<Vec<u8>> {
    read_store_file_at(CWD, path)
}

/// [`read_store_file`] of `name` relative to the directory `dir`.
pub fn read_store_file_at<P: rustix::path::Arg>(
    dir: BorrowedFd<'_>,
    name: P,
) -> io::Result<Vec<u8>> {
    let flags =
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, name, flags, Mode::empty()).map_err(|e| match e {
        Errno::LOOP => io::Error::new(
            io::ErrorKind::InvalidData,
            "a symbolic link, not a regular file",
        ),
        e => e.into(),
    })?;
    let st = rustix::fs::fstat(&fd)?;
    let ft = FileType::from_raw_mode(st.st_mode);
    if ft != FileType::RegularFile {
        let what = format!("a {ft:?}, not a regular file").to_lowercase();
        return Err(io::Error::new(io::ErrorKind::InvalidData, what));
    }
    let too_big = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "larger than {} MiB, the most rbox reads of a store file",
                MAX_STORE_FILE >> 20
            ),
        )
    };
    if st.st_size as u64 > MAX_STORE_FILE {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(st.st_size as usize);
    fs::File::from(fd)
        .take(MAX_STORE_FILE + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_STORE_FILE {
        return Err(too_big());
    }
    Ok(bytes)
}

/// Whether [`write_atomic`] waits for the bytes to reach the disk before the rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync(2) before the rename: after a crash the file is the old one or the new one.
    Synced,
    /// No fsync: for files replaced often on a hot path whose loss in a crash is harmless or
    /// repaired (a hold of a process the crash ended). On ext4, replacing an existing file by
    /// rename still flushes its data first (the `auto_da_alloc` default).
    Unsynced,
}

/// Writes `bytes` to `dest` through a file in `tmp` (named `w-<pid>-...`, so a killed writer's
/// leftover is found by [`crate::Store::clean_stale_staging`]) and rename(2): readers see the
/// old contents or the new, never a part.
pub fn write_atomic(
    tmp: &Path,
    dest: &Path,
    bytes: &[u8],
    durability: Durability,
) -> Result<(), StoreError> {
    let t = tmp.join(format!(
        "w-{}-{}-{}",
        std::process::id(),
        nonce(),
        dest.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let res = (|| {
        let mut f = fs::File::create(&t)?;
        f.write_all(bytes)?;
        if durability == Durability::Synced {
            f.sync_all()?;
        }
        fs::rename(&t, dest)
    })();
    if res.is_err() {
        let _ = fs::remove_file(&t);
    }
    res.map_err(StoreError::io(dest))
}

/// Opens a directory of the store as O_PATH without following a symlink in its place.
pub(crate) fn open_dir_path<Fd: AsFd, P: rustix::path::Arg>(
    dir: Fd,
    name: P,
) -> io::Result<std::os::fd::OwnedFd> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(rustix::fs::openat(dir, name, flags, Mode::empty())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_files_are_regular_bounded_and_never_followed() {
        let dir =
            std::env::temp_dir().join(format!("store-files-{}-{}", std::process::id(), nonce()));
        fs::create_dir_all(dir.join("tmp")).unwrap();
        let f = dir.join("f");
        write_atomic(&dir.join("tmp"), &f, b"one", Durability::Synced).unwrap();
        write_atomic(&dir.join("tmp"), &f, b"two", Durability::Unsynced).unwrap();
        assert_eq!(read_store_file(&f).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.join("tmp")).unwrap().count(), 0);
        std::os::unix::fs::symlink(&f, dir.join("link")).unwrap();
        let e = read_store_file(&dir.join("link")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        rustix::fs::mknodat(
            CWD,
            dir.join("fifo"),
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let e = read_store_file(&dir.join("fifo")).unwrap_err();
        assert!(e.to_string().contains("fifo"), "{e}");
        let big = fs::File::create(dir.join("big")).unwrap();
        big.set_len(MAX_STORE_FILE + 1).unwrap();
        let e = read_store_file(&dir.join("big")).unwrap_err();
        assert!(e.to_string().contains("16 MiB"), "{e}");
        assert_eq!(
            read_store_file(&dir.join("missing")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
