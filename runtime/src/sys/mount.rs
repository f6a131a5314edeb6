//! Mounts: the new mount API (detached trees, filesystem contexts, idmapped and read-only
//! attributes) and the classic calls rrun still needs. Kernel interfaces: open_tree(2),
//! mount_setattr(2), fsopen(2), fsconfig(2), fsmount(2), move_mount(2), mount(2), umount2(2),
//! pivot_root(2).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use super::{check, check_fd, cstr};

/// `open_tree(2)`: a handle on (or with OPEN_TREE_CLONE a detached copy of) the mount at `path`.
pub fn open_tree(dirfd: RawFd, path: &Path, flags: libc::c_uint) -> io::Result<OwnedFd> {
    let c = cstr(path)?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    check_fd(unsafe { libc::syscall(libc::SYS_open_tree, dirfd, c.as_ptr(), flags) })
}

/// `mount_setattr(2)` on the mount referred to by `fd` itself (AT_EMPTY_PATH).
pub fn mount_setattr_fd(
    fd: BorrowedFd<'_>,
    recursive: bool,
    attr: &libc::mount_attr,
) -> io::Result<()> {
    let flags = libc::AT_EMPTY_PATH | if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: the empty path is a static C string; `attr` points to a live struct whose size we pass.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    })?;
    Ok(())
}

/// `mount_setattr(2)` on a path.
pub fn mount_setattr_path(path: &Path, attr: &libc::mount_attr) -> io::Result<()> {
    let c = cstr(path)?;
    // SAFETY: `c` and `attr` are valid for the call; the size is that of the struct passed.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c.as_ptr(),
            0,
            attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    })?;
    Ok(())
}

/// `fsopen(2)`: a filesystem context for `fstype`.
pub fn fsopen(fstype: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: `fstype` is a valid C string.
    check_fd(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), libc::FSOPEN_CLOEXEC) })
}

fn fsconfig(
    fd: BorrowedFd<'_>,
    cmd: libc::c_uint,
    key: Option<&CStr>,
    value: *const libc::c_void,
    aux: libc::c_int,
) -> io::Result<()> {
    let key = key.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: key is null or a valid C string; value is null or points to data valid for `cmd`.
    check(unsafe { libc::syscall(libc::SYS_fsconfig, fd.as_raw_fd(), cmd, key, value, aux) })?;
    Ok(())
}

/// `fsconfig(FSCONFIG_SET_STRING)`.
pub fn fsconfig_string(fd: BorrowedFd<'_>, key: &CStr, value: &CStr) -> io::Result<()> {
    fsconfig(
        fd,
        libc::FSCONFIG_SET_STRING,
        Some(key),
        value.as_ptr().cast(),
        0,
    )
}

/// `fsconfig(FSCONFIG_SET_FD)`: hand the filesystem a file descriptor (e.g. an overlay layer).
pub fn fsconfig_fd(fd: BorrowedFd<'_>, key: &CStr, value: BorrowedFd<'_>) -> io::Result<()> {
    fsconfig(
        fd,
        libc::FSCONFIG_SET_FD,
        Some(key),
        std::ptr::null(),
        value.as_raw_fd(),
    )
}

/// `fsconfig(FSCONFIG_SET_FLAG)`.
pub fn fsconfig_flag(fd: BorrowedFd<'_>, key: &CStr) -> io::Result<()> {
    fsconfig(fd, libc::FSCONFIG_SET_FLAG, Some(key), std::ptr::null(), 0)
}

/// `fsconfig(FSCONFIG_CMD_CREATE)`: create the superblock.
pub fn fsconfig_create(fd: BorrowedFd<'_>) -> io::Result<()> {
    fsconfig(fd, libc::FSCONFIG_CMD_CREATE, None, std::ptr::null(), 0)
}

/// `fsmount(2)`: a detached mount of the superblock in `fd`, with MOUNT_ATTR_* flags.
pub fn fsmount(fd: BorrowedFd<'_>, attr: u64) -> io::Result<OwnedFd> {
    // SAFETY: plain integer arguments.
    check_fd(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fd.as_raw_fd(),
            libc::FSMOUNT_CLOEXEC,
            attr as libc::c_uint,
        )
    })
}

/// `move_mount(2)` of the detached or attached mount `from` onto the object `to` (an open fd).
pub fn move_mount_fd(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: empty static strings; the fds are borrowed for the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to.as_raw_fd(),
            c"".as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH,
        )
    })?;
    Ok(())
}

/// `move_mount(2)` of the mount `from` onto the path `to`.
pub fn move_mount_path(from: BorrowedFd<'_>, to: &Path) -> io::Result<()> {
    let c = cstr(to)?;
    // SAFETY: valid C strings, borrowed fd.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    })?;
    Ok(())
}

/// `mount(2)`.
pub fn mount(
    src: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let src = src.map(cstr).transpose()?;
    let fstype = fstype.map(cstr).transpose()?;
    let data = data.map(cstr).transpose()?;
    let target = cstr(target)?;
    let p = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is null or a valid C string living until the call returns.
    let r = unsafe { libc::mount(p(&src), target.as_ptr(), p(&fstype), flags, p(&data).cast()) };
    check(r as libc::c_long).map(drop)
}

/// `umount2(2)`.
pub fn umount2(target: &Path, flags: libc::c_int) -> io::Result<()> {
    let c = cstr(target)?;
    // SAFETY: valid C string.
    check(unsafe { libc::umount2(c.as_ptr(), flags) } as libc::c_long).map(drop)
}

/// `pivot_root(2)`.
pub fn pivot_root(new_root: &Path, put_old: &Path) -> io::Result<()> {
    let a = cstr(new_root)?;
    let b = cstr(put_old)?;
    // SAFETY: valid C strings.
    check(unsafe { libc::syscall(libc::SYS_pivot_root, a.as_ptr(), b.as_ptr()) }).map(drop)
}
