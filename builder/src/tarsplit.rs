//! The record that gives a layer's exact tar stream back, as containers/storage's tar-split
//! does: every byte of the uncompressed stream except the payloads of regular files, which are
//! read back from the extracted tree. Written during extraction as `layers/<DiffID>/
//! tar-split.zst`; read by export, save and push, which check that the stream they rebuild
//! hashes to the DiffID. Kernel interfaces: openat2(2) RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS to
//! read a payload back beneath the layer root, fstat(2).
//!
//! Format (zstd-compressed), a sequence of records:
//! - `R` u32le LEN, then LEN bytes: stream bytes kept as they were (headers, PAX records,
//!   padding, the end-of-archive blocks, anything after them, sparse members' data);
//! - `F` u64le LEN, u16le N, then N bytes of PATH: LEN bytes read from the regular file PATH
//!   (relative to `rootfs/`, as extraction normalised the member name);
//! - `E` u64le TOTAL: the end, TOTAL being the stream's length.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::rc::Rc;

use rustix::fs::{Mode, OFlags, ResolveFlags};
use sha2::{Digest as _, Sha256};

/// The file name beside `rootfs/`.
pub const FILE: &str = "tar-split.zst";
/// Largest raw run written as one record.
const RAW_RUN: usize = 1 << 20;
/// Longest PATH a record holds (PATH_MAX).
const MAX_PATH: usize = 4096;

/// What recording left: the digest of the record file, or why the stream cannot be given back.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// `sha256:<hex>` of the record file
    Kept(String),
    Lost(String),
}

struct Recorder {
    out: Option<zstd::Encoder<'static, Hashing<BufWriter<File>>>>,
    /// offset in the stream of the next byte seen
    pos: u64,
    raw: Vec<u8>,
    /// end of the payload being skipped
    skip_to: u64,
    paths: HashSet<Vec<u8>>,
    dirs: HashSet<Vec<u8>>,
    lost: Option<String>,
    failed: Option<io::Error>,
}

/// The recording side, shared by the reader below the tar crate ([`Recording`]) and the
/// extractor (which says where regular files' payloads lie and which names it replaces).
#[derive(Clone)]
pub struct SplitHandle(Rc<RefCell<Recorder>>);

impl SplitHandle {
    /// Records into `path` (created; the caller's staging folder removes it on failure).
    pub fn create(path: &Path) -> io::Result<SplitHandle> {
        let f = File::create(path)?;
        let enc = zstd::Encoder::new(Hashing::new(BufWriter::new(f)), 3)?;
        Ok(SplitHandle(Rc::new(RefCell::new(Recorder {
            out: Some(enc),
            pos: 0,
            raw: Vec::new(),
            skip_to: 0,
            paths: HashSet::new(),
            dirs: HashSet::new(),
            lost: None,
            failed: None,
        }))))
    }

    /// A regular file's payload: `len` bytes at stream offset `start`, written to `path`.
    pub fn payload(&self, start: u64, len: u64, path: &[u8]) {
        let mut r = self.0.borrow_mut();
        if r.lost.is_some() || len == 0 {
            return;
        }
        if r.pos != start || path.len() > MAX_PATH {
            r.lost = Some(format!(
                "member {} was not where its header said",
                show(path)
            ));
            return;
        }
        r.flush_raw();
        let mut rec = vec![b'F'];
        rec.extend_from_slice(&len.to_le_bytes());
        rec.extend_from_slice(&(path.len() as u16).to_le_bytes());
        rec.extend_from_slice(path);
        r.write(&rec);
        r.skip_to = start + len;
        let mut d = path.to_vec();
        while let Some(i) = d.iter().rposition(|b| *b == b'/') {
            d.truncate(i);
            if !r.dirs.insert(d.clone()) {
                break;
            }
        }
        r.paths.insert(path.to_vec());
    }

    /// A member named `path` is about to be made: if it replaces a payload recorded before (or
    /// a directory holding one), that payload's bytes are gone and the stream is lost.
    pub fn member(&self, path: &[u8], is_dir: bool) {
        let mut r = self.0.borrow_mut();
        if r.lost.is_none() && (r.paths.contains(path) || (!is_dir && r.dirs.contains(path))) {
            r.lost = Some(format!(
                "member {} replaces an earlier member of that name",
                show(path)
            ));
        }
    }

    fn see(&self, mut bytes: &[u8]) {
        let mut r = self.0.borrow_mut();
        while !bytes.is_empty() {
            if r.pos < r.skip_to {
                let n = (r.skip_to - r.pos).min(bytes.len() as u64) as usize;
                r.pos += n as u64;
                bytes = &bytes[n..];
                continue;
            }
            if r.lost.is_none() {
                r.raw.extend_from_slice(bytes);
                if r.raw.len() >= RAW_RUN {
                    r.flush_raw();
                }
            }
            r.pos += bytes.len() as u64;
            bytes = &[];
        }
    }

    /// Ends the record once the whole stream went through; removes it when the stream was lost.
    pub fn finish(&self, path: &Path) -> io::Result<Outcome> {
        let mut r = self.0.borrow_mut();
        if let Some(why) = r.lost.take() {
            r.out = None;
            let _ = std::fs::remove_file(path);
            return Ok(Outcome::Lost(why));
        }
        r.flush_raw();
        let mut rec = vec![b'E'];
        rec.extend_from_slice(&r.pos.to_le_bytes());
        r.write(&rec);
        if let Some(e) = r.failed.take() {
            return Err(e);
        }
        let enc = r
            .out
            .take()
            .ok_or_else(|| io::Error::other("record closed"))?;
        let mut hashing = enc.finish()?;
        hashing.inner.flush()?;
        hashing.inner.get_ref().sync_all()?;
        Ok(Outcome::Kept(format!(
            "sha256:{}",
            store::digest::hex(&hashing.hash.finalize())
        )))
    }
}

impl Recorder {
    fn flush_raw(&mut self) {
        if self.raw.is_empty() {
            return;
        }
        let raw = std::mem::take(&mut self.raw);
        for run in raw.chunks(RAW_RUN) {
            let mut rec = vec![b'R'];
            rec.extend_from_slice(&(run.len() as u32).to_le_bytes());
            self.write(&rec);
            self.write(run);
        }
    }

    fn write(&mut self, b: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        if let Some(out) = self.out.as_mut() {
            if let Err(e) = out.write_all(b) {
                self.failed = Some(e);
            }
        }
    }
}

/// A reader that records what passes through it (put directly below the tar crate, so that
/// its offsets are the tar crate's `raw_file_position`s).
pub struct Recording<R> {
    pub inner: R,
    split: Option<SplitHandle>,
}

impl<R: Read> Recording<R> {
    pub fn new(inner: R, split: Option<SplitHandle>) -> Recording<R> {
        Recording { inner, split }
    }
}

impl<R: Read> Read for Recording<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(s) = &self.split {
            s.see(&buf[..n]);
        }
        Ok(n)
    }
}

/// A writer that hashes what it writes.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
}

impl<W> Hashing<W> {
    fn new(inner: W) -> Hashing<W> {
        Hashing {
            inner,
            hash: Sha256::new(),
        }
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

enum Part {
    Raw(u64),
    File(File, u64),
    Done,
}

/// The layer's tar stream, rebuilt from its record and its extracted tree. Whether it is the
/// original is for the caller to check (its sha256 against the DiffID).
pub struct Reassembly {
    rootfs: OwnedFd,
    records: zstd::Decoder<'static, BufReader<File>>,
    part: Part,
    pos: u64,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl Reassembly {
    /// Opens the record `split` of the layer extracted in `rootfs`.
    pub fn open(split: &Path, rootfs: &Path) -> io::Result<Reassembly> {
        let f = rustix::fs::open(
            split,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let rootfs = rustix::fs::open(
            rootfs,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Reassembly {
            rootfs,
            records: zstd::Decoder::new(File::from(f))?,
            part: Part::Raw(0),
            pos: 0,
        })
    }

    fn next_record(&mut self) -> io::Result<Part> {
        let mut tag = [0u8; 1];
        self.records
            .read_exact(&mut tag)
            .map_err(|_| bad("the record ends before its end marker"))?;
        match tag[0] {
            b'R' => {
                let mut n = [0u8; 4];
                self.records.read_exact(&mut n)?;
                Ok(Part::Raw(u64::from(u32::from_le_bytes(n))))
            }
            b'F' => {
                let mut len = [0u8; 8];
                let mut n = [0u8; 2];
                self.records.read_exact(&mut len)?;
                self.records.read_exact(&mut n)?;
                let n = usize::from(u16::from_le_bytes(n));
                if n == 0 || n > MAX_PATH {
                    return Err(bad("a file record has no valid path"));
                }
                let mut path = vec![0u8; n];
                self.records.read_exact(&mut path)?;
                let len = u64::from_le_bytes(len);
                Ok(Part::File(self.open_payload(&path, len)?, len))
            }
            b'E' => {
                let mut n = [0u8; 8];
                self.records.read_exact(&mut n)?;
                if u64::from_le_bytes(n) != self.pos {
                    return Err(bad("the record's length does not match what it gave"));
                }
                Ok(Part::Done)
            }
            _ => Err(bad("the record is damaged")),
        }
    }

    /// The regular file `path` beneath the layer root, which must hold exactly `len` bytes.
    fn open_payload(&self, path: &[u8], len: u64) -> io::Result<File> {
        let show = show(path);
        let resolve =
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = rustix::fs::openat2(self.rootfs.as_fd(), path, flags, Mode::empty(), resolve)
            .map_err(|e| bad(format!("cannot open {show}: {e}")))?;
        let st = rustix::fs::fstat(&fd)?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile
            || st.st_size as u64 != len
        {
            return Err(bad(format!("{show} changed since the layer was imported")));
        }
        Ok(File::from(fd))
    }
}

impl Read for Reassembly {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match &mut self.part {
                Part::Done => return Ok(0),
                Part::Raw(0) | Part::File(_, 0) => self.part = self.next_record()?,
                Part::Raw(left) => {
                    let want = (*left).min(buf.len() as u64) as usize;
                    let n = self.records.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(bad("the record ends inside a raw run"));
                    }
                    *left -= n as u64;
                    self.pos += n as u64;
                    return Ok(n);
                }
                Part::File(f, left) => {
                    let want = (*left).min(buf.len() as u64) as usize;
                    let n = f.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(bad("a file is shorter than when it was imported"));
                    }
                    *left -= n as u64;
                    self.pos += n as u64;
                    return Ok(n);
                }
            }
        }
    }
}

/// A reader that hashes what it gives and counts it.
pub struct Digesting<R> {
    pub inner: R,
    hash: Sha256,
    pub len: u64,
}

impl<R: Read> Digesting<R> {
    pub fn new(inner: R) -> Digesting<R> {
        Digesting {
            inner,
            hash: Sha256::new(),
            len: 0,
        }
    }

    /// The hex sha256 of everything read so far.
    pub fn hex(&self) -> String {
        store::digest::hex(&self.hash.clone().finalize())
    }
}

impl<R: Read> Read for Digesting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

/// A member name as error messages print it (non-UTF-8 bytes escaped), as extract's errors do.
fn show(name: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_comes_back_from_its_record_and_files() {
        let dir = std::env::temp_dir().join(format!(
            "rbuild-ts-{}-{}",
            std::process::id(),
            store::files::nonce()
        ));
        let rootfs = dir.join("rootfs");
        std::fs::create_dir_all(rootfs.join("d")).unwrap();
        std::fs::write(rootfs.join("d/f"), b"payload!").unwrap();
        let rec = dir.join(FILE);
        let h = SplitHandle::create(&rec).unwrap();
        let stream = b"HEADER--payload!PAD-END".to_vec();
        h.see(&stream[..8]);
        h.payload(8, 8, b"d/f");
        h.see(&stream[8..]);
        assert!(matches!(h.finish(&rec).unwrap(), Outcome::Kept(_)));
        let mut back = Vec::new();
        Reassembly::open(&rec, &rootfs)
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, stream);
        // a changed file is caught
        std::fs::write(rootfs.join("d/f"), b"payload!!").unwrap();
        let e = Reassembly::open(&rec, &rootfs)
            .unwrap()
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(e.to_string().contains("\"d/f\" changed"), "{e}");
        // a member replacing a recorded payload loses the stream
        let h = SplitHandle::create(&rec).unwrap();
        h.see(b"HDR");
        h.payload(3, 2, b"a/b");
        h.see(b"xy");
        h.member(b"a", false);
        assert!(matches!(h.finish(&rec).unwrap(), Outcome::Lost(_)));
        assert!(!rec.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
