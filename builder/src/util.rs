//! Small filesystem helpers: unique staging names and a tree removal that never follows
//! symlinks and copes with unwritable directories left by rootless extraction.
//! Kernel interfaces: openat(2) O_NOFOLLOW|O_DIRECTORY, getdents64(2), unlinkat(2), fchmod(2).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, Mode, OFlags, CWD};
use rustix::io::Errno;

/// A value unique within this process, mixed with the clock, for staging names.
pub fn nonce() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!("{:x}{:x}", t, N.fetch_add(1, Ordering::Relaxed))
}

/// Removes `path` and everything below it. Symlinks are removed, never followed. Missing is fine.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    match rustix::fs::unlinkat(CWD, path, AtFlags::empty()) {
        Ok(()) => return Ok(()),
        Err(Errno::NOENT) => return Ok(()),
        Err(Errno::ISDIR) | Err(Errno::PERM) => {}
        Err(e) => return Err(e.into()),
    }
    let dir = open_dir_nofollow(CWD, path)?;
    empty_dir(&dir)?;
    drop(dir);
    match rustix::fs::unlinkat(CWD, path, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes `name` (any type, a directory with its contents) in the directory `dirfd`.
pub fn remove_at(dirfd: impl AsFd, name: &[u8]) -> io::Result<()> {
    let dirfd = dirfd.as_fd();
    match rustix::fs::unlinkat(dirfd, name, AtFlags::empty()) {
        Ok(()) => return Ok(()),
        Err(Errno::NOENT) => return Ok(()),
        Err(Errno::ISDIR) | Err(Errno::PERM) => {}
        Err(e) => return Err(e.into()),
    }
    let sub = open_dir_nofollow(dirfd, name)?;
    empty_dir(&sub)?;
    drop(sub);
    match rustix::fs::unlinkat(dirfd, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn open_dir_nofollow<P: rustix::path::Arg + Copy>(dirfd: impl AsFd, name: P) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rustix::fs::openat(dirfd.as_fd(), name, flags, Mode::empty()) {
        Ok(fd) => Ok(fd),
        Err(Errno::ACCESS) => {
            // a directory extracted without privileges may be mode 0 or 0500: make it ours to empty
            rustix::fs::chmodat(dirfd.as_fd(), name, Mode::from_raw_mode(0o700), AtFlags::empty())?;
            Ok(rustix::fs::openat(dirfd, name, flags, Mode::empty())?)
        }
        Err(e) => Err(e.into()),
    }
}

fn empty_dir(dir: &OwnedFd) -> io::Result<()> {
    // make sure we may unlink inside it (rootless trees can hold 0555 directories)
    if let Ok(st) = rustix::fs::fstat(dir) {
        if st.st_mode & 0o700 != 0o700 && st.st_uid == rustix::process::geteuid().as_raw() {
            let _ = rustix::fs::fchmod(dir, Mode::from_raw_mode(0o700));
        }
    }
    loop {
        let mut names = Vec::new();
        let mut d = rustix::fs::Dir::read_from(dir)?;
        for e in d.by_ref() {
            let e = e?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(n.to_vec());
            }
            if names.len() >= 4096 {
                break;
            }
        }
        if names.is_empty() {
            return Ok(());
        }
        for n in names {
            remove_at(dir, &n)?;
        }
    }
}
