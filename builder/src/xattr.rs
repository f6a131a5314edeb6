//! Reading extended attributes whole: the list of names and one value, growing the buffer on
//! ERANGE up to 16 MiB. Kernel interfaces: listxattr(2)/llistxattr(2), getxattr(2)/
//! lgetxattr(2) (xattr(7)).

use std::io;
use std::path::Path;

use rustix::io::Errno;

/// Whether a symbolic link at the path itself is followed.
#[derive(Clone, Copy)]
pub enum Link {
    /// To what it names: for `/proc/self/fd/N`, the inode the descriptor holds.
    Follow,
    /// The link itself, as lstat(2).
    NoFollow,
}

/// Names of the xattrs of `p`; none where the filesystem has no xattrs (ENOTSUP).
pub fn list(p: &Path, link: Link) -> io::Result<Vec<Vec<u8>>> {
    let mut size = 1024usize;
    loop {
        let mut v = vec![0u8; size];
        let r = match link {
            Link::Follow => rustix::fs::listxattr(p, &mut v[..]),
            Link::NoFollow => rustix::fs::llistxattr(p, &mut v[..]),
        };
        match r {
            Ok(n) => {
                v.truncate(n);
                return Ok(v
                    .split(|b| *b == 0)
                    .filter(|s| !s.is_empty())
                    .map(<[u8]>::to_vec)
                    .collect());
            }
            Err(Errno::RANGE) if size < (1 << 24) => size *= 4,
            Err(Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
    }
}

/// The value of xattr `name` of `p`.
pub fn get(p: &Path, name: &[u8], link: Link) -> io::Result<Vec<u8>> {
    let mut size = 256usize;
    loop {
        let mut v = vec![0u8; size];
        let r = match link {
            Link::Follow => rustix::fs::getxattr(p, name, &mut v[..]),
            Link::NoFollow => rustix::fs::lgetxattr(p, name, &mut v[..]),
        };
        match r {
            Ok(n) => {
                v.truncate(n);
                return Ok(v);
            }
            Err(Errno::RANGE) if size < (1 << 24) => size *= 4,
            Err(e) => return Err(e.into()),
        }
    }
}
