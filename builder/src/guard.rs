//! A `Read` wrapper that follows the tar block structure as the tar crate consumes it and stops
//! oversized extension members (GNU long names `L`/`K`, PAX records `x`) before the tar crate
//! buffers them whole: a small compressed layer could otherwise claim gigabytes of memory.
//! No kernel interface (pure stream bookkeeping; the format is POSIX pax / GNU tar).

use std::io::{self, Read};

/// Largest extension member accepted. Paths are at most PATH_MAX (4096) and an xattr value
/// at most 64 KiB, so real archives stay far below this.
pub const MAX_EXTENSION: u64 = 1 << 20;

enum State {
    /// collecting a 512-byte header block
    Header { buf: Box<[u8; 512]>, filled: usize },
    /// collecting a GNU sparse extension block
    SparseExt {
        buf: Box<[u8; 512]>,
        filled: usize,
        data: u64,
    },
    /// inside member data (padded to 512); PAX records are kept to learn the next size
    Data { left: u64, pax: Option<Vec<u8>> },
    /// after the end-of-archive block, or once the structure could not be followed
    Done,
}

pub struct TarGuard<R> {
    inner: R,
    state: State,
    /// a PAX `size` record that applies to the next file header
    next_size: Option<u64>,
    /// an all-zero header block (the end-of-archive marker) went through
    end_seen: bool,
}

fn new_header() -> State {
    State::Header {
        buf: Box::new([0u8; 512]),
        filled: 0,
    }
}

impl<R: Read> TarGuard<R> {
    pub fn new(inner: R) -> TarGuard<R> {
        TarGuard {
            inner,
            state: new_header(),
            next_size: None,
            end_seen: false,
        }
    }

    /// Whether the end-of-archive marker was read. A stream that stops right after a member
    /// (sparse or not: the guard follows the sizes on the archive, not the expanded ones) was
    /// cut short.
    pub fn end_seen(&self) -> bool {
        self.end_seen
    }

    fn feed(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Done => return Ok(()),
                State::Header { buf, filled } | State::SparseExt { buf, filled, .. } => {
                    let n = (512 - *filled).min(bytes.len());
                    buf[*filled..*filled + n].copy_from_slice(&bytes[..n]);
                    *filled += n;
                    bytes = &bytes[n..];
                    if *filled == 512 {
                        let block = std::mem::replace(buf, Box::new([0u8; 512]));
                        let sparse_data = match &self.state {
                            State::SparseExt { data, .. } => Some(*data),
                            _ => None,
                        };
                        let next = match sparse_data {
                            Some(data) => self.after_sparse_ext(&block, data),
                            None => self.after_header(&block)?,
                        };
                        self.state = next;
                    }
                }
                State::Data { left, pax } => {
                    let n = (*left).min(bytes.len() as u64) as usize;
                    if let Some(p) = pax.as_mut() {
                        p.extend_from_slice(&bytes[..n]);
                    }
                    *left -= n as u64;
                    bytes = &bytes[n..];
                    if *left == 0 {
                        if let Some(p) = pax.take() {
                            self.next_size = pax_size(&p);
                        }
                        self.state = new_header();
                    }
                }
            }
        }
        Ok(())
    }

    fn after_header(&mut self, block: &[u8; 512]) -> io::Result<State> {
        if block.iter().all(|b| *b == 0) {
            self.end_seen = true;
            return Ok(State::Done); // end of archive: the rest is padding
        }
        let h = tar::Header::from_byte_slice(block);
        let kind = block[156];
        let Ok(mut size) = h.entry_size() else {
            return Ok(State::Done);
        }; // the tar crate reports it
        let is_ext = matches!(kind, b'L' | b'K' | b'x' | b'g');
        if !is_ext {
            if let Some(s) = self.next_size.take() {
                size = s;
            }
        }
        if matches!(kind, b'L' | b'K' | b'x') && size > MAX_EXTENSION {
            return Err(io::Error::other(format!(
                "an extension header claims {size} bytes (more than {MAX_EXTENSION}); refused"
            )));
        }
        let padded = size.div_ceil(512).saturating_mul(512);
        if kind == b'S' && block[482] != 0 {
            return Ok(State::SparseExt {
                buf: Box::new([0u8; 512]),
                filled: 0,
                data: padded,
            });
        }
        Ok(self.data_state(padded, kind == b'x'))
    }

    fn after_sparse_ext(&mut self, block: &[u8; 512], data: u64) -> State {
        if block[504] != 0 {
            return State::SparseExt {
                buf: Box::new([0u8; 512]),
                filled: 0,
                data,
            };
        }
        self.data_state(data, false)
    }

    fn data_state(&mut self, padded: u64, keep: bool) -> State {
        if padded == 0 {
            new_header()
        } else {
            State::Data {
                left: padded,
                pax: keep.then(Vec::new),
            }
        }
    }
}

/// The `size` record of PAX extended-header data.
fn pax_size(data: &[u8]) -> Option<u64> {
    let mut rest = data;
    while !rest.is_empty() {
        let sp = rest.iter().position(|b| *b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..sp]).ok()?.parse().ok()?;
        if len <= sp || len > rest.len() {
            return None;
        }
        let rec = &rest[sp + 1..len];
        let rec = rec.strip_suffix(b"\n").unwrap_or(rec);
        if let Some(v) = rec.strip_prefix(b"size=") {
            return std::str::from_utf8(v).ok()?.parse().ok();
        }
        rest = &rest[len..];
    }
    None
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.feed(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, kind: u8, size: u64) -> Vec<u8> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::new(kind));
        h.set_size(size);
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        h.as_bytes().to_vec()
    }

    fn read_all_small_chunks(data: &[u8]) -> io::Result<usize> {
        let mut g = TarGuard::new(data);
        let mut total = 0;
        let mut b = [0u8; 37];
        loop {
            match g.read(&mut b)? {
                0 => return Ok(total),
                n => total += n,
            }
        }
    }

    #[test]
    fn huge_long_name_headers_are_refused_before_their_data() {
        let mut t = header("././@LongLink", b'L', 1 << 30);
        t.extend(vec![b'a'; 4096]);
        let e = read_all_small_chunks(&t).unwrap_err();
        assert!(
            e.to_string()
                .contains("extension header claims 1073741824 bytes"),
            "{e}"
        );
    }

    #[test]
    fn normal_archives_pass_and_pax_sizes_are_followed() {
        let pax = b"16 size=1048577\n";
        let mut t = header("PaxHeaders/x", b'x', pax.len() as u64);
        t.extend_from_slice(pax);
        t.extend(vec![0u8; 512 - pax.len()]);
        // the file header's own size field says 0; the PAX record says 1 MiB + 1
        t.extend(header("big", b'0', 0));
        t.extend(vec![7u8; 1_048_577 + (512 - 1_048_577 % 512)]);
        // a small long name after it is found at the right place: accepted
        t.extend(header("././@LongLink", b'L', 10));
        t.extend(vec![b'n'; 512]);
        t.extend(header("short", b'0', 0));
        let mut ok = t.clone();
        ok.extend(vec![0u8; 1024]);
        assert_eq!(read_all_small_chunks(&ok).unwrap(), ok.len());
        // and an oversized one there is caught: the guard followed the PAX size exactly
        t.extend(header("././@LongLink", b'K', 2 << 20));
        t.extend(vec![b'k'; 4096]);
        assert!(read_all_small_chunks(&t).is_err());
        assert_eq!(pax_size(b"20 path=a/b/c/d/e/f\n11 size=42\n"), Some(42));
    }
}
