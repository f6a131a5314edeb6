//! A directory serialised to a deterministic tar stream (names sorted bytewise, numeric owners,
//! modes, xattrs as PAX `SCHILY.xattr.*`, hardlinks kept, mtimes clamped to SOURCE_DATE_EPOCH
//! or 0), written by a thread into a pipe that `layer add` reads like any other tar.
//! Kernel interfaces: lstat(2), readlink(2), llistxattr(2)/lgetxattr(2), pipe(2) (pipe(7)).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use tar::{EntryType, Header};

/// Starts serialising `dir`; returns the read end of the pipe and the writer thread.
pub fn spawn(dir: &Path, epoch: Option<i64>) -> io::Result<(fs::File, JoinHandle<io::Result<()>>)> {
    let md = fs::metadata(dir)?;
    if !md.is_dir() {
        return Err(io::Error::other("not a directory"));
    }
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let (r, w) = (fs::File::from(r), fs::File::from(w));
    let dir = dir.to_path_buf();
    let h = std::thread::Builder::new()
        .name("rbuild-dirtar".into())
        .spawn(move || {
            let mut w = io::BufWriter::with_capacity(1 << 20, w);
            let mut t = DirTar {
                out: &mut w,
                epoch,
                links: HashMap::new(),
            };
            t.write_tree(&dir)?;
            w.flush()
        })?;
    Ok((r, h))
}

struct DirTar<'a, W: Write> {
    out: &'a mut W,
    epoch: Option<i64>,
    /// (dev, ino) of files with several links -> the first name written
    links: HashMap<(u64, u64), Vec<u8>>,
}

impl<W: Write> DirTar<'_, W> {
    fn write_tree(&mut self, root: &Path) -> io::Result<()> {
        self.entry(root, b"./")?;
        self.walk(root, &mut Vec::new())?;
        self.out.write_all(&[0u8; 1024])
    }

    fn walk(&mut self, dir: &Path, rel: &mut Vec<u8>) -> io::Result<()> {
        let mut names: Vec<Vec<u8>> = fs::read_dir(dir)
            .map_err(|e| ctx(dir, e))?
            .map(|e| e.map(|e| e.file_name().as_bytes().to_vec()))
            .collect::<io::Result<_>>()
            .map_err(|e| ctx(dir, e))?;
        names.sort();
        for n in names {
            let p = dir.join(OsStr::from_bytes(&n));
            let len = rel.len();
            rel.extend_from_slice(&n);
            let is_dir = self.entry(&p, rel)?;
            if is_dir {
                rel.push(b'/');
                self.walk(&p, rel)?;
            }
            rel.truncate(len);
        }
        Ok(())
    }

    fn mtime(&self, m: i64) -> u64 {
        match self.epoch {
            Some(e) => m.min(e).max(0) as u64,
            None => 0,
        }
    }

    /// Writes one entry; returns whether it is a directory.
    fn entry(&mut self, p: &Path, rel: &[u8]) -> io::Result<bool> {
        let md = fs::symlink_metadata(p).map_err(|e| ctx(p, e))?;
        let ft = md.file_type();
        let mut h = Header::new_ustar();
        h.set_mode(md.mode() & 0o7777);
        h.set_uid(md.uid() as u64);
        h.set_gid(md.gid() as u64);
        h.set_mtime(self.mtime(md.mtime()));
        h.set_size(0);
        let mut name = rel.to_vec();
        let Some((link, content)) = self.kind(p, &md, &mut name, &mut h)? else {
            tracing::warn!(
                "{}: sockets cannot be stored in a layer; skipped",
                p.display()
            );
            return Ok(false);
        };
        let pax = pax_records(p, &name, link.as_deref())?;
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
            let size = md.size();
            let n = io::copy(&mut f.take(size), self.out)?;
            if n != size {
                return Err(ctx(p, io::Error::other("file shrank while being read")));
            }
            self.pad(size)?;
        }
        Ok(ft.is_dir())
    }

    /// Sets the entry type (and size or device) of `p` in `h`; returns its link target and the
    /// open file to copy, or None for a socket (which a layer cannot hold).
    fn kind(
        &mut self,
        p: &Path,
        md: &fs::Metadata,
        name: &mut Vec<u8>,
        h: &mut Header,
    ) -> io::Result<Option<LinkAndContent>> {
        let ft = md.file_type();
        let mut link: Option<Vec<u8>> = None;
        let mut content: Option<fs::File> = None;
        if ft.is_dir() {
            h.set_entry_type(EntryType::Directory);
            if !name.ends_with(b"/") {
                name.push(b'/');
            }
        } else if ft.is_symlink() {
            h.set_entry_type(EntryType::Symlink);
            link = Some(
                fs::read_link(p)
                    .map_err(|e| ctx(p, e))?
                    .as_os_str()
                    .as_bytes()
                    .to_vec(),
            );
        } else if ft.is_file() {
            let key = (md.dev(), md.ino());
            if md.nlink() > 1 {
                if let Some(first) = self.links.get(&key) {
                    h.set_entry_type(EntryType::Link);
                    link = Some(first.clone());
                } else {
                    self.links.insert(key, name.clone());
                }
            }
            if link.is_none() {
                h.set_entry_type(EntryType::Regular);
                h.set_size(md.size());
                content = Some(fs::File::open(p).map_err(|e| ctx(p, e))?);
            }
        } else if ft.is_char_device() || ft.is_block_device() {
            h.set_entry_type(if ft.is_char_device() {
                EntryType::Char
            } else {
                EntryType::Block
            });
            let rdev = md.rdev();
            h.set_device_major(rustix::fs::major(rdev))?;
            h.set_device_minor(rustix::fs::minor(rdev))?;
        } else if ft.is_fifo() {
            h.set_entry_type(EntryType::Fifo);
        } else {
            return Ok(None);
        }

        Ok(Some((link, content)))
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
}

/// Copies a name into a fixed header field (truncated when a PAX record carries it whole).
/// An entry's link target (hardlink or symlink) and the file whose bytes follow its header.
type LinkAndContent = (Option<Vec<u8>>, Option<fs::File>);

/// PAX records an entry needs: long path and link names, and its xattrs (sorted by name).
fn pax_records(p: &Path, name: &[u8], link: Option<&[u8]>) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut pax: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    if name.len() > 100 {
        pax.push((b"path".to_vec(), name.to_vec()));
    }
    if let Some(l) = link.filter(|l| l.len() > 100) {
        pax.push((b"linkpath".to_vec(), l.to_vec()));
    }
    let mut xn = crate::tree::list_xattrs(p).map_err(|e| ctx(p, e))?;
    xn.sort();
    for n in xn {
        let v = crate::tree::get_xattr(p, &n).map_err(|e| ctx(p, e))?;
        let mut k = b"SCHILY.xattr.".to_vec();
        k.extend_from_slice(&n);
        pax.push((k, v));
    }
    Ok(pax)
}

fn set_name(field: &mut [u8], name: &[u8]) {
    field.fill(0);
    let n = name.len().min(field.len());
    field[..n].copy_from_slice(&name[..n]);
}

fn ctx(p: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", PathBuf::from(p).display()))
}
