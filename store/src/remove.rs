//! Removal of trees: layers, images, staging folders and containers' upper dirs. It never follows
//! a symlink, holds a bounded number of descriptors whatever the depth, and copes with the
//! unwritable directories rootless extraction and overlayfs leave. rbuild and rrun both remove
//! through it. Kernel interfaces: openat(2) O_NOFOLLOW|O_DIRECTORY, fstat(2), getdents64(2),
//! unlinkat(2), fchmod(2).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags, CWD};
use rustix::io::Errno;

/// Removes `path` and everything below it. Symlinks are removed, never followed. Missing is fine.
/// Uses a bounded number of descriptors whatever the depth (see [`remove_at`]).
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Some(name) = path.file_name() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no file name to remove",
        ));
    };
    let dir = match rustix::fs::openat(
        CWD,
        parent,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    remove_at(&dir, std::os::unix::ffi::OsStrExt::as_bytes(name))
}

/// Removes `name` (any type, a directory with its contents) in the directory `dirfd`.
///
/// The walk holds at most three descriptors at any depth: it descends into one directory at a
/// time, closing the parent, and climbs back through `..`, checking that `..` is the directory
/// it came from (device and inode recorded on the way down) so a concurrent rename cannot lead
/// it outside the tree. Memory grows with the depth only (one name and inode per level).
pub fn remove_at(dirfd: impl AsFd, name: &[u8]) -> io::Result<()> {
    let dirfd = dirfd.as_fd();
    match rustix::fs::unlinkat(dirfd, name, AtFlags::empty()) {
        Ok(()) => return Ok(()),
        Err(Errno::NOENT) => return Ok(()),
        Err(Errno::ISDIR) | Err(Errno::PERM) => {}
        Err(e) => return Err(e.into()),
    }
    let top = open_dir_nofollow(dirfd, name)?;
    empty_tree(top)?;
    match rustix::fs::unlinkat(dirfd, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// One level of the walk below the top directory: its name in its parent, the parent's
/// identity (to climb back safely) and where to resume listing the parent.
struct Level {
    name: Vec<u8>,
    parent: (u64, u64),
    resume: i64,
}

fn identity(fd: &OwnedFd) -> io::Result<(u64, u64)> {
    let st = rustix::fs::fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

/// Empties the directory `top` (and everything below it) with a bounded number of descriptors.
fn empty_tree(top: OwnedFd) -> io::Result<()> {
    let mut cur = top;
    let mut pos = 0i64;
    let mut stack: Vec<Level> = Vec::new();
    loop {
        make_ours(&cur);
        match remove_entries(&cur, pos)? {
            Some((sub, resume)) => {
                // descend: the child becomes the current directory, the parent fd is closed
                let child = open_dir_nofollow(&cur, sub.as_slice())?;
                stack.push(Level {
                    name: sub,
                    parent: identity(&cur)?,
                    resume,
                });
                cur = child;
                pos = 0;
            }
            None => {
                let Some(level) = stack.pop() else {
                    return Ok(());
                };
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
                let parent = rustix::fs::openat(&cur, "..", flags, Mode::empty())?;
                if identity(&parent)? != level.parent {
                    return Err(io::Error::other(
                        "a directory was moved while its tree was being removed",
                    ));
                }
                drop(cur);
                match rustix::fs::unlinkat(&parent, level.name.as_slice(), AtFlags::REMOVEDIR) {
                    Ok(()) | Err(Errno::NOENT) => {}
                    Err(e) => return Err(e.into()),
                }
                cur = parent;
                pos = level.resume;
            }
        }
    }
}

/// Unlinks the non-directories of `dir` from the listing position `pos` on; returns a
/// subdirectory to descend into with the position to resume from afterwards, or None once a
/// listing from the start finds `dir` empty. Names are unlinked in batches after they are read
/// (not while getdents walks the directory); resuming at a position keeps wide directories
/// linear instead of re-reading what was already removed.
fn remove_entries(dir: &OwnedFd, mut pos: i64) -> io::Result<Option<(Vec<u8>, i64)>> {
    loop {
        let from_start = pos == 0;
        let mut names = Vec::new();
        let mut subdir = None;
        let mut d = rustix::fs::Dir::read_from(dir)?;
        if !from_start {
            d.seek(pos)?;
        }
        for e in d.by_ref() {
            let e = e?;
            let n = e.file_name().to_bytes();
            if n == b"." || n == b".." {
                continue;
            }
            if e.file_type() == rustix::fs::FileType::Directory {
                subdir = Some((n.to_vec(), e.offset()));
                break;
            }
            names.push((n.to_vec(), e.offset()));
            if names.len() >= 4096 {
                break;
            }
        }
        drop(d);
        match names.last() {
            _ if subdir.is_some() => {}
            None if from_start => return Ok(None),
            None => pos = 0, // reached the end: a last pass from the start proves it empty
            Some((_, off)) => pos = *off,
        }
        for (n, off) in names {
            match rustix::fs::unlinkat(dir, n.as_slice(), AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => {}
                // d_type unknown (some filesystems): a directory after all
                Err(Errno::ISDIR) | Err(Errno::PERM) => return Ok(Some((n, off))),
                Err(e) => return Err(e.into()),
            }
        }
        if subdir.is_some() {
            return Ok(subdir);
        }
    }
}

fn open_dir_nofollow<P: rustix::path::Arg + Copy>(
    dirfd: impl AsFd,
    name: P,
) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rustix::fs::openat(dirfd.as_fd(), name, flags, Mode::empty()) {
        Ok(fd) => Ok(fd),
        Err(Errno::ACCESS) => {
            // a directory extracted without privileges may be mode 0 or 0500: make it ours to empty
            rustix::fs::chmodat(
                dirfd.as_fd(),
                name,
                Mode::from_raw_mode(0o700),
                AtFlags::empty(),
            )?;
            Ok(rustix::fs::openat(dirfd, name, flags, Mode::empty())?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Makes sure we may unlink inside `dir` (rootless trees can hold 0555 directories).
fn make_ours(dir: &OwnedFd) {
    if let Ok(st) = rustix::fs::fstat(dir) {
        if st.st_mode & 0o700 != 0o700 && st.st_uid == rustix::process::geteuid().as_raw() {
            let _ = rustix::fs::fchmod(dir, Mode::from_raw_mode(0o700));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn remove_tree_takes_wide_deep_and_read_only_trees_but_never_follows_symlinks() {
        let base = std::env::temp_dir().join(format!(
            "store-rm-{}-{}",
            std::process::id(),
            crate::files::nonce()
        ));
        let (tree, outside) = (base.join("tree"), base.join("outside"));
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("keep"), "keep").unwrap();
        let wide = tree.join("wide");
        fs::create_dir_all(&wide).unwrap();
        for i in 0..5000 {
            fs::write(wide.join(format!("f{i}")), "").unwrap();
        }
        for i in 0..300 {
            fs::create_dir(wide.join(format!("d{i}"))).unwrap();
            fs::write(wide.join(format!("d{i}/x")), "").unwrap();
        }
        let mut deep = tree.join("deep");
        for _ in 0..300 {
            deep.push("d");
        }
        fs::create_dir_all(&deep).unwrap();
        std::os::unix::fs::symlink(&outside, tree.join("link")).unwrap();
        std::os::unix::fs::symlink(&outside, deep.join("link")).unwrap();
        fs::create_dir(tree.join("ro")).unwrap();
        fs::write(tree.join("ro/f"), "").unwrap();
        fs::set_permissions(tree.join("ro"), fs::Permissions::from_mode(0o500)).unwrap();
        remove_tree(&tree).unwrap();
        assert!(!tree.exists());
        assert_eq!(fs::read_to_string(outside.join("keep")).unwrap(), "keep");
        remove_tree(&tree).unwrap(); // missing is fine
        fs::remove_dir_all(&base).unwrap();
    }
}
