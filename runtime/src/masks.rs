//! The read-only and masked kernel paths of the container's /proc and /sys (runc's default
//! `readonlyPaths` and `maskedPaths`, plus Docker's powercap mask): host-wide kernel knobs and
//! information leaks out of reach of container root. Drives open_tree(2), mount_setattr(2),
//! fsopen(2)/fsmount(2) and move_mount(2); see proc(5) and sysfs(5).
//!
//! Under `--userns host` these are what stops container root (real root there, with Docker's
//! default capabilities, see [`crate::caps`]) from writing host sysctls or reading kernel
//! memory; without CAP_SYS_ADMIN it cannot unmount them. Under `--userns remap` they are
//! defence in depth only: container root owns its mount namespace and could unmount them, but
//! the kernel checks every host-wide write against its unprivileged host id anyway.

use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{FileType, OFlags};
use rustix::io::Errno;
use rustix::mount::{MountAttrFlags, OpenTreeFlags};

use crate::error::{Context, Error, Result};
use crate::inroot::Root;
use crate::sys;
use crate::sys::mount::MountAttr;

/// Made read-only (bind-mounted over themselves): writing there changes the host's kernel.
pub const READONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Hidden: files behind /dev/null, directories behind an empty read-only tmpfs.
pub const MASKED: [&str; 11] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Applies [`READONLY`] and [`MASKED`] to the container's /proc and /sys (those that exist:
/// kernels differ, and /sys is absent with `--net host` under a user namespace). `null` is a
/// detached bind of a /dev/null to clone over masked files.
pub fn apply(root: &Root, null: &OwnedFd) -> Result<()> {
    for p in READONLY {
        let Some(fd) = existing(root, p)? else {
            continue;
        };
        let bind = sys::mount::open_tree(
            fd.as_fd(),
            std::path::Path::new(""),
            OpenTreeFlags::OPEN_TREE_CLONE
                | OpenTreeFlags::OPEN_TREE_CLOEXEC
                | OpenTreeFlags::AT_EMPTY_PATH
                | OpenTreeFlags::AT_RECURSIVE,
        )
        .ctx(|| format!("bind {p} to make it read-only"))?;
        let attr = MountAttr {
            set: MountAttrFlags::MOUNT_ATTR_RDONLY
                | MountAttrFlags::MOUNT_ATTR_NOSUID
                | MountAttrFlags::MOUNT_ATTR_NODEV
                | MountAttrFlags::MOUNT_ATTR_NOEXEC,
            clear: MountAttrFlags::empty(),
            userns: None,
        };
        sys::mount::mount_setattr_fd(bind.as_fd(), true, &attr)
            .ctx(|| format!("make {p} read-only"))?;
        sys::mount::move_mount_fd(bind.as_fd(), fd.as_fd())
            .ctx(|| format!("mount {p} read-only"))?;
    }
    for p in MASKED {
        let Some(fd) = existing(root, p)? else {
            continue;
        };
        let is_dir = rustix::fs::fstat(&fd)
            .map(|s| FileType::from_raw_mode(s.st_mode) == FileType::Directory)
            .unwrap_or(false);
        let cover = if is_dir {
            empty_tmpfs().ctx(|| format!("an empty tmpfs to mask {p}"))?
        } else {
            sys::mount::open_tree(
                null.as_fd(),
                std::path::Path::new(""),
                OpenTreeFlags::OPEN_TREE_CLONE
                    | OpenTreeFlags::OPEN_TREE_CLOEXEC
                    | OpenTreeFlags::AT_EMPTY_PATH,
            )
            .ctx(|| format!("bind /dev/null to mask {p}"))?
        };
        sys::mount::move_mount_fd(cover.as_fd(), fd.as_fd()).ctx(|| format!("mask {p}"))?;
    }
    Ok(())
}

/// An O_PATH descriptor of `p` (not following a final symbolic link), None when missing.
fn existing(root: &Root, p: &str) -> Result<Option<OwnedFd>> {
    match root.resolve(p, OFlags::PATH | OFlags::NOFOLLOW) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::NOENT | Errno::NOTDIR) => Ok(None),
        Err(e) => Err(Error::Sys {
            what: format!("open {p} in the container"),
            source: e.into(),
        }),
    }
}

/// A detached, read-only, empty tmpfs (size 0 would mean unlimited: 4k is the least).
fn empty_tmpfs() -> std::io::Result<OwnedFd> {
    let fs = sys::mount::fsopen(c"tmpfs")?;
    sys::mount::fsconfig_string(fs.as_fd(), c"size", c"4k")?;
    sys::mount::fsconfig_string(fs.as_fd(), c"mode", c"555")?;
    sys::mount::fsconfig_create(fs.as_fd())?;
    sys::mount::fsmount(
        fs.as_fd(),
        MountAttrFlags::MOUNT_ATTR_RDONLY
            | MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOEXEC,
    )
}
