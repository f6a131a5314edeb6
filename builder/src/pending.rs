//! Directory modes and mtimes that must wait until nothing more is created inside the
//! directory (each creation moves the parent's mtime; a read-only mode would stop the owner of
//! a rootless layer from creating anything). Memory grows with the depth of the tree, never
//! with the number of directories: like GNU tar's delayed set-stat, a directory is settled as
//! soon as the archive leaves it (the next member is not below it); a directory written to
//! again later is re-opened with the metadata its inode holds then, and settled again.
//! Kernel interfaces: openat2(2) RESOLVE_BENEATH, fstat(2), fchmod(2), futimens(2) (see
//! utimensat(2)), chmod(2) through /proc/self/fd (proc(5)) for O_PATH descriptors.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::fs::{Mode, OFlags, ResolveFlags, Timespec, Timestamps};
use rustix::io::Errno;

/// One directory waiting for its metadata.
#[derive(Debug)]
struct Pending {
    /// member path of the directory (components joined by `/`, relative to the layer root)
    path: Vec<u8>,
    /// (st_dev, st_ino) when it was deferred: a directory replaced since is left alone
    id: (u64, u64),
    mode: u32,
    mtime: Timespec,
}

/// The stack of pending directories: each one is an ancestor (by member path) of the member
/// being extracted, or that member itself.
#[derive(Debug, Default)]
pub struct PendingDirs {
    stack: Vec<Pending>,
}

/// `path` is `ancestor` or lies below it (member paths; the root is the empty path).
fn within(path: &[u8], ancestor: &[u8]) -> bool {
    ancestor.is_empty()
        || path == ancestor
        || (path.starts_with(ancestor) && path.get(ancestor.len()) == Some(&b'/'))
}

fn identity(st: &rustix::fs::Stat) -> (u64, u64) {
    (st.st_dev, st.st_ino)
}

impl PendingDirs {
    /// Before extracting `member`: settles every pending directory it is not below.
    pub fn leave_for(&mut self, root: BorrowedFd<'_>, member: &[u8]) -> Result<(), Errno> {
        while let Some(top) = self.stack.last() {
            if within(member, &top.path) {
                break;
            }
            let p = self.stack.pop().expect("the stack has a top");
            apply(root, &p)?;
        }
        Ok(())
    }

    /// Settles everything still pending, deepest first.
    pub fn finish(&mut self, root: BorrowedFd<'_>) -> Result<(), (Vec<u8>, Errno)> {
        while let Some(p) = self.stack.pop() {
            apply(root, &p).map_err(|e| (p.path.clone(), e))?;
        }
        Ok(())
    }

    /// Records the metadata a directory `path` (open as `fd`) must end with. A member naming
    /// the same directory again replaces it (the later entry wins).
    pub fn defer(
        &mut self,
        path: Vec<u8>,
        fd: BorrowedFd<'_>,
        mode: u32,
        mtime: Timespec,
    ) -> Result<(), Errno> {
        let id = identity(&rustix::fs::fstat(fd)?);
        match self.stack.last_mut() {
            Some(top) if top.path == path => {
                *top = Pending {
                    path,
                    id,
                    mode,
                    mtime,
                };
            }
            _ => self.stack.push(Pending {
                path,
                id,
                mode,
                mtime,
            }),
        }
        Ok(())
    }

    /// Before something is created in or removed from the directory `path` (open as `fd`,
    /// possibly O_PATH) on behalf of `member`: makes sure its mtime will be put back. A
    /// directory settled earlier is deferred again with what its inode holds now; without
    /// privileges it is also made writable by its owner meanwhile.
    pub fn reopen(
        &mut self,
        path: &[u8],
        fd: BorrowedFd<'_>,
        member: &[u8],
        rootless: bool,
    ) -> Result<(), Errno> {
        if path.is_empty() || self.stack.iter().rev().any(|p| p.path == path) {
            return Ok(()); // the layer root is settled last, by the extractor
        }
        let st = rustix::fs::fstat(fd)?;
        if self.stack.iter().any(|p| p.id == identity(&st)) {
            // already pending under another path (reached through a symlink): the metadata
            // recorded first is the directory's own, what it holds now may be our 0700
            return Ok(());
        }
        let mode = st.st_mode & 0o7777;
        let mtime = Timespec {
            tv_sec: st.st_mtime as _,
            tv_nsec: st.st_mtime_nsec as _,
        };
        if rootless && mode & 0o700 != 0o700 {
            chmod_fd(fd, mode | 0o700)?;
        }
        let p = Pending {
            path: path.to_vec(),
            id: identity(&st),
            mode,
            mtime,
        };
        // the member itself may be on top (a directory named again): its parent goes below it
        let at = match self.stack.last() {
            Some(top) if top.path == member && member != path => self.stack.len() - 1,
            _ => self.stack.len(),
        };
        self.stack.insert(at, p);
        Ok(())
    }
}

/// chmod(2) of what an O_PATH descriptor refers to (fchmod(2) refuses O_PATH descriptors).
fn chmod_fd(fd: BorrowedFd<'_>, mode: u32) -> Result<(), Errno> {
    let p = format!("/proc/self/fd/{}", fd.as_raw_fd());
    rustix::fs::chmod(p.as_str(), Mode::from_raw_mode(mode))
}

/// Applies mode and mtime to the directory, if it is still the one that was deferred.
fn apply(root: BorrowedFd<'_>, p: &Pending) -> Result<(), Errno> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    let path: &[u8] = if p.path.is_empty() { b"." } else { &p.path };
    let fd: OwnedFd = match rustix::fs::openat2(root, path, flags, Mode::empty(), resolve) {
        Ok(fd) => fd,
        // replaced by a later member, or reached through what is no longer a directory
        Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP | Errno::XDEV) => return Ok(()),
        Err(e) => return Err(e),
    };
    if identity(&rustix::fs::fstat(&fd)?) != p.id {
        return Ok(());
    }
    let ts = Timestamps {
        last_access: p.mtime,
        last_modification: p.mtime,
    };
    rustix::fs::futimens(fd.as_fd(), &ts)?;
    rustix::fs::fchmod(fd.as_fd(), Mode::from_raw_mode(p.mode & 0o7777))
}

#[cfg(test)]
mod tests {
    use super::within;

    #[test]
    fn within_compares_whole_components() {
        assert!(within(b"a/b/c", b"a/b"));
        assert!(within(b"a/b", b"a/b"));
        assert!(within(b"anything", b""));
        assert!(!within(b"a/bc", b"a/b"));
        assert!(!within(b"a", b"a/b"));
    }
}
