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
//!
//! The work is split by what it touches: [`member`] reads a member's name and metadata,
//! [`walk`] finds its parent beneath the root, [`nodes`] makes it, [`attrs`] gives it its
//! owner, mode and xattrs, [`whiteout`] turns OCI whiteouts into overlayfs ones; this module
//! walks the archive and hands each member on.

mod attrs;
mod error;
mod member;
mod nodes;
mod walk;
mod whiteout;

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{Mode, OFlags, Timespec};

use crate::pending::PendingDirs;
use crate::userns::Privilege;

pub use error::{show, ExtractError};
pub use member::split_member;
pub use nodes::MAX_SPARSE_HOLES;
pub use whiteout::opaque_xattr;

use error::{io_err, sanitize, tar_error};
use member::{device_of, join, read_meta, Meta};

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
    /// the record of the stream for export (see tarsplit.rs), when one is kept
    split: Option<crate::tarsplit::SplitHandle>,
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
            split: None,
        }
    }

    /// Tells `split` where regular files' payloads lie and which names are replaced.
    pub fn record_into(&mut self, split: crate::tarsplit::SplitHandle) {
        self.split = Some(split);
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
        if let Some(s) = &self.split {
            if !name.starts_with(b".wh.") {
                s.member(&path, kind == T::Directory);
            }
        }
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
            T::Regular | T::Continuous | T::GNUSparse => {
                // a sparse member's data on the archive is not the file's: it stays in the record
                if let (Some(s), false) = (&self.split, kind == T::GNUSparse) {
                    s.payload(e.raw_file_position(), e.size(), &join(comps));
                }
                self.file(pfd, name, e, meta, raw)
            }
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
