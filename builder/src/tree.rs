//! The tree digest: sha256 of a canonical listing of an extracted layer (paths sorted bytewise,
//! type, mode, owner, device, mtime, xattrs, symlink target, sha256 of contents), recorded at
//! extraction and recomputed by `fsck`. Kernel interfaces: lstat(2), readlink(2), llistxattr(2),
//! lgetxattr(2), read(2); nothing is followed through a symlink.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use sha2::{Digest as _, Sha256};

/// Computes the tree digest of `root` (hex). `known` maps (st_dev, st_ino) of regular files to
/// the sha256 of their contents already computed while writing them; others are read.
pub fn tree_digest(root: &Path, known: &HashMap<(u64, u64), [u8; 32]>) -> io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    record(&mut h, root, b".", known, &mut buf)?;
    walk(&mut h, root, &mut Vec::new(), known, &mut buf)?;
    Ok(store::digest::hex(&h.finalize()))
}

fn walk(
    h: &mut Sha256,
    dir: &Path,
    rel: &mut Vec<u8>,
    known: &HashMap<(u64, u64), [u8; 32]>,
    buf: &mut [u8],
) -> io::Result<()> {
    let _access = Access::grant(dir, 0o700)?;
    let mut names: Vec<Vec<u8>> = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name().as_bytes().to_vec()))
        .collect::<io::Result<_>>()?;
    names.sort();
    for n in names {
        let p = dir.join(std::ffi::OsStr::from_bytes(&n));
        let len = rel.len();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(&n);
        let is_dir = record(h, &p, rel, known, buf)?;
        if is_dir {
            walk(h, &p, rel, known, buf)?;
        }
        rel.truncate(len);
    }
    Ok(())
}

fn field(h: &mut Sha256, b: &[u8]) {
    h.update((b.len() as u64).to_le_bytes());
    h.update(b);
}

/// Hashes one entry; returns whether it is a directory to descend into.
fn record(
    h: &mut Sha256,
    p: &Path,
    rel: &[u8],
    known: &HashMap<(u64, u64), [u8; 32]>,
    buf: &mut [u8],
) -> io::Result<bool> {
    let md = fs::symlink_metadata(p)?;
    let ft = md.file_type();
    // xattrs and contents of a mode-0000 file of our own need read access (rootless layers)
    let _access = if ft.is_file() || ft.is_dir() {
        Access::grant(p, 0o400)?
    } else {
        None
    };
    let kind: u8 = if ft.is_dir() {
        b'd'
    } else if ft.is_file() {
        b'f'
    } else if ft.is_symlink() {
        b'l'
    } else if ft.is_char_device() {
        b'c'
    } else if ft.is_block_device() {
        b'b'
    } else if ft.is_fifo() {
        b'p'
    } else {
        b's'
    };
    field(h, rel);
    h.update([kind]);
    h.update(md.mode().to_le_bytes());
    h.update(md.uid().to_le_bytes());
    h.update(md.gid().to_le_bytes());
    h.update(md.rdev().to_le_bytes());
    h.update(md.mtime().to_le_bytes());
    h.update(md.mtime_nsec().to_le_bytes());
    match kind {
        b'f' => {
            h.update(md.size().to_le_bytes());
            let digest = match known.get(&(md.dev(), md.ino())) {
                Some(d) => *d,
                None => content_digest(p, buf)?,
            };
            h.update(digest);
        }
        b'l' => field(h, fs::read_link(p)?.as_os_str().as_bytes()),
        _ => {}
    }
    let mut names: Vec<Vec<u8>> = crate::xattr::list(p, crate::xattr::Link::NoFollow)?;
    names.sort();
    h.update((names.len() as u64).to_le_bytes());
    for n in names {
        field(h, &n);
        field(h, &crate::xattr::get(p, &n, crate::xattr::Link::NoFollow)?);
    }
    Ok(kind == b'd')
}

/// sha256 of a file's contents. Holes (lseek(2) SEEK_DATA/SEEK_HOLE) are hashed as zeros
/// without being read, so a sparse file costs its hashing, not a read of gigabytes of zeros.
fn content_digest(p: &Path, buf: &mut [u8]) -> io::Result<[u8; 32]> {
    use rustix::fs::SeekFrom;
    use std::os::unix::fs::FileExt;
    static ZEROS: [u8; 1 << 16] = [0; 1 << 16];
    let f = fs::File::open(p)?;
    let size = f.metadata()?.len();
    let mut c = Sha256::new();
    let seek = |whence| match rustix::fs::seek(&f, whence) {
        Ok(at) => Ok(at.min(size)),
        Err(rustix::io::Errno::NXIO) => Ok(size), // no data (or no hole) after this point
        Err(e) => Err(io::Error::from(e)),
    };
    let mut pos = 0u64;
    while pos < size {
        let data = seek(SeekFrom::Data(pos))?;
        let mut zeros = data - pos;
        while zeros > 0 {
            let n = zeros.min(ZEROS.len() as u64);
            c.update(&ZEROS[..n as usize]);
            zeros -= n;
        }
        // a hole reported at the data offset itself would stall: read the rest instead
        let hole = match seek(SeekFrom::Hole(data))? {
            h if h > data => h,
            _ => size,
        };
        let mut at = data;
        while at < hole {
            let want = (hole - at).min(buf.len() as u64) as usize;
            let n = f.read_at(&mut buf[..want], at)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{}: changed while read", p.display()),
                ));
            }
            c.update(&buf[..n]);
            at += n as u64;
        }
        pos = hole.max(data);
    }
    Ok(c.finalize().into())
}

/// Without privileges the owner of a layer's files may lack access to them (a rootless layer
/// keeps modes such as 0000 or 0500): grants the owner `bits` while held, then restores the
/// exact mode (chmod(2) touches ctime only; mtime and the digest inputs stay as they were).
struct Access {
    path: std::path::PathBuf,
    mode: u32,
}

impl Access {
    fn grant(p: &Path, bits: u32) -> io::Result<Option<Access>> {
        let euid = rustix::process::geteuid();
        if euid.is_root() {
            return Ok(None);
        }
        let md = fs::symlink_metadata(p)?;
        let mode = md.mode() & 0o7777;
        if md.uid() != euid.as_raw() || mode & bits == bits {
            return Ok(None);
        }
        fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(mode | bits))?;
        Ok(Some(Access {
            path: p.to_path_buf(),
            mode,
        }))
    }
}

impl Drop for Access {
    fn drop(&mut self) {
        let _ = fs::set_permissions(
            &self.path,
            std::os::unix::fs::PermissionsExt::from_mode(self.mode),
        );
    }
}
