//! Where an image's blobs come from when it is read from disk: an OCI layout folder
//! (`blobs/<alg>/<hex>`) or a tar archive (a docker-archive or an OCI layout in a tar), and
//! what every reader of blobs shares (the source trait). Kernel interfaces: openat2(2)
//! RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS inside the layout folder, fstat(2), lseek(2).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};

use super::{read_limited, OciError};

/// A place blobs are read from.
pub trait BlobSource: Sync {
    /// Opens the member or blob at `path` (inside the source) for reading.
    fn open(&self, path: &str) -> Result<Box<dyn Read + Send>, OciError>;
    /// What the source is, for `layer ls` and errors (`oci:/path`, `docker-archive:/file`).
    fn describe(&self) -> String;
    /// Whether `path` exists as a regular file.
    fn has(&self, path: &str) -> bool;

    /// The whole of `path` when it holds at most `max` bytes.
    fn read_small(&self, path: &str, max: u64) -> Result<Vec<u8>, OciError> {
        let r = self.open(path)?;
        read_limited(r, max, &format!("{} in {}", path, self.describe()))
    }
}

/// The path of blob `sha256:<hex>` in an OCI layout.
pub fn blob_path(hex: &str) -> String {
    format!("blobs/sha256/{hex}")
}

/// An OCI layout folder. Every path is resolved beneath it without following symlinks, and
/// must be a regular file (a FIFO or a device there is refused, never read).
pub struct DirSource {
    root: OwnedFd,
    path: PathBuf,
}

impl DirSource {
    pub fn open(path: &Path) -> Result<DirSource, OciError> {
        let root = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| OciError::msg(format!("{}: {}", path.display(), io::Error::from(e))))?;
        Ok(DirSource {
            root,
            path: std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
        })
    }

    fn open_file(&self, rel: &str) -> io::Result<File> {
        let resolve =
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = rustix::fs::openat2(self.root.as_fd(), rel, flags, Mode::empty(), resolve)?;
        let st = rustix::fs::fstat(&fd)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(io::Error::other("not a regular file"));
        }
        Ok(File::from(fd))
    }
}

impl BlobSource for DirSource {
    fn open(&self, rel: &str) -> Result<Box<dyn Read + Send>, OciError> {
        let f = self
            .open_file(rel)
            .map_err(|e| OciError::msg(format!("{}/{rel}: {e}", self.path.display())))?;
        Ok(Box::new(f))
    }

    fn describe(&self) -> String {
        format!("oci:{}", self.path.display())
    }

    fn has(&self, rel: &str) -> bool {
        self.open_file(rel).is_ok()
    }
}

/// A tar archive read in place: its regular members' offsets are listed once, then each is
/// read with its own descriptor, seeked to the member's data.
pub struct TarSource {
    file: Arc<File>,
    path: PathBuf,
    members: HashMap<String, (u64, u64)>,
    kind: &'static str,
}

/// Most members an archive may list (a docker-archive has a few per layer).
const MAX_MEMBERS: usize = 100_000;

/// A member name as archives spell it: without `./` or `/` in front.
fn clean(name: &str) -> String {
    let mut n = name;
    loop {
        if let Some(r) = n.strip_prefix("./") {
            n = r;
        } else if let Some(r) = n.strip_prefix('/') {
            n = r;
        } else {
            return n.to_string();
        }
    }
}

impl TarSource {
    /// Lists the members of the archive `path`. `kind` names it (`docker-archive`).
    pub fn open(path: &Path) -> Result<TarSource, OciError> {
        let file = File::open(path).map_err(OciError::io(path))?;
        if !file.metadata().map_err(OciError::io(path))?.is_file() {
            return Err(OciError::msg(format!(
                "{}: not a regular file",
                path.display()
            )));
        }
        let mut members = HashMap::new();
        let mut ar = tar::Archive::new(file.try_clone().map_err(OciError::io(path))?);
        let bad = |e: io::Error| {
            OciError::msg(format!(
                "{}: not a tar archive rbuild can read: {e}",
                path.display()
            ))
        };
        for entry in ar.entries_with_seek().map_err(bad)? {
            let entry = entry.map_err(bad)?;
            if !matches!(
                entry.header().entry_type(),
                tar::EntryType::Regular | tar::EntryType::Continuous
            ) {
                continue;
            }
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            members.insert(clean(&name), (entry.raw_file_position(), entry.size()));
            if members.len() > MAX_MEMBERS {
                return Err(OciError::msg(format!(
                    "{}: more than {MAX_MEMBERS} members: not an image archive",
                    path.display()
                )));
            }
        }
        Ok(TarSource {
            file: Arc::new(file),
            path: std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
            members,
            kind: "docker-archive",
        })
    }

    /// Calls this archive an `oci-archive` (an OCI layout in a tar) in descriptions.
    pub fn as_oci_archive(mut self) -> TarSource {
        self.kind = "oci-archive";
        self
    }
}

impl BlobSource for TarSource {
    fn open(&self, name: &str) -> Result<Box<dyn Read + Send>, OciError> {
        let (off, left) = *self
            .members
            .get(&clean(name))
            .ok_or_else(|| OciError::msg(format!("{} has no member {name}", self.describe())))?;
        Ok(Box::new(Member {
            file: self.file.clone(),
            off,
            left,
        }))
    }

    fn describe(&self) -> String {
        format!("{}:{}", self.kind, self.path.display())
    }

    fn has(&self, name: &str) -> bool {
        self.members.contains_key(&clean(name))
    }
}

/// One member's data, read with pread(2) so that members can be read side by side.
struct Member {
    file: Arc<File>,
    off: u64,
    left: u64,
}

impl Read for Member {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.off)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive ends inside a member (truncated)",
            ));
        }
        self.off += n as u64;
        self.left -= n as u64;
        Ok(n)
    }
}
