//! Descriptors: opening, reading, writing, closing, and reading directories.
//! Kernel interfaces: openat(2), read(2), write(2), close(2), close_range(2), getdents64(2).

use core::ffi::CStr;

use super::{call_ints, check, cptr, nr, syscall, Errno, SysResult, AT_FDCWD};

pub const O_RDONLY: u32 = 0;

pub const O_DIRECTORY: u32 = 0o200000;

pub const O_CLOEXEC: u32 = 0o2000000;

pub fn write(fd: i32, buf: &[u8]) -> SysResult<usize> {
    // SAFETY: buf is a valid, readable slice of buf.len() bytes for the call.
    check(unsafe {
        syscall(
            nr::WRITE,
            [fd as usize, buf.as_ptr() as usize, buf.len(), 0, 0, 0],
        )
    })
}

/// Writes all of `buf`, retrying short writes and EINTR; gives up on any other error.
pub fn write_all(fd: i32, mut buf: &[u8]) -> SysResult<()> {
    while !buf.is_empty() {
        match write(fd, buf) {
            Ok(0) => return Err(Errno(5)),
            Ok(n) => buf = buf.get(n..).unwrap_or(&[]),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub fn read(fd: i32, buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: buf is a valid, writable slice of buf.len() bytes for the call.
    check(unsafe {
        syscall(
            nr::READ,
            [fd as usize, buf.as_mut_ptr() as usize, buf.len(), 0, 0, 0],
        )
    })
}

pub fn close(fd: i32) -> SysResult<()> {
    call_ints(nr::CLOSE, [fd as usize, 0, 0, 0, 0, 0]).map(drop)
}

/// close_range(2): closes every descriptor from `first` to `last` (Linux >= 5.9).
pub fn close_range(first: u32, last: u32) -> SysResult<()> {
    call_ints(nr::CLOSE_RANGE, [first as usize, last as usize, 0, 0, 0, 0]).map(drop)
}

/// openat(2) relative to the working directory; returns the new descriptor.
pub fn open(path: &CStr, flags: u32) -> SysResult<i32> {
    // SAFETY: path is a NUL-terminated string valid for the call.
    check(unsafe {
        syscall(
            nr::OPENAT,
            [AT_FDCWD as usize, cptr(path), flags as usize, 0, 0, 0],
        )
    })
    .map(|fd| fd as i32)
}

/// getdents64(2) into `buf`; returns how many bytes of `linux_dirent64` records were filled.
pub fn getdents64(fd: i32, buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: buf is writable for buf.len() bytes.
    check(unsafe {
        syscall(
            nr::GETDENTS64,
            [fd as usize, buf.as_mut_ptr() as usize, buf.len(), 0, 0, 0],
        )
    })
}
