//! A directory serialised to a deterministic tar stream (names sorted bytewise, numeric owners,
//! modes, xattrs as PAX `SCHILY.xattr.*`, hardlinks kept, mtimes clamped to SOURCE_DATE_EPOCH
//! or 0), written by a thread into a pipe that `layer add` reads like any other tar.
//! Kernel interfaces: open(2) of SOURCE, openat(2) O_PATH|O_NOFOLLOW of each entry relative to
//! its parent's descriptor, fstat(2), readlinkat(2) with an empty path, open(2) and
//! listxattr(2)/getxattr(2) of /proc/self/fd/N (proc(5)), getdents64(2), pipe(2) (pipe(7)).
//!
//! # Nothing is looked up twice
//!
//! The SOURCE path the user gave is resolved once (it may be a symlink to a directory). Below
//! it, each entry is opened exactly once, relative to its parent directory's descriptor, as an
//! O_PATH descriptor that never follows a symlink; its type, size, mode, owners and times come
//! from fstat(2) of that descriptor, a symlink's target from readlinkat(2) of it, xattrs and a
//! file's bytes from the same inode through `/proc/self/fd/N`, and a directory is entered by
//! opening `.` relative to it. Someone who can write the directory may swap an entry for a
//! symlink at any moment: the layer gets either the entry or the symlink, never what the
//! symlink points at. The walk climbs back through `..`, checked against the directory it came
//! from, so it holds a bounded number of descriptors whatever the depth.
//!
//! A regular file's header promises the size fstat gave; a file whose size differs after its
//! bytes were copied (it shrank or grew while being read) is refused in one line naming it,
//! and the layer is not stored (never padded or cut silently).

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use rustix::fs::{FileType, Mode, OFlags, Stat};
use rustix::io::Errno;
use tar::{EntryType, Header};

/// Starts serialising `dir`; returns the read end of the pipe and the writer thread.
pub fn spawn(dir: &Path, epoch: Option<i64>) -> io::Result<(fs::File, JoinHandle<io::Result<()>>)> {
    // SOURCE itself may be a symlink the user chose: resolved here, once
    let top = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::NOTDIR => io::Error::other("not a directory"),
        e => e.into(),
    })?;
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let (r, w) = (fs::File::from(r), fs::File::from(w));
    let base = dir.to_path_buf();
    let h = std::thread::Builder::new()
        .name("rbuild-dirtar".into())
        .spawn(move || {
            let mut w = io::BufWriter::with_capacity(1 << 20, w);
            let mut t = DirTar {
                out: &mut w,
                epoch,
                links: HashMap::new(),
                base,
            };
            t.write_tree(top)?;
            w.flush()
        })?;
    Ok((r, h))
}

struct DirTar<'a, W: Write> {
    out: &'a mut W,
    epoch: Option<i64>,
    /// (dev, ino) of files with several links -> the first name written
    links: HashMap<(u64, u64), Vec<u8>>,
    /// SOURCE as the user gave it, for messages
    base: PathBuf,
}

/// One directory of the walk: its entries still to write (sorted, reversed so `pop` gives the
/// next), the length of the member-name prefix of its entries, and its identity.
struct Level {
    rest: Vec<Vec<u8>>,
    prefix: usize,
    id: (u64, u64),
}

fn identity(st: &Stat) -> (u64, u64) {
    (st.st_dev, st.st_ino)
}

impl<W: Write> DirTar<'_, W> {
    fn write_tree(&mut self, top: OwnedFd) -> io::Result<()> {
        let st = rustix::fs::fstat(&top).map_err(|e| self.ctx(b"", e.into()))?;
        self.entry(top.as_fd(), &st, b"./")?;
        self.walk(top, &st)?;
        self.out.write_all(&[0u8; 1024])
    }

    /// Writes every entry below `top`, depth first in sorted order, holding the descriptors of
    /// the current directory and one entry at a time.
    fn walk(&mut self, top: OwnedFd, st: &Stat) -> io::Result<()> {
        let mut rel: Vec<u8> = Vec::new();
        let mut stack = vec![Level {
            rest: self.list(&top, &rel)?,
            prefix: 0,
            id: identity(st),
        }];
        let mut cur = top;
        while let Some(level) = stack.last_mut() {
            let Some(name) = level.rest.pop() else {
                stack.pop();
                if let Some(parent) = stack.last() {
                    cur = self.climb(&cur, parent.id, &rel)?;
                }
                continue;
            };
            rel.truncate(level.prefix);
            rel.extend_from_slice(&name);
            let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let fd = rustix::fs::openat(&cur, name.as_slice(), flags, Mode::empty())
                .map_err(|e| self.ctx(&rel, e.into()))?;
            let st = rustix::fs::fstat(&fd).map_err(|e| self.ctx(&rel, e.into()))?;
            if !self.entry(fd.as_fd(), &st, &rel)? {
                continue;
            }
            // the very directory just written: `.` relative to its own descriptor
            let dir = rustix::fs::openat(
                &fd,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| self.ctx(&rel, e.into()))?;
            rel.push(b'/');
            let rest = self.list(&dir, &rel)?;
            stack.push(Level {
                rest,
                prefix: rel.len(),
                id: identity(&st),
            });
            cur = dir;
        }
        Ok(())
    }

    /// The parent of `cur` through `..`, refused unless it is the directory the walk came from
    /// (a directory moved elsewhere while being read).
    fn climb(&self, cur: &OwnedFd, want: (u64, u64), rel: &[u8]) -> io::Result<OwnedFd> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let up = rustix::fs::openat(cur, "..", flags, Mode::empty())
            .map_err(|e| self.ctx(rel, e.into()))?;
        let st = rustix::fs::fstat(&up).map_err(|e| self.ctx(rel, e.into()))?;
        if identity(&st) != want {
            return Err(self.ctx(
                rel,
                io::Error::other("a directory was moved while the source was being read"),
            ));
        }
        Ok(up)
    }

    /// The names in `dir`, sorted bytewise, reversed (see [`Level`]).
    fn list(&self, dir: &OwnedFd, rel: &[u8]) -> io::Result<Vec<Vec<u8>>> {
        let mut names = Vec::new();
        let d = rustix::fs::Dir::read_from(dir).map_err(|e| self.ctx(rel, e.into()))?;
        for e in d {
            let e = e.map_err(|e| self.ctx(rel, e.into()))?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(n.to_vec());
            }
        }
        names.sort_unstable_by(|a, b| b.cmp(a));
        Ok(names)
    }

    fn mtime(&self, m: i64) -> u64 {
        match self.epoch {
            Some(e) => m.min(e).max(0) as u64,
            None => 0,
        }
    }

    /// Writes the entry open as `fd` (fstat gave `st`) named `rel`; returns whether it is a
    /// directory (to be entered).
    fn entry(&mut self, fd: BorrowedFd<'_>, st: &Stat, rel: &[u8]) -> io::Result<bool> {
        let mut h = Header::new_ustar();
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(st.st_uid as u64);
        h.set_gid(st.st_gid as u64);
        h.set_mtime(self.mtime(st.st_mtime));
        h.set_size(0);
        let mut name = rel.to_vec();
        let ft = FileType::from_raw_mode(st.st_mode);
        let Some((link, content)) = self.kind(fd, st, &mut name, &mut h)? else {
            tracing::warn!(
                "{}: sockets cannot be stored in a layer; skipped",
                self.show(rel)
            );
            return Ok(false);
        };
        let pax = self.pax_records(fd, rel, &name, link.as_deref())?;
        if !pax.is_empty() {
            self.write_pax(&pax)?;
        }
        set_name(&mut h.as_old_mut().name, &name);
        if let Some(l) = &link {
            set_name(&mut h.as_old_mut().linkname, l);
        }
        h.set_cksum();
        self.out.write_all(h.as_bytes())?;
        if let Some(f) = content {
            self.copy(f, st.st_size as u64, rel)?;
        }
        Ok(ft == FileType::Directory)
    }

    /// Copies exactly `size` bytes of `f` (the size its header promised) and refuses a file
    /// whose size changed meanwhile.
    fn copy(&mut self, f: fs::File, size: u64, rel: &[u8]) -> io::Result<()> {
        let n = io::copy(&mut (&f).take(size), self.out)?;
        let now = rustix::fs::fstat(&f).map_err(|e| self.ctx(rel, e.into()))?;
        if n != size || now.st_size as u64 != size {
            let now = if n < size { n } else { now.st_size as u64 };
            return Err(self.ctx(
                rel,
                io::Error::other(format!(
                    "the file changed size while being read ({size} bytes, then {now}); nothing stored: add it again once it is not being written"
                )),
            ));
        }
        self.pad(size)
    }

    /// Sets the entry type (and size or device) in `h`; returns its link target and the open
    /// file to copy, or None for a socket (which a layer cannot hold).
    fn kind(
        &mut self,
        fd: BorrowedFd<'_>,
        st: &Stat,
        name: &mut Vec<u8>,
        h: &mut Header,
    ) -> io::Result<Option<LinkAndContent>> {
        let rel = name.clone();
        let mut link: Option<Vec<u8>> = None;
        let mut content: Option<fs::File> = None;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                h.set_entry_type(EntryType::Directory);
                if !name.ends_with(b"/") {
                    name.push(b'/');
                }
            }
            FileType::Symlink => {
                h.set_entry_type(EntryType::Symlink);
                let target = rustix::fs::readlinkat(fd, "", Vec::new())
                    .map_err(|e| self.ctx(&rel, e.into()))?;
                link = Some(target.into_bytes());
            }
            FileType::RegularFile => {
                let key = identity(st);
                if st.st_nlink > 1 {
                    if let Some(first) = self.links.get(&key) {
                        h.set_entry_type(EntryType::Link);
                        link = Some(first.clone());
                    } else {
                        self.links.insert(key, name.clone());
                    }
                }
                if link.is_none() {
                    h.set_entry_type(EntryType::Regular);
                    h.set_size(st.st_size as u64);
                    content = Some(reopen(fd, st).map_err(|e| self.ctx(&rel, e))?);
                }
            }
            t @ (FileType::CharacterDevice | FileType::BlockDevice) => {
                h.set_entry_type(if t == FileType::CharacterDevice {
                    EntryType::Char
                } else {
                    EntryType::Block
                });
                h.set_device_major(rustix::fs::major(st.st_rdev))?;
                h.set_device_minor(rustix::fs::minor(st.st_rdev))?;
            }
            FileType::Fifo => h.set_entry_type(EntryType::Fifo),
            _ => return Ok(None),
        }
        Ok(Some((link, content)))
    }

    /// PAX records an entry needs: long path and link names, and its xattrs (sorted by name).
    fn pax_records(
        &self,
        fd: BorrowedFd<'_>,
        rel: &[u8],
        name: &[u8],
        link: Option<&[u8]>,
    ) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut pax: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        if name.len() > 100 {
            pax.push((b"path".to_vec(), name.to_vec()));
        }
        if let Some(l) = link.filter(|l| l.len() > 100) {
            pax.push((b"linkpath".to_vec(), l.to_vec()));
        }
        let p = proc_fd(fd);
        let mut xn =
            crate::xattr::list(&p, crate::xattr::Link::Follow).map_err(|e| self.ctx(rel, e))?;
        xn.sort();
        for n in xn {
            let v = crate::xattr::get(&p, &n, crate::xattr::Link::Follow)
                .map_err(|e| self.ctx(rel, e))?;
            let mut k = b"SCHILY.xattr.".to_vec();
            k.extend_from_slice(&n);
            pax.push((k, v));
        }
        Ok(pax)
    }

    fn write_pax(&mut self, records: &[(Vec<u8>, Vec<u8>)]) -> io::Result<()> {
        let mut body = Vec::new();
        for (k, v) in records {
            let base = k.len() + v.len() + 3; // ' ', '=', '\n'
            let mut len = base + 1;
            while base + len.to_string().len() != len {
                len = base + len.to_string().len();
            }
            body.extend_from_slice(len.to_string().as_bytes());
            body.push(b' ');
            body.extend_from_slice(k);
            body.push(b'=');
            body.extend_from_slice(v);
            body.push(b'\n');
        }
        let mut h = Header::new_ustar();
        h.set_entry_type(EntryType::XHeader);
        set_name(&mut h.as_old_mut().name, b"././@PaxHeader");
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(body.len() as u64);
        h.set_cksum();
        self.out.write_all(h.as_bytes())?;
        self.out.write_all(&body)?;
        self.pad(body.len() as u64)
    }

    fn pad(&mut self, size: u64) -> io::Result<()> {
        let r = (size % 512) as usize;
        if r != 0 {
            self.out.write_all(&[0u8; 512][..512 - r])?;
        }
        Ok(())
    }

    /// `SOURCE/rel` for messages.
    fn show(&self, rel: &[u8]) -> String {
        let rel = rel.strip_prefix(b"./").unwrap_or(rel);
        if rel.is_empty() {
            return self.base.display().to_string();
        }
        self.base
            .join(std::ffi::OsStr::from_bytes(rel))
            .display()
            .to_string()
    }

    fn ctx(&self, rel: &[u8], e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("{}: {e}", self.show(rel)))
    }
}

/// An entry's link target (hardlink or symlink) and the file whose bytes follow its header.
type LinkAndContent = (Option<Vec<u8>>, Option<fs::File>);

/// `/proc/self/fd/N`: opening or reading xattrs through it reaches the inode `fd` holds (an
/// O_PATH descriptor of a symlink included), with no lookup by name.
fn proc_fd(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Opens for reading the regular file `fd` (O_PATH) refers to, checking it is that inode.
fn reopen(fd: BorrowedFd<'_>, st: &Stat) -> io::Result<fs::File> {
    let f = rustix::fs::open(
        proc_fd(fd).as_path(),
        OFlags::RDONLY | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let now = rustix::fs::fstat(&f)?;
    if identity(&now) != identity(st)
        || FileType::from_raw_mode(now.st_mode) != FileType::RegularFile
    {
        return Err(io::Error::other("changed while being read"));
    }
    Ok(fs::File::from(f))
}

/// Copies a name into a fixed header field (truncated when a PAX record carries it whole).
fn set_name(field: &mut [u8], name: &[u8]) {
    field.fill(0);
    let n = name.len().min(field.len());
    field[..n].copy_from_slice(&name[..n]);
}
