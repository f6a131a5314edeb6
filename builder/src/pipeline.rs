//! The streaming front half of `layer add`: bytes as received -> checksums of those bytes ->
//! decompression (gzip with multiple members, zstd, or none, told by magic bytes) -> sha256 of
//! the uncompressed stream (the DiffID) -> fixed-size chunks over a bounded channel to the
//! extracting thread. No kernel interface beyond read(2); memory is bounded by the chunk pool.

use std::io::{self, BufReader, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use sha2::{Digest as _, Sha256, Sha512};

use store::digest::hex;

const CHUNK: usize = 1 << 20;
const CHUNKS: usize = 6;

/// Compression told from the first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::None => "tar",
        }
    }
}

/// A tar header block.
const TAR_BLOCK: usize = 512;

/// Compressed formats recognised only to be refused: name and magic bytes (bzip2's `BZh` is
/// followed by a block-size digit; lz4 has a frame and a legacy magic).
const UNSUPPORTED: [(&str, &[u8]); 5] = [
    ("xz", &[0xfd, b'7', b'z', b'X', b'Z', 0x00]),
    ("bzip2", b"BZh"),
    ("lz4", &[0x04, 0x22, 0x4d, 0x18]),
    ("lz4", &[0x02, 0x21, 0x4c, 0x18]),
    ("lzip", b"LZIP"),
];

/// The name of a compression rbuild does not read, told by the magic at the start of `head`
/// (the first block of the input). A first block that is a valid tar header is a tar whatever
/// its first member is named (`BZh9...` is a valid file name).
fn unsupported_compression(head: &[u8]) -> Option<&'static str> {
    let (name, _) = UNSUPPORTED.iter().find(|(_, m)| head.starts_with(m))?;
    if *name == "bzip2" && !matches!(head.get(3), Some(b'1'..=b'9')) {
        return None;
    }
    if is_tar_header(head) {
        return None;
    }
    Some(name)
}

/// Whether `b` starts with a 512-byte block whose checksum field (octal, bytes 148..156)
/// matches its bytes summed with that field as spaces, unsigned or signed (old tars).
fn is_tar_header(b: &[u8]) -> bool {
    let Some(block) = b.get(..TAR_BLOCK) else {
        return false;
    };
    let field = &block[148..156];
    let digits: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|c| *c == b' ')
        .take_while(|c| (b'0'..=b'7').contains(c))
        .collect();
    if digits.is_empty() {
        return false;
    }
    let Some(want) = digits.iter().try_fold(0u64, |acc, d| {
        acc.checked_mul(8)?.checked_add(u64::from(d - b'0'))
    }) else {
        return false;
    };
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (i, &c) in block.iter().enumerate() {
        let c = if (148..156).contains(&i) { b' ' } else { c };
        unsigned += u64::from(c);
        signed += i64::from(c as i8);
    }
    want == unsigned || i64::try_from(want).is_ok_and(|w| w == signed)
}

/// Errors of the reading/decompressing half.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("the input is empty")]
    Empty,
    #[error("reading the input: {0}")]
    Read(io::Error),
    #[error("{0}-compressed input is not supported: use .tar, .tar.gz/.tgz or .tar.zst")]
    Unsupported(&'static str),
    #[error("corrupt or truncated {kind} data: {msg}")]
    Corrupt { kind: &'static str, msg: String },
}

/// Digests of what went through the pipeline.
#[derive(Debug, Clone, Default)]
pub struct StreamDigests {
    /// sha256 of the bytes as received
    pub blob_sha256: String,
    /// sha512 of the bytes as received, when asked for
    pub blob_sha512: Option<String>,
    /// sha256 of the uncompressed stream (hex)
    pub diff_id: String,
    /// bytes of the uncompressed stream
    pub size: u64,
    pub compression: Option<Compression>,
}

#[derive(Default)]
struct BlobHashes {
    sha256: Option<Sha256>,
    sha512: Option<Sha512>,
    /// the source itself failed (a broken download), as opposed to bad data
    source_error: Option<String>,
}

/// Hashes the bytes as received, before any decompression.
struct HashingReader<R> {
    inner: R,
    hashes: Arc<Mutex<BlobHashes>>,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.hashes
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .source_error = Some(e.to_string());
                }
                return Err(e);
            }
        };
        if n > 0 {
            let mut h = self.hashes.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(s) = h.sha256.as_mut() {
                s.update(&buf[..n]);
            }
            if let Some(s) = h.sha512.as_mut() {
                s.update(&buf[..n]);
            }
        }
        Ok(n)
    }
}

/// The receiving end: a `Read` over the chunks, returning emptied chunks to the pool.
pub struct ChannelReader {
    rx: Receiver<Vec<u8>>,
    back: SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    consumed: u64,
    done: bool,
}

impl ChannelReader {
    /// Bytes handed out so far.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Reads and drops the rest of the stream (so that every byte is hashed); returns its length.
    pub fn drain(&mut self) -> u64 {
        let mut n = (self.cur.len() - self.pos) as u64;
        self.pos = self.cur.len();
        while let Ok(c) = self.rx.recv() {
            n += c.len() as u64;
            let _ = self.back.try_send(c);
        }
        self.done = true;
        self.consumed += n;
        n
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.cur.len() {
            if self.done {
                return Ok(0);
            }
            let old = std::mem::take(&mut self.cur);
            self.pos = 0;
            if old.capacity() > 0 {
                let _ = self.back.try_send(old);
            }
            match self.rx.recv() {
                Ok(c) => {
                    self.cur = c;
                    self.pos = 0;
                }
                Err(_) => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        self.consumed += n as u64;
        Ok(n)
    }
}

/// Starts the producer thread on `input`; returns the reader for the extractor and the handle
/// whose result holds the digests (or the reading/decompression error).
pub fn start(
    input: Box<dyn Read + Send>,
    want_blob_sha256: bool,
    want_sha512: bool,
) -> io::Result<(
    ChannelReader,
    JoinHandle<Result<StreamDigests, StreamError>>,
)> {
    let (tx, rx) = sync_channel::<Vec<u8>>(CHUNKS);
    let (back_tx, back_rx) = sync_channel::<Vec<u8>>(CHUNKS + 2);
    let handle = std::thread::Builder::new()
        .name("rbuild-decode".into())
        .spawn(move || produce(input, tx, back_rx, want_blob_sha256, want_sha512))?;
    let reader = ChannelReader {
        rx,
        back: back_tx,
        cur: Vec::new(),
        pos: 0,
        consumed: 0,
        done: false,
    };
    Ok((reader, handle))
}

fn produce(
    input: Box<dyn Read + Send>,
    tx: SyncSender<Vec<u8>>,
    pool: Receiver<Vec<u8>>,
    want_blob_sha256: bool,
    want_sha512: bool,
) -> Result<StreamDigests, StreamError> {
    let hashes = Arc::new(Mutex::new(BlobHashes {
        sha256: want_blob_sha256.then(Sha256::new),
        sha512: want_sha512.then(Sha512::new),
        source_error: None,
    }));
    let mut hashing = HashingReader {
        inner: input,
        hashes: hashes.clone(),
    };
    // the first block (or all of a shorter input), however the source delivers it, then the rest
    let mut head = vec![0u8; TAR_BLOCK];
    let mut got = 0;
    while got < head.len() {
        match hashing.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(StreamError::Read(e)),
        }
    }
    head.truncate(got);
    if head.is_empty() {
        return Err(StreamError::Empty);
    }
    let kind = if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else if let Some(name) = unsupported_compression(&head) {
        return Err(StreamError::Unsupported(name));
    } else {
        Compression::None
    };
    let mut raw = BufReader::with_capacity(256 << 10, io::Cursor::new(head).chain(hashing));
    if kind == Compression::None {
        // an uncompressed input is its own tar stream: its sha256 is the DiffID, hashed once
        hashes.lock().unwrap_or_else(|p| p.into_inner()).sha256 = None;
    }
    let mut diff = Sha256::new();
    let mut size = 0u64;
    let mut sender = |data: &mut dyn Read| -> Result<bool, io::Error> {
        loop {
            let mut chunk = pool
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
            chunk.resize(CHUNK, 0);
            let mut filled = 0;
            while filled < CHUNK {
                match data.read(&mut chunk[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
            chunk.truncate(filled);
            if filled == 0 {
                return Ok(true);
            }
            diff.update(&chunk);
            size += filled as u64;
            if tx.send(chunk).is_err() {
                return Ok(false); // the extractor stopped (it reports why)
            }
            if filled < CHUNK {
                return Ok(true);
            }
        }
    };
    let source_failed = hashes.clone();
    let corrupt = |e: io::Error| {
        if let Some(msg) = source_failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .source_error
            .take()
        {
            StreamError::Read(io::Error::other(msg))
        } else if e.kind() == io::ErrorKind::UnexpectedEof {
            StreamError::Corrupt {
                kind: kind.name(),
                msg: "unexpected end of data (truncated)".into(),
            }
        } else if kind == Compression::None {
            StreamError::Read(e)
        } else {
            StreamError::Corrupt {
                kind: kind.name(),
                msg: e.to_string(),
            }
        }
    };
    let completed = match kind {
        Compression::Gzip => {
            sender(&mut flate2::bufread::MultiGzDecoder::new(&mut raw)).map_err(corrupt)?
        }
        Compression::Zstd => {
            let mut d = zstd::stream::read::Decoder::with_buffer(&mut raw).map_err(corrupt)?;
            sender(&mut d).map_err(corrupt)?
        }
        Compression::None => sender(&mut raw).map_err(corrupt)?,
    };
    drop(tx);
    if completed {
        // anything after the compressed data still counts as received
        io::copy(&mut raw, &mut io::sink()).map_err(StreamError::Read)?;
    }
    let mut h = hashes.lock().unwrap_or_else(|p| p.into_inner());
    let diff_id = hex(&diff.finalize());
    let blob_sha256 = match h.sha256.take() {
        Some(s) => hex(&s.finalize()),
        None => diff_id.clone(), // uncompressed input: the blob is the tar stream itself
    };
    Ok(StreamDigests {
        blob_sha256,
        blob_sha512: h.sha512.take().map(|s| hex(&s.finalize())),
        diff_id,
        size,
        compression: Some(kind),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ustar-like header block for a member `name`, with a correct checksum.
    fn header(name: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; TAR_BLOCK];
        b[..name.len()].copy_from_slice(name);
        b[100..107].copy_from_slice(b"0000644");
        b[156] = b'0';
        b[257..263].copy_from_slice(b"ustar\0");
        b[148..156].copy_from_slice(b"        ");
        let sum: u32 = b.iter().map(|c| u32::from(*c)).sum();
        b[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        b
    }

    #[test]
    fn magic_of_unsupported_compressions_is_named() {
        let pad = |m: &[u8]| [m, &[0x55u8; 600][..]].concat();
        assert_eq!(
            unsupported_compression(&pad(&[0xfd, b'7', b'z', b'X', b'Z', 0])),
            Some("xz")
        );
        assert_eq!(unsupported_compression(&pad(b"BZh91AY&SY")), Some("bzip2"));
        assert_eq!(
            unsupported_compression(&pad(&[0x04, 0x22, 0x4d, 0x18])),
            Some("lz4")
        );
        assert_eq!(unsupported_compression(b"LZIP\x01"), Some("lzip"));
        assert_eq!(unsupported_compression(b"BZh"), None, "no block size digit");
        assert_eq!(unsupported_compression(&pad(b"plain text")), None);
    }

    #[test]
    fn a_tar_whose_first_member_looks_like_magic_is_a_tar() {
        let h = header(b"BZh91AY&SY");
        assert!(is_tar_header(&h));
        assert_eq!(unsupported_compression(&h), None);
        assert_eq!(unsupported_compression(&header(b"LZIP-notes")), None);
        let mut broken = header(b"LZIP-notes");
        broken[0x60] ^= 1;
        assert!(!is_tar_header(&broken));
        assert_eq!(unsupported_compression(&broken), Some("lzip"));
    }
}
