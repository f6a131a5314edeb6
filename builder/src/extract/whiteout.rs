//! OCI whiteouts as overlayfs whiteouts: `.wh..wh..opq` marks its directory opaque, `.wh.NAME`
//! becomes a 0/0 character device NAME (or, rootless where mknod is refused, a zero-size file
//! with `user.overlay.whiteout`). Kernel interfaces: mknodat(2), fsetxattr(2); the formats are
//! in the kernel's Documentation/filesystems/overlayfs.rst ("whiteouts and opaque directories").

use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use sha2::{Digest as _, Sha256};

use super::attrs::set_xattr_fd;
use super::error::{io_err, show, ExtractError};
use super::member::join;
use super::walk::open_dir;
use super::Extractor;

/// The opaque-directory xattr for this mode (trusted.* as root, user.* rootless / userxattr).
pub fn opaque_xattr(rootless: bool) -> &'static str {
    if rootless {
        "user.overlay.opaque"
    } else {
        "trusted.overlay.opaque"
    }
}

impl Extractor {
    /// `.wh..wh..opq` marks the parent opaque; `.wh.NAME` becomes an overlayfs whiteout NAME.
    pub(super) fn whiteout(
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
}

#[cfg(test)]
mod tests {
    use rustix::fs::{Mode, OFlags, XattrFlags};

    use crate::extract::Extractor;
    use crate::userns::Privilege;

    #[test]
    fn xattr_whiteouts_have_the_overlayfs_format() {
        // the rootless fallback where mknod(0/0) is refused: a zero-size file marked
        // user.overlay.whiteout in a directory marked user.overlay.opaque=x (overlayfs.rst)
        let dir = std::env::temp_dir().join(format!(
            "rbuild-xw-{}-{}",
            std::process::id(),
            store::files::nonce()
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
}
