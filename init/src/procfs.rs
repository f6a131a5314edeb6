//! Finding rinit's descendants when it is not PID 1 (so kill(-1) is off limits): every process
//! whose chain of parents reaches rinit. Drives getdents64(2) on /proc and reads
//! /proc/PID/stat (proc(5)).

use crate::cbuf::CBuf;
use crate::sys;
use crate::sys::io::{O_CLOEXEC, O_DIRECTORY, O_RDONLY};

/// Longest chain of parents followed before giving up (deeper trees are not real).
const MAX_DEPTH: usize = 4096;

/// Calls `f` with the pid of every live descendant of `me`; returns how many there were.
pub fn for_each_descendant(me: i32, mut f: impl FnMut(i32)) -> usize {
    let Ok(dir) = sys::io::open(c"/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC) else {
        return 0;
    };
    let mut count = 0;
    let mut buf = [0u8; 4096];
    while let Ok(filled) = sys::io::getdents64(dir, &mut buf) {
        if filled == 0 {
            break;
        }
        for name in dirent_names(&buf[..filled]) {
            if let Some(pid) = parse_pid(name) {
                if pid != me && is_descendant(pid, me) {
                    f(pid);
                    count += 1;
                }
            }
        }
    }
    let _ = sys::io::close(dir);
    count
}

/// True when following parents from `pid` reaches `me`.
fn is_descendant(pid: i32, me: i32) -> bool {
    let mut p = pid;
    for _ in 0..MAX_DEPTH {
        match parent_of(p) {
            Some(parent) if parent == me => return true,
            Some(parent) if parent > 1 => p = parent,
            _ => return false,
        }
    }
    false
}

/// The parent pid of `pid`, from /proc/PID/stat.
fn parent_of(pid: i32) -> Option<i32> {
    let mut path = CBuf::<32>::new();
    path.push(b"/proc/")
        .ok()?
        .push_num(pid as i64)
        .ok()?
        .push(b"/stat")
        .ok()?;
    let fd = sys::io::open(path.as_cstr(), O_RDONLY | O_CLOEXEC).ok()?;
    let mut buf = [0u8; 512];
    let n = sys::io::read(fd, &mut buf);
    let _ = sys::io::close(fd);
    parse_stat_ppid(buf.get(..n.ok()?)?)
}

/// The ppid field of a /proc/PID/stat line: `pid (comm) state ppid ...`. comm may hold spaces
/// and parentheses, so the fields start after the last `)`.
pub fn parse_stat_ppid(stat: &[u8]) -> Option<i32> {
    let close = stat.iter().rposition(|&c| c == b')')?;
    let mut fields = stat
        .get(close + 1..)?
        .split(|&c| c == b' ')
        .filter(|f| !f.is_empty());
    let _state = fields.next()?;
    parse_pid(fields.next()?)
}

/// A positive decimal pid, or None.
pub fn parse_pid(text: &[u8]) -> Option<i32> {
    if text.is_empty() || text.len() > 10 {
        return None;
    }
    let mut v: i64 = 0;
    for &c in text {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as i64;
    }
    (v > 0 && v <= i32::MAX as i64).then_some(v as i32)
}

/// The names in a buffer of `struct linux_dirent64` records (getdents64(2)): d_ino (8 bytes),
/// d_off (8), d_reclen (2), d_type (1), then the NUL-terminated name.
pub fn dirent_names(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = 0;
    core::iter::from_fn(move || {
        let rec = buf.get(at..)?;
        let reclen = u16::from_ne_bytes([*rec.get(16)?, *rec.get(17)?]) as usize;
        if reclen < 20 {
            return None;
        }
        let name = rec.get(19..reclen.min(rec.len()))?;
        at += reclen;
        let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
        Some(&name[..end])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppid_survives_odd_command_names() {
        assert_eq!(parse_stat_ppid(b"42 (sleep) S 7 42 42 0 -1"), Some(7));
        assert_eq!(parse_stat_ppid(b"42 (a) b) (c) Z 1234 0"), Some(1234));
        assert_eq!(parse_stat_ppid(b"42 (x y) R 99"), Some(99));
        assert_eq!(parse_stat_ppid(b"42 (sleep"), None);
        assert_eq!(parse_stat_ppid(b"42 (k) S 0 0"), None);
    }

    #[test]
    fn pids_are_positive_decimals() {
        assert_eq!(parse_pid(b"1"), Some(1));
        assert_eq!(parse_pid(b"4194304"), Some(4_194_304));
        for bad in [&b"self"[..], b"", b"0", b"-1", b"12a", b"99999999999"] {
            assert_eq!(parse_pid(bad), None);
        }
    }

    #[test]
    fn lists_dirent_names() {
        let mut buf = Vec::new();
        for name in [&b"."[..], b"1", b"self", b"4321"] {
            let reclen = (19 + name.len() + 1).div_ceil(8) * 8;
            let mut rec = vec![0u8; reclen];
            rec[16..18].copy_from_slice(&(reclen as u16).to_ne_bytes());
            rec[19..19 + name.len()].copy_from_slice(name);
            buf.extend(rec);
        }
        let names: Vec<&[u8]> = dirent_names(&buf).collect();
        assert_eq!(names, vec![&b"."[..], b"1", b"self", b"4321"]);
    }

    #[test]
    fn this_test_process_descends_from_its_parent() {
        let me = std::process::id() as i32;
        assert!(is_descendant(me, sys::process::getppid()));
        assert!(!is_descendant(sys::process::getppid(), me));
    }
}
