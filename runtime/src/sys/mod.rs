//! Checked wrappers over the Linux system calls rrun needs that std does not offer, one
//! module per kernel interface: [`mount`], [`fd`], [`process`], [`ns`], [`ids`], [`procfs`],
//! [`signal`], [`spawn`], [`bpf`], [`netdevice`], [`memory`], [`keyring`]. They call rustix where it covers the call;
//! raw libc and `unsafe` in rrun are here only. This module holds the shared return-value
//! checks, [`cstr`] and the filesystem magic numbers rrun compares statfs(2) answers with.

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

pub mod bpf;
pub mod fd;
pub mod ids;
pub mod keyring;
pub mod memory;
pub mod mount;
pub mod netdevice;
pub mod ns;
pub mod process;
pub mod procfs;
pub mod seccomp;
pub mod signal;
pub mod spawn;

/// statfs(2) `f_type` of a cgroup v2 filesystem (include/uapi/linux/magic.h).
pub const CGROUP2_SUPER_MAGIC: rustix::fs::FsWord = 0x6367_7270;
/// statfs(2) `f_type` of a cgroup v1 filesystem (include/uapi/linux/magic.h).
pub const CGROUP_SUPER_MAGIC: rustix::fs::FsWord = 0x0027_e0eb;
/// statfs(2) `f_type` of procfs (include/uapi/linux/magic.h).
pub const PROC_SUPER_MAGIC: rustix::fs::FsWord = 0x9fa0;
/// statfs(2) `f_type` of sysfs (include/uapi/linux/magic.h).
pub const SYSFS_MAGIC: rustix::fs::FsWord = 0x6265_6572;
/// statfs(2) `f_type` of a tmpfs (include/uapi/linux/magic.h).
pub const TMPFS_MAGIC: rustix::fs::FsWord = 0x0102_1994;

/// A C string from a path or str; interior NUL bytes are an `InvalidInput` error.
pub fn cstr(p: impl AsRef<std::ffi::OsStr>) -> io::Result<CString> {
    CString::new(p.as_ref().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn check_fd(ret: libc::c_long) -> io::Result<OwnedFd> {
    let fd = check(ret)?;
    // SAFETY: the kernel just returned this descriptor to us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}
