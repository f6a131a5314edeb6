//! Making each kind of member in its parent: regular files (sparse holes kept as holes),
//! directories (their mode and mtime deferred, see pending.rs), symlinks, hardlinks within the
//! layer, device nodes and FIFOs. The last component is never followed: a member replaces
//! whatever held its name. Kernel interfaces: openat(2) O_NOFOLLOW|O_EXCL, mkdirat(2),
//! symlinkat(2), linkat(2), mknodat(2), lseek(2), ftruncate(2).

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use sha2::{Digest as _, Sha256};

use super::error::{io_err, show, tar_error, ExtractError};
use super::member::{join, split_member, Meta};
use super::Extractor;

/// Content digests remembered for the tree digest (about 80 bytes each).
const MAX_KNOWN_CONTENTS: usize = 200_000;

/// Most bytes of holes the sparse members of one layer may expand to (16 GiB). Holes take no
/// disk, but every byte of them is still hashed at extraction (the tree digest covers file
/// contents) and again by each `fsck`, and is read as zeros by anything that copies the file
/// without SEEK_HOLE: a few KiB of archive must not buy minutes of CPU. 16 GiB stays above
/// the sparse files real images carry (preallocated databases, disk images, a `lastlog` of
/// high uids) and hashes in about ten seconds.
pub const MAX_SPARSE_HOLES: u64 = 16 << 30;

impl Extractor {
    /// Removes whatever holds `name` in `pfd` (the later entry wins).
    pub(super) fn clear(
        &self,
        pfd: &OwnedFd,
        name: &[u8],
        member: &[u8],
    ) -> Result<(), ExtractError> {
        store::remove::remove_at(pfd, name).map_err(|e| ExtractError::Io {
            member: show(member),
            op: "replace",
            source: e,
        })
    }

    pub(super) fn file<R: Read>(
        &mut self,
        pfd: &OwnedFd,
        name: &[u8],
        e: &mut tar::Entry<'_, R>,
        meta: Meta,
        member: &[u8],
    ) -> Result<(), ExtractError> {
        // the tar crate gives a GNU sparse member its real size and reads its holes as zeros
        let want = e.size();
        let sparse = e.header().entry_type() == tar::EntryType::GNUSparse;
        if sparse {
            let stored = e.header().entry_size().unwrap_or(0);
            self.sparse_holes = self
                .sparse_holes
                .saturating_add(want.saturating_sub(stored));
            if self.sparse_holes > MAX_SPARSE_HOLES {
                return Err(ExtractError::SparseLimit {
                    member: show(member),
                    size: want,
                    limit: MAX_SPARSE_HOLES,
                });
            }
        }
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let create = || rustix::fs::openat(pfd, name, flags, Mode::from_raw_mode(0o600));
        let fd = match create() {
            Err(Errno::EXIST) => {
                self.clear(pfd, name, member)?; // a duplicate: the later entry wins
                create()
            }
            r => r,
        }
        .map_err(io_err(member, "create"))?;
        let mut f = File::from(fd);
        // bounded memory whatever the file count: past the cap the tree digest re-reads files
        let track = self.contents.len() < MAX_KNOWN_CONTENTS;
        let (n, digest) = self.copy_data(e, &mut f, sparse, track, member)?;
        if n != want {
            return Err(ExtractError::TruncatedMember(show(member)));
        }
        self.apply_fd(f.as_fd(), &meta, member, true)?;
        if let Some(digest) = digest {
            let st = rustix::fs::fstat(&f).map_err(io_err(member, "fstat"))?;
            self.contents.insert((st.st_dev, st.st_ino), digest);
        }
        Ok(())
    }

    /// Copies a member's data into `f`; returns its length and (if `hash`) sha256. The holes of a sparse
    /// member (zeros from the tar crate) are skipped with lseek(2) and the size set with
    /// ftruncate(2), so they stay holes on disk.
    fn copy_data<R: Read>(
        &mut self,
        e: &mut tar::Entry<'_, R>,
        f: &mut File,
        sparse: bool,
        hash: bool,
        member: &[u8],
    ) -> Result<(u64, Option<[u8; 32]>), ExtractError> {
        let write_err = |op| {
            move |err| ExtractError::Io {
                member: show(member),
                op,
                source: err,
            }
        };
        let mut h = Sha256::new();
        let mut n = 0u64;
        loop {
            let k = match e.read(&mut self.buf) {
                Ok(0) => break,
                Ok(k) => k,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(tar_error(err)),
            };
            let data = &self.buf[..k];
            if hash {
                h.update(data);
            }
            if sparse && all_zero(data) {
                f.seek(io::SeekFrom::Current(k as i64))
                    .map_err(write_err("seek over a hole"))?;
            } else {
                f.write_all(data).map_err(write_err("write"))?;
            }
            n += k as u64;
        }
        if sparse {
            f.set_len(n).map_err(write_err("truncate"))?;
        }
        Ok((n, hash.then(|| h.finalize().into())))
    }

    pub(super) fn dir(
        &mut self,
        pfd: &OwnedFd,
        name: &[u8],
        meta: Meta,
        comps: &[&[u8]],
        member: &[u8],
    ) -> Result<(), ExtractError> {
        match rustix::fs::statat(pfd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {}
            Ok(_) => self.clear(pfd, name, member)?,
            Err(Errno::NOENT) => {}
            Err(e) => return Err(io_err(member, "stat")(e)),
        }
        match rustix::fs::mkdirat(pfd, name, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(io_err(member, "mkdir")(e)),
        }
        let fd = rustix::fs::openat(
            pfd,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io_err(member, "open directory"))?;
        // mode and mtime are applied at the end, once nothing more is created inside
        self.apply_fd(
            fd.as_fd(),
            &Meta {
                mode: 0o700,
                ..meta.clone()
            },
            member,
            false,
        )?;
        self.pending
            .defer(join(comps), fd.as_fd(), meta.mode, meta.mtime)
            .map_err(io_err(member, "fstat"))?;
        Ok(())
    }

    pub(super) fn symlink(
        &mut self,
        pfd: &OwnedFd,
        name: &[u8],
        target: &[u8],
        meta: Meta,
        member: &[u8],
    ) -> Result<(), ExtractError> {
        if target.is_empty() {
            return Err(ExtractError::Invalid(
                show(member),
                "symlink with an empty target",
            ));
        }
        match rustix::fs::symlinkat(target, pfd, name) {
            Err(Errno::EXIST) => {
                self.clear(pfd, name, member)?;
                rustix::fs::symlinkat(target, pfd, name)
            }
            r => r,
        }
        .map_err(io_err(member, "symlink"))?;
        self.apply_at(pfd, name, &meta, member, false)
    }

    pub(super) fn hardlink(
        &mut self,
        pfd: &OwnedFd,
        name: &[u8],
        target: &[u8],
        comps: &[&[u8]],
        member: &[u8],
    ) -> Result<(), ExtractError> {
        let esc = || ExtractError::HardlinkEscape {
            member: show(member),
            target: show(target),
        };
        let missing = || ExtractError::HardlinkMissing {
            member: show(member),
            target: show(target),
        };
        let tcomps = split_member(target).map_err(|_| esc())?;
        let Some((tname, tparent)) = tcomps.split_last() else {
            return Err(esc());
        };
        if tcomps == comps {
            return Ok(()); // a link to itself: nothing to do
        }
        let tpfd = match self.open_parent(tparent, member, false) {
            Ok(fd) => fd,
            Err(ExtractError::SymlinkEscape(_)) => return Err(esc()),
            Err(ExtractError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Err(missing())
            }
            Err(ExtractError::NotADirectory(_)) => return Err(missing()),
            Err(e) => return Err(e),
        };
        let mut target_st = rustix::fs::statat(&tpfd, *tname, AtFlags::SYMLINK_NOFOLLOW);
        if matches!(target_st, Err(Errno::ACCESS)) && self.rootless() {
            // the target's directory was settled earlier without search permission
            self.unlock_path(tparent, member)?;
            target_st = rustix::fs::statat(&tpfd, *tname, AtFlags::SYMLINK_NOFOLLOW);
        }
        match target_st {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                return Err(ExtractError::HardlinkToDir {
                    member: show(member),
                    target: show(target),
                })
            }
            Ok(_) => {}
            Err(Errno::NOENT) => return Err(missing()),
            Err(e) => return Err(io_err(member, "stat link target")(e)),
        }
        self.clear(pfd, name, member)?;
        rustix::fs::linkat(&tpfd, *tname, pfd, name, AtFlags::empty())
            .map_err(io_err(member, "link"))
    }

    pub(super) fn node(
        &mut self,
        pfd: &OwnedFd,
        name: &[u8],
        ft: FileType,
        dev: u64,
        meta: Meta,
        member: &[u8],
    ) -> Result<(), ExtractError> {
        let is_whiteout_dev = ft == FileType::CharacterDevice && dev == 0;
        if self.rootless() && ft != FileType::Fifo && !is_whiteout_dev {
            self.stats.skipped_devices += 1;
            return Ok(());
        }
        self.clear(pfd, name, member)?;
        rustix::fs::mknodat(pfd, name, ft, Mode::from_raw_mode(0o600), dev)
            .map_err(io_err(member, "mknod"))?;
        self.apply_at(pfd, name, &meta, member, true)
    }
}

/// True when every byte is zero (folded per 64 bytes, which vectorises).
fn all_zero(b: &[u8]) -> bool {
    let mut it = b.chunks_exact(64);
    let whole = it.by_ref().all(|c| c.iter().fold(0u8, |a, x| a | x) == 0);
    whole && it.remainder().iter().all(|x| *x == 0)
}
