//! Files and mounts: making directories, device nodes and links, reading links, file and
//! filesystem status, and mount(2). Kernel interfaces: mount(2), mkdirat(2), mknodat(2),
//! symlinkat(2), unlinkat(2), readlinkat(2), statx(2), statfs(2).

use core::ffi::CStr;

use super::{check, cptr, nr, syscall, Errno, SysResult, AT_FDCWD};

pub const AT_SYMLINK_NOFOLLOW: u32 = 0x100;

pub const S_IFMT: u32 = 0o170000;

pub const S_IFDIR: u32 = 0o040000;

pub const S_IFCHR: u32 = 0o020000;

pub const S_IFLNK: u32 = 0o120000;

pub const MS_RDONLY: u64 = 1;

pub const MS_NOSUID: u64 = 2;

pub const MS_NODEV: u64 = 4;

pub const MS_NOEXEC: u64 = 8;

pub const MS_STRICTATIME: u64 = 1 << 24;

const STATX_BASIC_STATS: u32 = 0x7ff;

pub const STATX_ATTR_MOUNT_ROOT: u64 = 0x2000;

pub const PROC_SUPER_MAGIC: i64 = 0x9fa0;

pub const TMPFS_MAGIC: i64 = 0x0102_1994;

/// mount(2). `data` is the filesystem's option string, if any.
pub fn mount(
    source: &CStr,
    target: &CStr,
    fstype: &CStr,
    flags: u64,
    data: Option<&CStr>,
) -> SysResult<()> {
    let data = data.map_or(0, cptr);
    // SAFETY: the three strings are NUL-terminated; data is NULL or a NUL-terminated string
    // (every filesystem rinit mounts takes a text option string).
    check(unsafe {
        syscall(
            nr::MOUNT,
            [
                cptr(source),
                cptr(target),
                cptr(fstype),
                flags as usize,
                data,
                0,
            ],
        )
    })
    .map(drop)
}

pub fn mkdir(path: &CStr, mode: u32) -> SysResult<()> {
    // SAFETY: path is NUL-terminated.
    check(unsafe {
        syscall(
            nr::MKDIRAT,
            [AT_FDCWD as usize, cptr(path), mode as usize, 0, 0, 0],
        )
    })
    .map(drop)
}

/// mknodat(2) of a character device `major:minor`.
pub fn mknod_char(path: &CStr, mode: u32, major: u32, minor: u32) -> SysResult<()> {
    // The kernel's new_encode_dev() layout of a dev_t in 32 bits.
    let dev = (minor & 0xff) | (major & 0xfff) << 8 | (minor & !0xff) << 12;
    // SAFETY: path is NUL-terminated.
    check(unsafe {
        syscall(
            nr::MKNODAT,
            [
                AT_FDCWD as usize,
                cptr(path),
                (S_IFCHR | mode) as usize,
                dev as usize,
                0,
                0,
            ],
        )
    })
    .map(drop)
}

pub fn symlink(target: &CStr, link: &CStr) -> SysResult<()> {
    // SAFETY: both strings are NUL-terminated.
    check(unsafe {
        syscall(
            nr::SYMLINKAT,
            [cptr(target), AT_FDCWD as usize, cptr(link), 0, 0, 0],
        )
    })
    .map(drop)
}

pub fn unlink(path: &CStr) -> SysResult<()> {
    // SAFETY: path is NUL-terminated.
    check(unsafe { syscall(nr::UNLINKAT, [AT_FDCWD as usize, cptr(path), 0, 0, 0, 0]) }).map(drop)
}

/// readlink(2) into `buf`; returns the bytes of the link target (not NUL-terminated).
pub fn readlink<'b>(path: &CStr, buf: &'b mut [u8]) -> SysResult<&'b [u8]> {
    // SAFETY: path is NUL-terminated; buf is writable for buf.len() bytes.
    let n = check(unsafe {
        syscall(
            nr::READLINKAT,
            [
                AT_FDCWD as usize,
                cptr(path),
                buf.as_mut_ptr() as usize,
                buf.len(),
                0,
                0,
            ],
        )
    })?;
    buf.get(..n).ok_or(Errno::ENAMETOOLONG)
}

/// `struct statx` (statx(2)), 256 bytes; only the fields rinit reads are named.
#[repr(C)]
pub struct Statx {
    pub mask: u32,
    pub blksize: u32,
    pub attributes: u64,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub mode: u16,
    _pad0: u16,
    pub ino: u64,
    pub size: u64,
    pub blocks: u64,
    pub attributes_mask: u64,
    _times: [u64; 8],
    pub rdev_major: u32,
    pub rdev_minor: u32,
    pub dev_major: u32,
    pub dev_minor: u32,
    _rest: [u64; 14],
}

impl Statx {
    pub fn file_type(&self) -> u32 {
        self.mode as u32 & S_IFMT
    }
}

/// statx(2) of `path`, not following a final symlink.
pub fn lstatx(path: &CStr) -> SysResult<Statx> {
    // SAFETY: Statx is plain integers, for which all-zero bytes are a valid value.
    let mut st: Statx = unsafe { core::mem::zeroed() };
    // SAFETY: path is NUL-terminated; st is a writable 256-byte struct statx.
    check(unsafe {
        syscall(
            nr::STATX,
            [
                AT_FDCWD as usize,
                cptr(path),
                AT_SYMLINK_NOFOLLOW as usize,
                STATX_BASIC_STATS as usize,
                &mut st as *mut Statx as usize,
                0,
            ],
        )
    })?;
    Ok(st)
}

/// statfs(2) of `path`: the filesystem's magic number (`f_type`).
pub fn statfs_type(path: &CStr) -> SysResult<i64> {
    // struct statfs on x86_64 is 15 64-bit words (120 bytes); f_type is the first.
    let mut buf = [0i64; 15];
    // SAFETY: path is NUL-terminated; buf is a writable 120-byte struct statfs.
    check(unsafe {
        syscall(
            nr::STATFS,
            [cptr(path), buf.as_mut_ptr() as usize, 0, 0, 0, 0],
        )
    })?;
    Ok(buf[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statx_has_the_kernel_size() {
        assert_eq!(core::mem::size_of::<Statx>(), 256);
    }
}
