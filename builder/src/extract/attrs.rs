//! Owners, modes, extended attributes and times of what extraction made, and which of the
//! archive's xattrs may be kept at this privilege. Kernel interfaces: fchown(2)/fchownat(2),
//! fchmod(2)/fchmodat(2), fsetxattr(2)/lsetxattr(2), futimens(3)/utimensat(2)
//! AT_SYMLINK_NOFOLLOW.

use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, Gid, Mode, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;

use super::error::{io_err, show, ExtractError};
use super::member::Meta;
use super::Extractor;
use crate::userns::Privilege;

impl Extractor {
    /// Owner, mode, xattrs and (unless `is_dir`) mtime, on an open fd of what was just made.
    pub(super) fn apply_fd(
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
    pub(super) fn apply_at(
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
    pub(super) fn chown_result(
        &mut self,
        r: Result<(), Errno>,
        member: &[u8],
    ) -> Result<(), ExtractError> {
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
    pub(super) fn xattr_allowed(&mut self, name: &[u8]) -> bool {
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

    pub(super) fn xattr_failed(
        &mut self,
        name: &[u8],
        e: Errno,
        member: &[u8],
    ) -> Result<(), ExtractError> {
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
}

pub(super) fn set_xattr_fd(fd: BorrowedFd<'_>, name: &[u8], value: &[u8]) -> Result<(), Errno> {
    rustix::fs::fsetxattr(fd, name, value, XattrFlags::empty())
}
