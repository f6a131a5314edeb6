//! Paths inside the container's root, resolved by the kernel without ever leaving it (openat2
//! RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS from a descriptor of the root): mount targets made
//! to measure and small configuration files read with a size cap ([`MAX_FILE`]). Used after
//! pivot_root, and by `rrun exec` once it joined the container's mount namespace, when "/" is
//! the container's root. Kernel docs: openat2(2), mkdirat(2), unlinkat(2), fstat(2), statfs(2).

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::error::{user, Error, Result};

/// The most rrun reads of a file of the image (/etc/passwd, /etc/group): 1 MiB. A bigger one
/// is refused rather than read without bound.
pub const MAX_FILE: u64 = 1 << 20;

/// What a mount target must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    /// Anything but a directory (a file is bind-mounted over a regular file, FIFO, device...).
    NonDir,
}

/// A descriptor of the container's root directory.
pub struct Root {
    fd: OwnedFd,
}

fn sys_err(what: String, e: Errno) -> Error {
    Error::Sys {
        what,
        source: e.into(),
    }
}

/// A mount point that could not be made at `path` (`what`, if any, says for what). EOVERFLOW: the
/// folder to make it in is the image's, of a user or group the container's user namespace
/// does not map, and overlayfs copies up no such file (fs/overlayfs/copy_up.c; a layer rbuild
/// added as another group, or before it owned its staging folder below a set-group-ID one).
fn create_err(what: Option<&str>, path: &str, e: Errno) -> Error {
    let what = what.map(|w| format!("{w}: ")).unwrap_or_default();
    match e {
        Errno::OVERFLOW => user(format!(
            "{what}cannot create {path} in the container: its folder in the image belongs to a user or group the container does not map (it shows as nobody or nogroup inside), and overlayfs copies up no such file: remove the image and its layers (`rbuild image rm`, `rbuild layer rm`) and add them again as the user and group that run rrun"
        )),
        e => sys_err(format!("{what}create mount point {path} in the container"), e),
    }
}

/// The path relative to the root, without empty and "." components.
fn relative(path: &str) -> String {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

fn describe(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Unknown => "of an unknown type",
    }
}

impl Root {
    /// The current root directory ("/"), which must be the container's.
    pub fn open() -> Result<Root> {
        let fd = rfs::open(
            "/",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| sys_err("open the container's root".into(), e))?;
        Ok(Root { fd })
    }

    /// openat2 of `path` (absolute inside the container) with `flags`, never leaving the root.
    pub fn resolve(&self, path: &str, flags: OFlags) -> rustix::io::Result<OwnedFd> {
        let rel = relative(path);
        let rel = if rel.is_empty() { ".".to_string() } else { rel };
        rfs::openat2(
            self.fd.as_fd(),
            rel.as_str(),
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
    }

    /// The root's own descriptor.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// `mkdir -p path` (mode 0755) inside the root; returns an O_PATH descriptor of the
    /// directory. `what` names the option the path came from, for the error line.
    pub fn dir(&self, path: &str, what: &str) -> Result<OwnedFd> {
        let mut fd = self
            .resolve("/", OFlags::PATH | OFlags::DIRECTORY)
            .map_err(|e| sys_err("open the container's root".into(), e))?;
        let mut cur = String::new();
        for comp in relative(path).split('/').filter(|c| !c.is_empty()) {
            cur.push('/');
            cur.push_str(comp);
            fd = match self.resolve(&cur, OFlags::PATH | OFlags::DIRECTORY) {
                Ok(f) => f,
                Err(Errno::NOENT) => {
                    match rfs::mkdirat(&fd, comp, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => {
                            return Err(sys_err(
                                format!("{what}: create directory {cur} in the container"),
                                e,
                            ))
                        }
                    }
                    match self.resolve(&cur, OFlags::PATH | OFlags::DIRECTORY) {
                        Ok(f) => f,
                        Err(Errno::NOENT) => return Err(user(format!("{what}: {cur} is a dangling symbolic link in the container: use another path"))),
                        Err(e) => return Err(sys_err(format!("{what}: open {cur} in the container"), e)),
                    }
                }
                Err(Errno::NOTDIR) => {
                    return Err(user(format!(
                        "{what}: {cur} is not a directory in the container: use another path"
                    )));
                }
                Err(e) => return Err(sys_err(format!("{what}: open {cur} in the container"), e)),
            };
        }
        Ok(fd)
    }

    /// An O_PATH descriptor of the mount target `path` (symbolic links followed inside the
    /// root), created when missing as a directory or an empty file (0644) per `kind`; an
    /// existing target of the other kind is refused with one line.
    pub fn mount_target(&self, path: &str, kind: Kind, what: &str) -> Result<OwnedFd> {
        let rel = relative(path);
        let Some((parent, name)) = rel
            .rsplit_once('/')
            .or(Some(("", rel.as_str())))
            .filter(|(_, n)| !n.is_empty())
        else {
            return Err(user(format!(
                "{what}: / cannot be a mount target: choose a directory below it"
            )));
        };
        let parent_fd = self.dir(&format!("/{parent}"), what)?;
        let fd = match self.resolve(path, OFlags::PATH) {
            Ok(f) => f,
            Err(Errno::NOENT) => {
                let made = match kind {
                    Kind::Dir => rfs::mkdirat(&parent_fd, name, Mode::from_raw_mode(0o755)),
                    Kind::NonDir => rfs::openat(
                        &parent_fd,
                        name,
                        OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::WRONLY
                            | OFlags::NOFOLLOW
                            | OFlags::NONBLOCK
                            | OFlags::NOCTTY
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o644),
                    )
                    .map(drop),
                };
                match made {
                    Ok(()) => {}
                    Err(Errno::EXIST) => return Err(user(format!("{what}: {path} is a dangling symbolic link in the container: use another path"))),
                    Err(e) => return Err(create_err(Some(what), path, e)),
                }
                self.resolve(path, OFlags::PATH)
                    .map_err(|e| sys_err(format!("{what}: open {path} in the container"), e))?
            }
            Err(Errno::NOTDIR) => {
                return Err(user(format!(
                "{what}: a parent of {path} is not a directory in the container: use another path"
            )))
            }
            Err(e) => return Err(sys_err(format!("{what}: open {path} in the container"), e)),
        };
        let ft = FileType::from_raw_mode(
            rfs::fstat(&fd)
                .map_err(|e| sys_err(format!("{what}: stat {path} in the container"), e))?
                .st_mode,
        );
        match (kind, ft) {
            (Kind::Dir, FileType::Directory) => Ok(fd),
            (Kind::Dir, other) => Err(user(format!("{what}: {path} is {} in the container, not a directory: use another path", describe(other)))),
            (Kind::NonDir, FileType::Directory) => Err(user(format!("{what}: {path} is a directory in the container but the source is a file: use another path"))),
            (Kind::NonDir, _) => Ok(fd),
        }
    }

    /// An O_PATH descriptor of `dir/name` where the container's own file will be mounted:
    /// a symbolic link there is replaced by an empty file, a missing file is created, anything
    /// but a directory is mounted over as it is (a FIFO is never opened).
    pub fn file_target_replacing_links(&self, dir: &str, name: &str) -> Result<OwnedFd> {
        let what = format!("{dir}/{name}");
        let dfd = self.dir(dir, &what)?;
        if let Ok(st) = rfs::statat(&dfd, name, AtFlags::SYMLINK_NOFOLLOW) {
            if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
                rfs::unlinkat(&dfd, name, AtFlags::empty())
                    .map_err(|e| sys_err(format!("replace the symbolic link {what}"), e))?;
            }
        }
        let flags = OFlags::CREATE
            | OFlags::EXCL
            | OFlags::WRONLY
            | OFlags::NOFOLLOW
            | OFlags::NONBLOCK
            | OFlags::NOCTTY
            | OFlags::CLOEXEC;
        match rfs::openat(&dfd, name, flags, Mode::from_raw_mode(0o644)) {
            Ok(_) | Err(Errno::EXIST) => {}
            Err(e) => return Err(create_err(None, &what, e)),
        }
        let fd = rfs::openat(
            &dfd,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| sys_err(format!("open {what}"), e))?;
        let ft = FileType::from_raw_mode(
            rfs::fstat(&fd)
                .map_err(|e| sys_err(format!("stat {what}"), e))?
                .st_mode,
        );
        if matches!(ft, FileType::Directory | FileType::Symlink) {
            return Err(user(format!(
                "the image's {what} is {}: rrun puts the container's own file there, fix the image",
                describe(ft)
            )));
        }
        Ok(fd)
    }

    /// The contents of the regular file `path` (symbolic links followed inside the root), at
    /// most [`MAX_FILE`] bytes; None when it does not exist. Opened non-blocking, so a FIFO
    /// never hangs rrun; anything but a regular file is refused with one line.
    pub fn read_small(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let fd = match self.resolve(path, OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY) {
            Ok(f) => f,
            Err(Errno::NOENT | Errno::NOTDIR) => return Ok(None),
            Err(e) => return Err(sys_err(format!("open the container's {path}"), e)),
        };
        let st = rfs::fstat(&fd).map_err(|e| sys_err(format!("stat the container's {path}"), e))?;
        let ft = FileType::from_raw_mode(st.st_mode);
        if ft != FileType::RegularFile {
            return Err(user(format!(
                "the container's {path} is {}, not a regular file",
                describe(ft)
            )));
        }
        let too_big = || {
            user(format!(
                "the container's {path} is larger than {} KiB, the most rrun reads",
                MAX_FILE / 1024
            ))
        };
        if st.st_size as u64 > MAX_FILE {
            return Err(too_big());
        }
        let mut data = Vec::with_capacity(st.st_size as usize);
        std::fs::File::from(fd)
            .take(MAX_FILE + 1)
            .read_to_end(&mut data)
            .map_err(|e| Error::Sys {
                what: format!("read the container's {path}"),
                source: e,
            })?;
        if data.len() as u64 > MAX_FILE {
            return Err(too_big());
        }
        Ok(Some(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_drop_empty_and_dot_components() {
        assert_eq!(relative("/"), "");
        assert_eq!(relative("//etc/./hosts/"), "etc/hosts");
        assert_eq!(relative("/a/b"), "a/b");
    }
}
