//! Safe extraction of one tar stream into a staging root that will become an overlayfs lowerdir.
//! Kernel interfaces: openat2(2) with RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS for every parent,
//! then *at(2) calls relative to that directory fd with no symlink following on the last
//! component (openat O_NOFOLLOW|O_EXCL, mkdirat, mknodat, symlinkat, linkat, unlinkat,
//! fchownat/utimensat AT_SYMLINK_NOFOLLOW, fsetxattr/lsetxattr); whiteouts per the kernel's
//! Documentation/filesystems/overlayfs.rst ("whiteouts and opaque directories").
//!
//! Policy (what is refused and what is contained):
//! - member names are relative to the layer root: a leading `/` is stripped (absolute member
//!   paths land inside the layer), `.` and empty components are dropped, any `..` is refused;
//! - every parent is resolved with RESOLVE_BENEATH: a member written through a symlink that is
//!   absolute or climbs above the layer root (directly or through a chain) is refused (EXDEV),
//!   as is a hardlink whose target lies through such a symlink or outside the root;
//! - the last component is never followed: a member replaces whatever held its name before
//!   (a symlink there is replaced, not written through: the later entry wins);
//! - hardlink targets are member names too and must already exist in this layer.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{
    AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Timespec, Timestamps, Uid, XattrFlags,
};
use rustix::io::Errno;
use sha2::{Digest as _, Sha256};

use crate::pending::PendingDirs;
use crate::userns::Privilege;

/// Why an extraction stopped. Every variant names the member; the store is left untouched.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("member {0} escapes the layer root; refused")]
    Escape(String),
    #[error("member {0} is written through a symlink that leaves the layer root; refused")]
    SymlinkEscape(String),
    #[error("member {0}: too many levels of symbolic links on its path (a symlink loop); refused")]
    SymlinkLoop(String),
    #[error("hardlink {member} -> {target} leaves the layer root; refused")]
    HardlinkEscape { member: String, target: String },
    #[error("hardlink {member} -> {target}: the target is not in the layer; refused")]
    HardlinkMissing { member: String, target: String },
    #[error("hardlink {member} -> {target}: the target is a directory; refused")]
    HardlinkToDir { member: String, target: String },
    #[error("member {0}: a parent is not a directory (or is a dangling symlink); refused")]
    NotADirectory(String),
    #[error("member {0}: {1}; refused")]
    Invalid(String, &'static str),
    #[error("member {member} has unsupported type {kind:?}; refused")]
    Unsupported { member: String, kind: char },
    #[error("not a valid tar archive: {0}")]
    Tar(String),
    #[error("the tar archive is truncated (it ends without its end-of-archive marker)")]
    Truncated,
    #[error("member {0}: the archive ends inside its data (truncated)")]
    TruncatedMember(String),
    #[error("the input is empty")]
    Empty,
    #[error("member {member}: a sparse file of {} GiB would take the layer's holes past the limit of {} GiB; refused", gib(*size), gib(*limit))]
    SparseLimit {
        member: String,
        size: u64,
        limit: u64,
    },
    #[error("member {member}: {op}: {source}")]
    Io {
        member: String,
        op: &'static str,
        source: io::Error,
    },
}

/// Bytes as GiB with one decimal, for messages.
fn gib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1u64 << 30) as f64)
}

/// Printable form of a member name (non-UTF-8 bytes escaped).
pub fn show(name: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(name))
}

fn io_err<'a>(member: &'a [u8], op: &'static str) -> impl FnOnce(Errno) -> ExtractError + 'a {
    move |e| ExtractError::Io {
        member: show(member),
        op,
        source: e.into(),
    }
}

/// Splits a member name into components relative to the layer root, refusing `..`.
pub fn split_member(name: &[u8]) -> Result<Vec<&[u8]>, ExtractError> {
    let mut out = Vec::new();
    for c in name.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(ExtractError::Escape(show(name))),
            c => out.push(c),
        }
    }
    Ok(out)
}

fn join(comps: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    for (i, c) in comps.iter().enumerate() {
        if i > 0 {
            v.push(b'/');
        }
        v.extend_from_slice(c);
    }
    v
}

/// The metadata of one member, from its header and PAX records.
#[derive(Debug, Clone)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Timespec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Counters reported after an extraction.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub entries: u64,
    pub skipped_devices: u64,
    pub skipped_xattrs: u64,
    /// owners outside the subordinate id range (user namespace extraction)
    pub unmapped_owners: u64,
}

/// Extracts members into the staging root `root` (an open directory).
pub struct Extractor {
    root: OwnedFd,
    privilege: Privilege,
    /// directories whose mode and mtime wait (bounded by the depth, see pending.rs)
    pending: PendingDirs,
    /// bytes of holes in the sparse members so far (see [`MAX_SPARSE_HOLES`])
    sparse_holes: u64,
    root_meta: Option<Meta>,
    /// sha256 of every regular file written, by (st_dev, st_ino): feeds the tree digest.
    pub contents: HashMap<(u64, u64), [u8; 32]>,
    pub stats: Stats,
    buf: Vec<u8>,
}

/// Content digests remembered for the tree digest (about 80 bytes each).
const MAX_KNOWN_CONTENTS: usize = 200_000;

/// Most bytes of holes the sparse members of one layer may expand to (16 GiB). Holes take no
/// disk, but every byte of them is still hashed at extraction (the tree digest covers file
/// contents) and again by each `fsck`, and is read as zeros by anything that copies the file
/// without SEEK_HOLE: a few KiB of archive must not buy minutes of CPU. 16 GiB stays above
/// the sparse files real images carry (preallocated databases, disk images, a `lastlog` of
/// high uids) and hashes in about ten seconds.
pub const MAX_SPARSE_HOLES: u64 = 16 << 30;

/// Symlinks followed on one path before it is a loop (the kernel's MAXSYMLINKS).
const MAX_SYMLINKS: usize = 40;

const PARENT_FLAGS: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_MAGICLINKS);

/// The opaque-directory xattr for this mode (trusted.* as root, user.* rootless / userxattr).
pub fn opaque_xattr(rootless: bool) -> &'static str {
    if rootless {
        "user.overlay.opaque"
    } else {
        "trusted.overlay.opaque"
    }
}

impl Extractor {
    /// `root` must be an empty directory opened O_RDONLY|O_DIRECTORY.
    pub fn new(root: OwnedFd, privilege: Privilege) -> Extractor {
        Extractor {
            root,
            privilege,
            pending: PendingDirs::default(),
            sparse_holes: 0,
            root_meta: None,
            contents: HashMap::new(),
            stats: Stats::default(),
            buf: vec![0u8; 1 << 20],
        }
    }

    /// Not real root: devices are skipped and overlay metadata uses `user.overlay.*`.
    fn rootless(&self) -> bool {
        self.privilege != Privilege::Root
    }

    /// Owners can be set (root, or root of a user namespace with subordinate ids).
    fn may_chown(&self) -> bool {
        self.privilege != Privilege::Unprivileged
    }

    /// Extracts every member of `ar`. Whether the archive ended with its end-of-archive marker
    /// is the caller's to check (see `TarGuard::end_seen`).
    pub fn extract_all<R: Read>(&mut self, ar: &mut tar::Archive<R>) -> Result<(), ExtractError> {
        let entries = ar.entries().map_err(|e| ExtractError::Tar(e.to_string()))?;
        for entry in entries {
            let mut entry = match entry {
                Ok(e) => e,
                // nothing parsed yet: this is not a tar stream at all
                Err(e) if self.stats.entries == 0 => {
                    return Err(ExtractError::Tar(sanitize(&e.to_string())))
                }
                Err(e) => return Err(tar_error(e)),
            };
            self.entry(&mut entry)?;
            self.stats.entries += 1;
        }
        Ok(())
    }

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<(), ExtractError> {
        use tar::EntryType as T;
        let kind = e.header().entry_type();
        if matches!(
            kind,
            T::XGlobalHeader | T::GNULongName | T::GNULongLink | T::XHeader
        ) || kind.as_byte() == b'V'
        {
            return Ok(()); // global headers and volume labels carry no file
        }
        let raw = e.path_bytes().into_owned();
        // pre-POSIX archives mark directories only by a trailing slash on a regular entry
        let kind = if matches!(kind, T::Regular | T::Continuous) && raw.ends_with(b"/") {
            T::Directory
        } else {
            kind
        };
        let comps = split_member(&raw)?;
        let meta = read_meta(e, &raw)?;
        let Some((name, parent)) = comps.split_last() else {
            return match kind {
                T::Directory => {
                    self.root_meta = Some(meta);
                    Ok(())
                }
                _ => Err(ExtractError::Invalid(
                    show(&raw),
                    "it would replace the layer root",
                )),
            };
        };
        let path = join(&comps);
        self.pending
            .leave_for(self.root.as_fd(), &path)
            .map_err(io_err(&raw, "set directory metadata"))?;
        if name.starts_with(b".wh.") {
            return self.whiteout(parent, name, &raw);
        }
        let pfd = self.open_parent(parent, &raw, true)?;
        self.pending
            .reopen(&join(parent), pfd.as_fd(), &path, self.rootless())
            .map_err(io_err(&raw, "reopen parent"))?;
        self.make(e, kind, &pfd, &comps, meta, &raw)
    }

    /// Creates the member `comps` (its last component, in its parent `pfd`) by type.
    fn make<R: Read>(
        &mut self,
        e: &mut tar::Entry<'_, R>,
        kind: tar::EntryType,
        pfd: &OwnedFd,
        comps: &[&[u8]],
        meta: Meta,
        raw: &[u8],
    ) -> Result<(), ExtractError> {
        use tar::EntryType as T;
        let name = comps.last().copied().unwrap_or_default();
        let link = |e: &tar::Entry<'_, R>| {
            e.link_name_bytes()
                .map(|t| t.into_owned())
                .unwrap_or_default()
        };
        match kind {
            T::Regular | T::Continuous | T::GNUSparse => self.file(pfd, name, e, meta, raw),
            T::Directory => self.dir(pfd, name, meta, comps, raw),
            T::Symlink => self.symlink(pfd, name, &link(e), meta, raw),
            T::Link => self.hardlink(pfd, name, &link(e), comps, raw),
            T::Char | T::Block | T::Fifo => {
                let (ft, dev) = device_of(e.header(), kind);
                self.node(pfd, name, ft, dev, meta, raw)
            }
            k => Err(ExtractError::Unsupported {
                member: show(raw),
                kind: k.as_byte() as char,
            }),
        }
    }

    /// Opens the directory `comps` (relative to the root) as O_PATH, resolving beneath the root.
    /// Missing directories are created (0755) when `create` is set.
    fn open_parent(
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
    fn unlock_path(&mut self, comps: &[&[u8]], member: &[u8]) -> Result<(), ExtractError> {
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

    /// Removes whatever holds `name` in `pfd` (the later entry wins).
    fn clear(&self, pfd: &OwnedFd, name: &[u8], member: &[u8]) -> Result<(), ExtractError> {
        crate::util::remove_at(pfd, name).map_err(|e| ExtractError::Io {
            member: show(member),
            op: "replace",
            source: e,
        })
    }

    fn file<R: Read>(
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

    fn dir(
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

    fn symlink(
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

    fn hardlink(
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

    fn node(
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

    /// `.wh..wh..opq` marks the parent opaque; `.wh.NAME` becomes an overlayfs whiteout NAME.
    fn whiteout(
        &mut self,
        parent: &[&[u8]],
        name: &[u8],
        member: &[u8],
    ) -> Result<(), ExtractError> {
        let pfd = self.open_parent(parent, member, true)?;
        let mut path = join(parent);
        path.extend_from_slice(if path.is_empty() { &b""[..] } else { &b"/"[..] });
        path.extend_from_slice(name);
        self.pending
            .reopen(&join(parent), pfd.as_fd(), &path, self.rootless())
            .map_err(io_err(member, "reopen parent"))?;
        if name == b".wh..wh..opq" {
            let d = open_dir(&pfd, member)?;
            return set_xattr_fd(d.as_fd(), opaque_xattr(self.rootless()).as_bytes(), b"y")
                .map_err(io_err(member, "set opaque xattr"));
        }
        let target = &name[4..];
        if target.is_empty() || target == b"." || target == b".." {
            return Err(ExtractError::Invalid(
                show(member),
                "not a valid whiteout name",
            ));
        }
        // a whiteout hides lower layers only: a same-layer entry already shadows them
        match rustix::fs::statat(&pfd, target, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => {
                if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                    let fd = rustix::fs::openat(
                        &pfd,
                        target,
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(io_err(member, "open directory"))?;
                    set_xattr_fd(fd.as_fd(), opaque_xattr(self.rootless()).as_bytes(), b"y")
                        .map_err(io_err(member, "set opaque xattr"))?;
                }
                return Ok(());
            }
            Err(Errno::NOENT) => {}
            Err(e) => return Err(io_err(member, "stat")(e)),
        }
        match rustix::fs::mknodat(&pfd, target, FileType::CharacterDevice, Mode::empty(), 0) {
            Ok(()) => Ok(()),
            Err(Errno::PERM) if self.rootless() => self.xattr_whiteout(&pfd, target, member),
            Err(e) => Err(io_err(member, "mknod whiteout")(e)),
        }
    }

    /// Rootless fallback where a 0/0 device cannot be made: a zero-size file with
    /// `user.overlay.whiteout`, its parent marked `user.overlay.opaque=x` (overlayfs >= 6.7).
    fn xattr_whiteout(
        &mut self,
        pfd: &OwnedFd,
        target: &[u8],
        member: &[u8],
    ) -> Result<(), ExtractError> {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(pfd, target, flags, Mode::from_raw_mode(0o644))
            .map_err(io_err(member, "create whiteout"))?;
        set_xattr_fd(fd.as_fd(), b"user.overlay.whiteout", b"")
            .map_err(io_err(member, "set whiteout xattr"))?;
        let st = rustix::fs::fstat(&fd).map_err(io_err(member, "fstat"))?;
        self.contents
            .insert((st.st_dev, st.st_ino), Sha256::digest(b"").into());
        let d = open_dir(pfd, member)?;
        let mut cur = [0u8; 8];
        let is_y = matches!(rustix::fs::fgetxattr(&d, "user.overlay.opaque", &mut cur[..]), Ok(1) if cur[0] == b'y');
        if !is_y {
            set_xattr_fd(d.as_fd(), b"user.overlay.opaque", b"x")
                .map_err(io_err(member, "set opaque xattr"))?;
        }
        Ok(())
    }

    /// Owner, mode, xattrs and (unless `is_dir`) mtime, on an open fd of what was just made.
    fn apply_fd(
        &mut self,
        fd: BorrowedFd<'_>,
        meta: &Meta,
        member: &[u8],
        with_times: bool,
    ) -> Result<(), ExtractError> {
        if self.may_chown() {
            let r = rustix::fs::fchown(
                fd,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
            );
            self.chown_result(r, member)?;
        }
        // after chown, which clears set-id bits and security.capability; xattrs before chmod,
        // since user.* needs write access to the inode (mode 0000 would refuse its owner)
        for (n, v) in &meta.xattrs {
            if !self.xattr_allowed(n) {
                continue;
            }
            if let Err(e) = set_xattr_fd(fd, n, v) {
                self.xattr_failed(n, e, member)?;
            }
        }
        rustix::fs::fchmod(fd, Mode::from_raw_mode(meta.mode & 0o7777))
            .map_err(io_err(member, "chmod"))?;
        if with_times {
            let ts = Timestamps {
                last_access: meta.mtime,
                last_modification: meta.mtime,
            };
            rustix::fs::futimens(fd, &ts).map_err(io_err(member, "set times"))?;
        }
        Ok(())
    }

    /// The same for objects that cannot be opened (symlinks, devices, fifos): by name.
    fn apply_at(
        &mut self,
        pfd: &OwnedFd,
        name: &[u8],
        meta: &Meta,
        member: &[u8],
        chmod: bool,
    ) -> Result<(), ExtractError> {
        if self.may_chown() {
            let r = rustix::fs::chownat(
                pfd,
                name,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            );
            self.chown_result(r, member)?;
        }
        if chmod {
            // not a symlink (we just made it with mknodat), so following is moot
            rustix::fs::chmodat(
                pfd,
                name,
                Mode::from_raw_mode(meta.mode & 0o7777),
                AtFlags::empty(),
            )
            .map_err(io_err(member, "chmod"))?;
        }
        if !meta.xattrs.is_empty() {
            let mut p =
                format!("/proc/self/fd/{}/", std::os::fd::AsRawFd::as_raw_fd(pfd)).into_bytes();
            p.extend_from_slice(name);
            for (n, v) in &meta.xattrs {
                if !self.xattr_allowed(n) {
                    continue;
                }
                if let Err(e) =
                    rustix::fs::lsetxattr(p.as_slice(), n.as_slice(), v, XattrFlags::empty())
                {
                    self.xattr_failed(n, e, member)?;
                }
            }
        }
        let ts = Timestamps {
            last_access: meta.mtime,
            last_modification: meta.mtime,
        };
        rustix::fs::utimensat(pfd, name, &ts, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(io_err(member, "set times"))
    }

    /// In a user namespace an owner outside the subordinate range cannot be set (EINVAL): the
    /// entry keeps the namespace root (the user) as owner and is counted.
    fn chown_result(&mut self, r: Result<(), Errno>, member: &[u8]) -> Result<(), ExtractError> {
        match r {
            Ok(()) => Ok(()),
            Err(Errno::INVAL) if self.privilege == Privilege::UserNs => {
                self.stats.unmapped_owners += 1;
                Ok(())
            }
            Err(e) => Err(io_err(member, "chown")(e)),
        }
    }

    /// Overlay metadata from the archive would let a layer forge whiteouts or redirects: dropped.
    /// Without privileges only `user.*` can be written (and `security.capability` by the root
    /// of a user namespace, which the kernel stores as a namespaced v3 capability).
    fn xattr_allowed(&mut self, name: &[u8]) -> bool {
        if name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.") {
            return false;
        }
        let ok = match self.privilege {
            Privilege::Root => true,
            Privilege::UserNs => name.starts_with(b"user.") || name == b"security.capability",
            Privilege::Unprivileged => name.starts_with(b"user."),
        };
        if !ok {
            self.stats.skipped_xattrs += 1;
        }
        ok
    }

    fn xattr_failed(&mut self, name: &[u8], e: Errno, member: &[u8]) -> Result<(), ExtractError> {
        match e {
            // the filesystem or the object type cannot hold it (e.g. user.* on a symlink)
            Errno::NOTSUP | Errno::PERM => {
                tracing::debug!(
                    "member {}: xattr {} not kept: {e}",
                    show(member),
                    show(name)
                );
                self.stats.skipped_xattrs += 1;
                Ok(())
            }
            e => Err(ExtractError::Io {
                member: show(member),
                op: "set xattr",
                source: e.into(),
            }),
        }
    }

    /// Applies the deferred directory modes and mtimes (deepest first) and the root's metadata.
    pub fn finish(&mut self) -> Result<(), ExtractError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        self.pending
            .finish(self.root.as_fd())
            .map_err(|(path, e)| io_err(&path, "set directory metadata")(e))?;
        let root = rustix::fs::openat(&self.root, ".", flags, Mode::empty())
            .map_err(io_err(b".", "open root"))?;
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let meta = self.root_meta.take().unwrap_or(Meta {
            mode: 0o755,
            uid: rustix::process::geteuid().as_raw(),
            gid: rustix::process::getegid().as_raw(),
            mtime: zero,
            xattrs: Vec::new(),
        });
        self.apply_fd(root.as_fd(), &meta, b".", true)
    }
}

/// The node type and device number of a character, block or FIFO member.
fn device_of(h: &tar::Header, kind: tar::EntryType) -> (FileType, u64) {
    let dev = || {
        let maj = h.device_major().ok().flatten().unwrap_or(0);
        let min = h.device_minor().ok().flatten().unwrap_or(0);
        rustix::fs::makedev(maj, min)
    };
    match kind {
        tar::EntryType::Char => (FileType::CharacterDevice, dev()),
        tar::EntryType::Block => (FileType::BlockDevice, dev()),
        _ => (FileType::Fifo, 0),
    }
}

/// True when every byte is zero (folded per 64 bytes, which vectorises).
fn all_zero(b: &[u8]) -> bool {
    let mut it = b.chunks_exact(64);
    let whole = it.by_ref().all(|c| c.iter().fold(0u8, |a, x| a | x) == 0);
    whole && it.remainder().iter().all(|x| *x == 0)
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

fn open_dir(pfd: &OwnedFd, member: &[u8]) -> Result<OwnedFd, ExtractError> {
    rustix::fs::openat(
        pfd,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io_err(member, "open directory"))
}

fn set_xattr_fd(fd: BorrowedFd<'_>, name: &[u8], value: &[u8]) -> Result<(), Errno> {
    rustix::fs::fsetxattr(fd, name, value, XattrFlags::empty())
}

/// A tar-crate message made printable and short (it may quote raw header bytes).
fn sanitize(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| {
            if c.is_control() || c == '\u{fffd}' {
                '?'
            } else {
                c
            }
        })
        .collect();
    let s = if s.contains("cksum") || s.contains("checksum") || s.contains("numeric field") {
        "a header is not a tar header (bad checksum or numeric field)".to_string()
    } else if s.contains("failed to read entire block") {
        "too short for a tar header".to_string()
    } else {
        s
    };
    s.chars().take(160).collect()
}

fn tar_error(e: io::Error) -> ExtractError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => ExtractError::Truncated,
        _ => {
            let s = e.to_string();
            if s.contains("failed to read entire block") || s.contains("unexpected EOF") {
                ExtractError::Truncated
            } else {
                ExtractError::Tar(sanitize(&s))
            }
        }
    }
}

/// Mode, numeric owner (PAX uid/gid applied by the tar crate), mtime (PAX `mtime` wins, with
/// its fraction) and `SCHILY.xattr.*` records.
fn read_meta<R: Read>(e: &mut tar::Entry<'_, R>, member: &[u8]) -> Result<Meta, ExtractError> {
    let h = e.header();
    let bad = |what: &'static str| ExtractError::Invalid(show(member), what);
    let mode = h.mode().map_err(|_| bad("bad mode field"))?;
    let uid = u32::try_from(h.uid().map_err(|_| bad("bad uid field"))?)
        .map_err(|_| bad("uid out of range"))?;
    let gid = u32::try_from(h.gid().map_err(|_| bad("bad gid field"))?)
        .map_err(|_| bad("gid out of range"))?;
    let mut mtime = Timespec {
        tv_sec: h.mtime().unwrap_or(0).min(i64::MAX as u64) as i64,
        tv_nsec: 0,
    };
    let mut xattrs = Vec::new();
    if let Some(exts) = e.pax_extensions().map_err(tar_error)? {
        for ext in exts {
            let ext = ext.map_err(tar_error)?;
            let key = ext.key_bytes();
            if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                xattrs.push((name.to_vec(), ext.value_bytes().to_vec()));
            } else if key == b"mtime" {
                if let Some(t) = parse_pax_time(ext.value_bytes()) {
                    mtime = t;
                }
            } else if key.starts_with(b"GNU.sparse.") {
                // the tar crate would store the sparse map and data as the file, under a
                // GNUSparseFile.N/ name: refuse rather than extract something else
                return Err(bad("a PAX-format sparse member (GNU.sparse.*) is not supported: re-create the archive with tar --format=gnu"));
            }
        }
    }
    Ok(Meta {
        mode,
        uid,
        gid,
        mtime,
        xattrs,
    })
}

/// A PAX time: `[-]SECONDS[.FRACTION]`.
fn parse_pax_time(v: &[u8]) -> Option<Timespec> {
    let s = std::str::from_utf8(v).ok()?.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let mut nsec: i64 = 0;
    if !frac.is_empty() {
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        nsec = digits.parse().ok()?;
    }
    if neg {
        if nsec > 0 {
            Some(Timespec {
                tv_sec: -secs - 1,
                tv_nsec: 1_000_000_000 - nsec,
            })
        } else {
            Some(Timespec {
                tv_sec: -secs,
                tv_nsec: 0,
            })
        }
    } else {
        Some(Timespec {
            tv_sec: secs,
            tv_nsec: nsec,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_are_relative_and_dotdot_is_refused() {
        assert_eq!(
            split_member(b"/etc//passwd").unwrap(),
            vec![&b"etc"[..], b"passwd"]
        );
        assert_eq!(split_member(b"./a/./b/").unwrap(), vec![&b"a"[..], b"b"]);
        assert!(split_member(b"./").unwrap().is_empty());
        assert!(matches!(
            split_member(b"../x"),
            Err(ExtractError::Escape(_))
        ));
        assert!(matches!(
            split_member(b"a/../../x"),
            Err(ExtractError::Escape(_))
        ));
        assert!(matches!(
            split_member(b"a/.."),
            Err(ExtractError::Escape(_))
        ));
    }

    #[test]
    fn xattr_whiteouts_have_the_overlayfs_format() {
        // the rootless fallback where mknod(0/0) is refused: a zero-size file marked
        // user.overlay.whiteout in a directory marked user.overlay.opaque=x (overlayfs.rst)
        let dir = std::env::temp_dir().join(format!(
            "rbuild-xw-{}-{}",
            std::process::id(),
            crate::util::nonce()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let fd = rustix::fs::open(&dir, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let mut ex = Extractor::new(fd.try_clone().unwrap(), Privilege::Unprivileged);
        ex.xattr_whiteout(&fd, b"gone", b".wh.gone").unwrap();
        let p = dir.join("gone");
        let md = std::fs::symlink_metadata(&p).unwrap();
        assert!(md.is_file() && md.len() == 0);
        assert!(rustix::fs::lgetxattr(&p, "user.overlay.whiteout", &mut [0u8; 8][..]).is_ok());
        let mut v = [0u8; 8];
        let n = rustix::fs::lgetxattr(&dir, "user.overlay.opaque", &mut v[..]).unwrap();
        assert_eq!(&v[..n], b"x");
        // an opaque directory stays opaque ("y" is not weakened to "x")
        rustix::fs::lsetxattr(&dir, "user.overlay.opaque", b"y", XattrFlags::empty()).unwrap();
        ex.xattr_whiteout(&fd, b"gone2", b".wh.gone2").unwrap();
        let n = rustix::fs::lgetxattr(&dir, "user.overlay.opaque", &mut v[..]).unwrap();
        assert_eq!(&v[..n], b"y");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pax_times_keep_their_fraction() {
        let t = parse_pax_time(b"1700000000.25").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1_700_000_000, 250_000_000));
        let t = parse_pax_time(b"-1.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (-2, 500_000_000));
        assert!(parse_pax_time(b"x").is_none());
    }
}
