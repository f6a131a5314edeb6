//! Finding a member's parent directory beneath the layer root: openat2(2) with
//! RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS for every parent, missing parents made one component
//! at a time, and (rootless) directories settled earlier without search permission opened up
//! again on the way. Kernel interfaces: openat2(2), mkdirat(2), fstatat(2), readlinkat(2).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec};
use rustix::io::Errno;

use super::error::{io_err, show, ExtractError};
use super::member::join;
use super::Extractor;

/// Symlinks followed on one path before it is a loop (the kernel's MAXSYMLINKS).
const MAX_SYMLINKS: usize = 40;

const PARENT_FLAGS: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_MAGICLINKS);

impl Extractor {
    /// Opens the directory `comps` (relative to the root) as O_PATH, resolving beneath the root.
    /// Missing directories are created (0755) when `create` is set.
    pub(super) fn open_parent(
        &mut self,
        comps: &[&[u8]],
        member: &[u8],
        create: bool,
    ) -> Result<OwnedFd, ExtractError> {
        if comps.is_empty() {
            return self.root.try_clone().map_err(|e| ExtractError::Io {
                member: show(member),
                op: "dup",
                source: e,
            });
        }
        let mut found = resolve(self.root.as_fd(), &join(comps));
        if matches!(found, Err(Errno::ACCESS)) && self.rootless() {
            // a directory settled earlier on the way lacks search permission for its owner
            self.unlock_path(comps, member)?;
            found = resolve(self.root.as_fd(), &join(comps));
        }
        match found {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) if create => {}
            Err(e) => return Err(map_resolve(e, member)),
        }
        self.create_parents(comps, member)
    }

    /// Creates what is missing of `comps`, one component at a time (0700 while pending, 0755
    /// in the end), each step resolved beneath the root; returns the last one as O_PATH.
    fn create_parents(&mut self, comps: &[&[u8]], member: &[u8]) -> Result<OwnedFd, ExtractError> {
        let dup_err = |e| ExtractError::Io {
            member: show(member),
            op: "dup",
            source: e,
        };
        let mut cur = self.root.try_clone().map_err(dup_err)?;
        for i in 0..comps.len() {
            let prefix = join(&comps[..=i]);
            match resolve(self.root.as_fd(), &prefix) {
                Ok(fd) => cur = fd,
                Err(Errno::NOENT) => {
                    let rootless = self.rootless();
                    self.pending
                        .reopen(&join(&comps[..i]), cur.as_fd(), member, rootless)
                        .map_err(io_err(member, "reopen parent"))?;
                    let made = match rustix::fs::mkdirat(&cur, comps[i], Mode::from_raw_mode(0o700))
                    {
                        Ok(()) => true,
                        Err(Errno::EXIST) => false,
                        Err(e) => return Err(io_err(member, "mkdir")(e)),
                    };
                    cur =
                        resolve(self.root.as_fd(), &prefix).map_err(|e| map_resolve(e, member))?;
                    if made {
                        let zero = Timespec {
                            tv_sec: 0,
                            tv_nsec: 0,
                        };
                        self.pending
                            .defer(prefix, cur.as_fd(), 0o755, zero)
                            .map_err(io_err(member, "fstat"))?;
                    }
                }
                Err(e) => return Err(map_resolve(e, member)),
            }
        }
        Ok(cur)
    }

    /// Rootless: re-opens (as pending, writable and searchable) every directory on the way to
    /// `comps`, so a member below directories settled earlier can be written. The way is
    /// walked here one component at a time, following symlinks by their targets (beneath the
    /// root), since a symlink may lead through a directory its owner cannot search (`lib64 ->
    /// d/lib` with `d` settled as 0600): the directories unlocked are the real ones, by their
    /// real paths. Anything odd on the way (missing, not a directory, an absolute or escaping
    /// target, a loop) ends the walk: the resolution that follows reports it.
    pub(super) fn unlock_path(
        &mut self,
        comps: &[&[u8]],
        member: &[u8],
    ) -> Result<(), ExtractError> {
        let mut todo: Vec<Vec<u8>> = comps.iter().rev().map(|c| c.to_vec()).collect();
        let mut real: Vec<Vec<u8>> = Vec::new();
        let mut links = 0;
        loop {
            let path = join(&real.iter().map(Vec::as_slice).collect::<Vec<_>>());
            let cur = if path.is_empty() {
                self.root.try_clone().ok()
            } else {
                resolve(self.root.as_fd(), &path).ok()
            };
            let Some(cur) = cur else { return Ok(()) };
            self.pending
                .reopen(&path, cur.as_fd(), member, true)
                .map_err(io_err(member, "reopen directory"))?;
            let Some(c) = todo.pop() else { return Ok(()) };
            match c.as_slice() {
                b"" | b"." => continue,
                b".." => {
                    if real.pop().is_none() {
                        return Ok(());
                    }
                    continue;
                }
                _ => {}
            }
            let Ok(st) = rustix::fs::statat(&cur, c.as_slice(), AtFlags::SYMLINK_NOFOLLOW) else {
                return Ok(());
            };
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => real.push(c),
                FileType::Symlink if links < MAX_SYMLINKS => {
                    links += 1;
                    let Ok(t) = rustix::fs::readlinkat(&cur, c.as_slice(), Vec::new()) else {
                        return Ok(());
                    };
                    let t = t.into_bytes();
                    if t.starts_with(b"/") {
                        return Ok(());
                    }
                    todo.extend(t.split(|b| *b == b'/').rev().map(<[u8]>::to_vec));
                }
                _ => return Ok(()),
            }
        }
    }
}

/// openat2(O_PATH|O_DIRECTORY) beneath `root`; retried on EAGAIN (a concurrent rename).
fn resolve(root: BorrowedFd<'_>, path: &[u8]) -> Result<OwnedFd, Errno> {
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(
            root,
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            PARENT_FLAGS,
        ) {
            Err(Errno::AGAIN) if tries < 16 => tries += 1,
            r => return r,
        }
    }
}

fn map_resolve(e: Errno, member: &[u8]) -> ExtractError {
    match e {
        Errno::XDEV => ExtractError::SymlinkEscape(show(member)),
        Errno::LOOP => ExtractError::SymlinkLoop(show(member)),
        Errno::NOTDIR => ExtractError::NotADirectory(show(member)),
        Errno::NOENT => ExtractError::NotADirectory(show(member)),
        e => ExtractError::Io {
            member: show(member),
            op: "resolve parent",
            source: e.into(),
        },
    }
}

pub(super) fn open_dir(pfd: &OwnedFd, member: &[u8]) -> Result<OwnedFd, ExtractError> {
    rustix::fs::openat(
        pfd,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io_err(member, "open directory"))
}
