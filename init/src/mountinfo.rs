//! Which filesystem type is mounted at a path, from /proc/self/mountinfo (proc(5)), read in
//! fixed-size chunks. rinit needs this to tell a tmpfs /dev (its own or rrun's) from the host's
//! devtmpfs, which statfs(2) cannot: both report TMPFS_MAGIC.

use crate::sys;
use crate::sys::io::{O_CLOEXEC, O_RDONLY};

/// The type of the topmost filesystem mounted at `mount_point`, copied into `out`.
pub fn fstype_at<'o>(mount_point: &[u8], out: &'o mut [u8; 32]) -> Option<&'o [u8]> {
    let fd = sys::io::open(c"/proc/self/mountinfo", O_RDONLY | O_CLOEXEC).ok()?;
    let mut buf = [0u8; 4096];
    let mut filled = 0;
    let mut skipping = false; // inside a line longer than the buffer
    let mut found_len = None;
    loop {
        let n = match sys::io::read(fd, &mut buf[filled..]) {
            Ok(n) => n,
            Err(sys::Errno::EINTR) => continue,
            Err(_) => break,
        };
        let at_end = n == 0;
        filled += n;
        let mut start = 0;
        while let Some(nl) = buf[start..filled].iter().position(|&c| c == b'\n') {
            let line = &buf[start..start + nl];
            if !skipping {
                if let Some(t) = fstype_in_line(line, mount_point) {
                    found_len = copy_into(t, out);
                }
            }
            skipping = false;
            start += nl + 1;
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
        if at_end {
            if !skipping {
                if let Some(t) = fstype_in_line(&buf[..filled], mount_point) {
                    found_len = copy_into(t, out);
                }
            }
            break;
        }
        if filled == buf.len() {
            skipping = true;
            filled = 0;
        }
    }
    let _ = sys::io::close(fd);
    found_len.map(|len| &out[..len])
}

fn copy_into(src: &[u8], out: &mut [u8; 32]) -> Option<usize> {
    let len = src.len().min(out.len());
    out[..len].copy_from_slice(&src[..len]);
    Some(len)
}

/// For one mountinfo line (`id parent maj:min root mount-point options [tags] - fstype source
/// super-options`), the fstype when the mount point is `mount_point`.
pub fn fstype_in_line<'l>(line: &'l [u8], mount_point: &[u8]) -> Option<&'l [u8]> {
    let mut fields = line.split(|&c| c == b' ');
    if fields.nth(4)? != mount_point {
        return None;
    }
    fields.find(|f| *f == b"-")?;
    fields.next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_type_after_the_separator() {
        let line = b"24 30 0:5 / /dev rw,nosuid,relatime shared:2 - devtmpfs udev rw,size=100k";
        assert_eq!(fstype_in_line(line, b"/dev"), Some(&b"devtmpfs"[..]));
        assert_eq!(fstype_in_line(line, b"/de"), None);
        let no_tags = b"80 79 0:40 / /dev rw - tmpfs tmpfs rw,mode=755";
        assert_eq!(fstype_in_line(no_tags, b"/dev"), Some(&b"tmpfs"[..]));
        assert_eq!(fstype_in_line(b"garbage", b"/dev"), None);
    }

    #[test]
    fn this_process_sees_proc_mounted() {
        let mut out = [0u8; 32];
        assert_eq!(fstype_at(b"/proc", &mut out), Some(&b"proc"[..]));
        assert_eq!(fstype_at(b"/no/such/mount", &mut out), None);
    }
}
