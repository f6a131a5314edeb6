//! One tar member as extraction sees it: its name split into components relative to the layer
//! root (`..` refused), and its metadata from the header and PAX records (mode, numeric owner,
//! mtime with its fraction, `SCHILY.xattr.*`, device numbers). No kernel interface.

use std::io::Read;

use rustix::fs::{FileType, Timespec};

use super::error::{show, tar_error, ExtractError};

/// Splits a member name into components relative to the layer root, refusing `..`.
pub fn split_member(name: &[u8]) -> Result<Vec<&[u8]>, ExtractError> {
    let mut out = Vec::new();
    for c in name.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(ExtractError::Escape(show(name))),
            c => out.push(c),
        }
    }
    Ok(out)
}

pub(super) fn join(comps: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    for (i, c) in comps.iter().enumerate() {
        if i > 0 {
            v.push(b'/');
        }
        v.extend_from_slice(c);
    }
    v
}

/// The metadata of one member, from its header and PAX records.
#[derive(Debug, Clone)]
pub(super) struct Meta {
    pub(super) mode: u32,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) mtime: Timespec,
    pub(super) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The node type and device number of a character, block or FIFO member.
pub(super) fn device_of(h: &tar::Header, kind: tar::EntryType) -> (FileType, u64) {
    let dev = || {
        let maj = h.device_major().ok().flatten().unwrap_or(0);
        let min = h.device_minor().ok().flatten().unwrap_or(0);
        rustix::fs::makedev(maj, min)
    };
    match kind {
        tar::EntryType::Char => (FileType::CharacterDevice, dev()),
        tar::EntryType::Block => (FileType::BlockDevice, dev()),
        _ => (FileType::Fifo, 0),
    }
}

/// Mode, numeric owner (PAX uid/gid applied by the tar crate), mtime (PAX `mtime` wins, with
/// its fraction) and `SCHILY.xattr.*` records.
pub(super) fn read_meta<R: Read>(
    e: &mut tar::Entry<'_, R>,
    member: &[u8],
) -> Result<Meta, ExtractError> {
    let h = e.header();
    let bad = |what: &'static str| ExtractError::Invalid(show(member), what);
    let mode = h.mode().map_err(|_| bad("bad mode field"))?;
    let uid = u32::try_from(h.uid().map_err(|_| bad("bad uid field"))?)
        .map_err(|_| bad("uid out of range"))?;
    let gid = u32::try_from(h.gid().map_err(|_| bad("bad gid field"))?)
        .map_err(|_| bad("gid out of range"))?;
    let mut mtime = Timespec {
        tv_sec: h.mtime().unwrap_or(0).min(i64::MAX as u64) as i64,
        tv_nsec: 0,
    };
    let mut xattrs = Vec::new();
    if let Some(exts) = e.pax_extensions().map_err(tar_error)? {
        for ext in exts {
            let ext = ext.map_err(tar_error)?;
            let key = ext.key_bytes();
            if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                xattrs.push((name.to_vec(), ext.value_bytes().to_vec()));
            } else if key == b"mtime" {
                if let Some(t) = parse_pax_time(ext.value_bytes()) {
                    mtime = t;
                }
            } else if key.starts_with(b"GNU.sparse.") {
                // the tar crate would store the sparse map and data as the file, under a
                // GNUSparseFile.N/ name: refuse rather than extract something else
                return Err(bad("a PAX-format sparse member (GNU.sparse.*) is not supported: re-create the archive with tar --format=gnu"));
            }
        }
    }
    Ok(Meta {
        mode,
        uid,
        gid,
        mtime,
        xattrs,
    })
}

/// A PAX time: `[-]SECONDS[.FRACTION]`.
fn parse_pax_time(v: &[u8]) -> Option<Timespec> {
    let s = std::str::from_utf8(v).ok()?.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let mut nsec: i64 = 0;
    if !frac.is_empty() {
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        nsec = digits.parse().ok()?;
    }
    if neg {
        if nsec > 0 {
            Some(Timespec {
                tv_sec: -secs - 1,
                tv_nsec: 1_000_000_000 - nsec,
            })
        } else {
            Some(Timespec {
                tv_sec: -secs,
                tv_nsec: 0,
            })
        }
    } else {
        Some(Timespec {
            tv_sec: secs,
            tv_nsec: nsec,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_are_relative_and_dotdot_is_refused() {
        assert_eq!(
            split_member(b"/etc//passwd").unwrap(),
            vec![&b"etc"[..], b"passwd"]
        );
        assert_eq!(split_member(b"./a/./b/").unwrap(), vec![&b"a"[..], b"b"]);
        assert!(split_member(b"./").unwrap().is_empty());
        assert!(matches!(
            split_member(b"../x"),
            Err(ExtractError::Escape(_))
        ));
        assert!(matches!(
            split_member(b"a/../../x"),
            Err(ExtractError::Escape(_))
        ));
        assert!(matches!(
            split_member(b"a/.."),
            Err(ExtractError::Escape(_))
        ));
    }

    #[test]
    fn pax_times_keep_their_fraction() {
        let t = parse_pax_time(b"1700000000.25").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1_700_000_000, 250_000_000));
        let t = parse_pax_time(b"-1.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (-2, 500_000_000));
        assert!(parse_pax_time(b"x").is_none());
    }
}
