//! Mounts: the new mount API (detached trees, filesystem contexts, idmapped and read-only
//! attributes) and the classic calls rrun still needs. Kernel interfaces: open_tree(2),
//! mount_setattr(2), fsopen(2), fsconfig(2), fsmount(2), move_mount(2), mount(2), umount2(2),
//! pivot_root(2).
//!
//! Paths are turned into C strings here ([`super::cstr`]: a NUL byte is an `InvalidInput`
//! error naming it); the calls go through rustix, but mount_setattr(2), which rustix lacks.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MountPropagationFlags, MoveMountFlags,
    OpenTreeFlags, UnmountFlags,
};

use super::{check, cstr};

/// `open_tree(2)`: a handle on (or with OPEN_TREE_CLONE a detached copy of) the mount at `path`
/// relative to `dirfd` (rustix::fs::CWD for the working directory).
pub fn open_tree(dirfd: BorrowedFd<'_>, path: &Path, flags: OpenTreeFlags) -> io::Result<OwnedFd> {
    let c = cstr(path)?;
    Ok(rustix::mount::open_tree(dirfd, c.as_c_str(), flags)?)
}

/// What `mount_setattr(2)` changes (struct mount_attr): attributes to set and to clear, and
/// with MOUNT_ATTR_IDMAP the user namespace whose id map the mount takes.
pub struct MountAttr<'a> {
    pub set: MountAttrFlags,
    pub clear: MountAttrFlags,
    pub userns: Option<BorrowedFd<'a>>,
}

impl MountAttr<'_> {
    fn raw(&self) -> libc::mount_attr {
        libc::mount_attr {
            attr_set: self.set.bits() as u64,
            attr_clr: self.clear.bits() as u64,
            propagation: 0,
            userns_fd: self.userns.map_or(0, |fd| fd.as_raw_fd() as u64),
        }
    }
}

/// `mount_setattr(2)` on the mount referred to by `fd` itself (AT_EMPTY_PATH), and with
/// `recursive` (AT_RECURSIVE) on every mount below it.
pub fn mount_setattr_fd(
    fd: BorrowedFd<'_>,
    recursive: bool,
    attr: &MountAttr<'_>,
) -> io::Result<()> {
    let flags = libc::AT_EMPTY_PATH | if recursive { libc::AT_RECURSIVE } else { 0 };
    let attr = attr.raw();
    // SAFETY: the empty path is a static C string; `attr` points to a live struct whose size
    // we pass; the descriptors it names are borrowed for the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    })?;
    Ok(())
}

/// `mount_setattr(2)` on the mount at `path`.
pub fn mount_setattr_path(path: &Path, attr: &MountAttr<'_>) -> io::Result<()> {
    let c = cstr(path)?;
    let attr = attr.raw();
    // SAFETY: `c` and `attr` are valid for the call; the size is that of the struct passed.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c.as_ptr(),
            0,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    })?;
    Ok(())
}

/// `fsopen(2)`: a filesystem context for `fstype`, close-on-exec.
pub fn fsopen(fstype: &CStr) -> io::Result<OwnedFd> {
    Ok(rustix::mount::fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC)?)
}

/// `fsconfig(FSCONFIG_SET_STRING)`.
pub fn fsconfig_string(fd: BorrowedFd<'_>, key: &CStr, value: &CStr) -> io::Result<()> {
    Ok(rustix::mount::fsconfig_set_string(fd, key, value)?)
}

/// `fsconfig(FSCONFIG_SET_FD)`: hand the filesystem a file descriptor (e.g. an overlay layer).
pub fn fsconfig_fd(fd: BorrowedFd<'_>, key: &CStr, value: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::mount::fsconfig_set_fd(fd, key, value)?)
}

/// `fsconfig(FSCONFIG_SET_FLAG)`.
pub fn fsconfig_flag(fd: BorrowedFd<'_>, key: &CStr) -> io::Result<()> {
    Ok(rustix::mount::fsconfig_set_flag(fd, key)?)
}

/// `fsconfig(FSCONFIG_CMD_CREATE)`: create the superblock.
pub fn fsconfig_create(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::mount::fsconfig_create(fd)?)
}

/// `fsmount(2)`: a detached, close-on-exec mount of the superblock in `fd`, with `attr`.
pub fn fsmount(fd: BorrowedFd<'_>, attr: MountAttrFlags) -> io::Result<OwnedFd> {
    Ok(rustix::mount::fsmount(
        fd,
        FsMountFlags::FSMOUNT_CLOEXEC,
        attr,
    )?)
}

/// `move_mount(2)` of the detached or attached mount `from` onto the object `to` (an open fd).
pub fn move_mount_fd(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::mount::move_mount(
        from,
        c"",
        to,
        c"",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )?)
}

/// `move_mount(2)` of the mount `from` onto the path `to`.
pub fn move_mount_path(from: BorrowedFd<'_>, to: &Path) -> io::Result<()> {
    let c = cstr(to)?;
    Ok(rustix::mount::move_mount(
        from,
        c"",
        rustix::fs::CWD,
        c.as_c_str(),
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?)
}

/// `mount(2)` of a filesystem `fstype` from `src` (its option string `data`, if any).
pub fn mount(
    src: &str,
    target: &Path,
    fstype: &str,
    flags: MountFlags,
    data: Option<&str>,
) -> io::Result<()> {
    let src = cstr(src)?;
    let fstype = cstr(fstype)?;
    let data = data.map(cstr).transpose()?;
    let target = cstr(target)?;
    Ok(rustix::mount::mount(
        src.as_c_str(),
        target.as_c_str(),
        fstype.as_c_str(),
        flags,
        data.as_deref(),
    )?)
}

/// `mount(2)` of nothing on `target` with propagation `flags` (MS_PRIVATE, MS_REC, ...).
pub fn change_propagation(target: &Path, flags: MountPropagationFlags) -> io::Result<()> {
    let c = cstr(target)?;
    Ok(rustix::mount::mount_change(c.as_c_str(), flags)?)
}

/// `umount2(2)`.
pub fn umount2(target: &Path, flags: UnmountFlags) -> io::Result<()> {
    let c = cstr(target)?;
    Ok(rustix::mount::unmount(c.as_c_str(), flags)?)
}

/// `pivot_root(2)`.
pub fn pivot_root(new_root: &Path, put_old: &Path) -> io::Result<()> {
    let a = cstr(new_root)?;
    let b = cstr(put_old)?;
    Ok(rustix::process::pivot_root(a.as_c_str(), b.as_c_str())?)
}
