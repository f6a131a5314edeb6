//! Giving back the resident pages a long-lived process will not touch again. Kernel
//! interfaces: madvise(2) MADV_DONTNEED, /proc/self/smaps (proc(5)); glibc's malloc_trim(3).

use std::ffi::c_void;

/// One mapping of /proc/self/smaps: its range, whether it may be written, whether it is
/// backed by a file, and its `Anonymous:` size in kB (pages copied on write).
struct Mapping {
    start: usize,
    end: usize,
    writable: bool,
    file: bool,
    anonymous_kb: u64,
}

/// The mappings of /proc/self/smaps; an unreadable or odd file gives what was parsed.
fn mappings() -> Vec<Mapping> {
    let Ok(text) = std::fs::read_to_string("/proc/self/smaps") else {
        return Vec::new();
    };
    let mut out: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some(first) = f.next() else { continue };
        if first == "Anonymous:" {
            if let (Some(m), Some(n)) = (out.last_mut(), f.next().and_then(|n| n.parse().ok())) {
                m.anonymous_kb = n;
            }
            continue;
        }
        // A header: "start-end perms offset dev inode [path]"; other lines are "Key: value".
        let Some((s, e)) = first.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (usize::from_str_radix(s, 16), usize::from_str_radix(e, 16))
        else {
            continue;
        };
        let (Some(perms), Some(_offset), Some(_dev), Some(inode)) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        out.push(Mapping {
            start,
            end,
            writable: perms.as_bytes().get(1) == Some(&b'w'),
            file: inode != "0",
            // Unknown until its Anonymous: line: assume the worst.
            anonymous_kb: u64::MAX,
        });
    }
    out
}

/// Drops this process's resident pages of every read-only, file-backed mapping that holds no
/// anonymous page (`Anonymous: 0 kB` in /proc/self/smaps): the code and read-only data of the
/// executable that start-up ran. Each such page is an unmodified page-cache page, so
/// MADV_DONTNEED loses nothing: the next access maps it again from the file (madvise(2)).
/// Writable mappings, anonymous ones and those holding copied-on-write pages (a static-pie's
/// relocated data) are left alone. Returns the bytes advised; failures are skipped, since
/// this only lowers the resident set.
///
/// Call it only while the process has one thread: another thread could map or unmap between
/// the read of smaps and the madvise.
pub fn drop_clean_file_pages() -> usize {
    let mut advised = 0;
    for m in mappings() {
        if m.writable || !m.file || m.anonymous_kb != 0 || m.end <= m.start {
            continue;
        }
        let len = m.end - m.start;
        // SAFETY: the range is one whole mapping of this single-threaded process, read-only and
        // file-backed, with no anonymous (modified) page. MADV_DONTNEED only unmaps page-cache
        // pages that the next access faults in again unchanged: no memory Rust code refers to
        // changes contents or goes away.
        let r = unsafe {
            rustix::mm::madvise(
                m.start as *mut c_void,
                len,
                rustix::mm::Advice::LinuxDontNeed,
            )
        };
        if r.is_ok() {
            advised += len;
        }
    }
    advised
}

/// Returns the free memory of the heap to the kernel (glibc's malloc_trim(3) with no pad: the
/// top of the heap is shrunk and free pages inside it are given back with MADV_DONTNEED).
pub fn trim_heap() {
    // SAFETY: malloc_trim only works on glibc's own free lists, under glibc's malloc lock; it
    // frees nothing that is in use.
    unsafe {
        libc::malloc_trim(0);
    }
}
