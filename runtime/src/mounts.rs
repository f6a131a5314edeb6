//! Building the container's mounts with the new mount API: idmapped clones of the image layers
//! and volumes, and the overlay root made from them. Runs in rrun (root in the initial user ns);
//! the detached mounts are handed to the child, which attaches them inside its own namespace.
//! Kernel docs: open_tree(2), mount_setattr(2) (MOUNT_ATTR_IDMAP), fsopen(2)/fsconfig(2)/fsmount(2),
//! Documentation/filesystems/overlayfs.rst ("lowerdir+" and layers given as file descriptors).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::mount::{MountAttrFlags, OpenTreeFlags};

use crate::error::{Context, Result};
use crate::spec::Volume;
use crate::sys;
use crate::sys::mount::MountAttr;

/// A detached copy of the tree at `path` (not its submounts), optionally idmapped to the user
/// namespace `userns` and/or read-only.
pub fn clone_tree(path: &Path, userns: Option<BorrowedFd<'_>>, readonly: bool) -> Result<OwnedFd> {
    let fd = sys::mount::open_tree(
        rustix::fs::CWD,
        path,
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )
    .ctx(|| format!("open_tree {}", path.display()))?;
    set_attrs(fd, path, userns, readonly)
}

/// A volume's source as a detached mount (see [`clone_tree`]), cloned from the descriptor
/// opened when the command line was read, so the host path is resolved once; by path only for
/// a volume read back from state.json.
pub fn clone_volume(v: &Volume, userns: Option<BorrowedFd<'_>>) -> Result<OwnedFd> {
    let Some(src) = &v.source_fd else {
        return clone_tree(&v.source, userns, v.readonly);
    };
    let fd = sys::mount::open_tree(
        src.as_fd(),
        Path::new(""),
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_EMPTY_PATH,
    )
    .ctx(|| format!("open_tree {}", v.source.display()))?;
    set_attrs(fd, &v.source, userns, v.readonly)
}

fn set_attrs(
    fd: OwnedFd,
    path: &Path,
    userns: Option<BorrowedFd<'_>>,
    readonly: bool,
) -> Result<OwnedFd> {
    let mut attr = MountAttr {
        set: MountAttrFlags::empty(),
        clear: MountAttrFlags::empty(),
        userns: None,
    };
    if let Some(ns) = userns {
        attr.set |= MountAttrFlags::MOUNT_ATTR_IDMAP;
        attr.userns = Some(ns);
    }
    if readonly {
        attr.set |= MountAttrFlags::MOUNT_ATTR_RDONLY;
    }
    if !attr.set.is_empty() {
        sys::mount::mount_setattr_fd(fd.as_fd(), false, &attr).ctx(|| {
            if userns.is_some() {
                format!(
                    "idmapped mount of {} (the filesystem must support idmapped mounts)",
                    path.display()
                )
            } else {
                format!("read-only bind of {}", path.display())
            }
        })?;
    }
    Ok(fd)
}

/// The root overlay's mount attributes: nodev (device nodes shipped in an image open nothing;
/// the devices cgroup is the other guard), but not nosuid: setuid programs of the image must
/// work for container root, as in Docker.
pub const ROOT_ATTRS: MountAttrFlags = MountAttrFlags::MOUNT_ATTR_NODEV;

/// Layer folders top first with later duplicates dropped. The kernel refuses a layer listed
/// twice ("overlayfs: conflicting lowerdir path", ELOOP; checked on 6.18), and for overlay
/// lookups a layer also listed higher up can never contribute anything, so dropping the lower
/// copy is exact.
pub fn overlay_layer_order(bottom_first: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::with_capacity(bottom_first.len());
    for p in bottom_first.iter().rev() {
        if !out.contains(p) {
            out.push(p.clone());
        }
    }
    out
}

/// An overlay superblock over `layers` (top first, as open mount fds, possibly idmapped) with
/// its writable part in the folders `upper` and `work`, returned as a detached mount.
pub fn overlay(layers: &[OwnedFd], upper: &Path, work: &Path) -> Result<OwnedFd> {
    // Options that would make the overlay depend on inode numbers or xattr-based features
    // across layers are left at the kernel's defaults (index=off, metacopy=off).
    let fs = sys::mount::fsopen(c"overlay").ctx(|| "fsopen overlay".into())?;
    for (i, l) in layers.iter().enumerate() {
        sys::mount::fsconfig_fd(fs.as_fd(), c"lowerdir+", l.as_fd())
            .ctx(|| format!("overlay: add lower layer {i}"))?;
    }
    let u = sys::cstr(upper).ctx(|| upper.display().to_string())?;
    let w = sys::cstr(work).ctx(|| work.display().to_string())?;
    sys::mount::fsconfig_string(fs.as_fd(), c"upperdir", &u)
        .ctx(|| format!("overlay upperdir {}", upper.display()))?;
    sys::mount::fsconfig_string(fs.as_fd(), c"workdir", &w)
        .ctx(|| format!("overlay workdir {}", work.display()))?;
    sys::mount::fsconfig_create(fs.as_fd())
        .ctx(|| format!("create the overlay over {} layers", layers.len()))?;
    sys::mount::fsmount(fs.as_fd(), ROOT_ATTRS).ctx(|| "fsmount overlay".into())
}

/// A rootless overlay, made inside the user namespace: layers (top first) and upper/work by
/// path, with `userxattr` (overlay attributes and whiteouts in the user.overlay.* namespace,
/// as rootless rbuild writes them).
pub fn overlay_by_path(layers_top_first: &[PathBuf], upper: &Path, work: &Path) -> Result<OwnedFd> {
    let fs = sys::mount::fsopen(c"overlay").ctx(|| "fsopen overlay".into())?;
    sys::mount::fsconfig_flag(fs.as_fd(), c"userxattr")
        .ctx(|| "overlay option userxattr".into())?;
    for l in layers_top_first {
        let c = sys::cstr(l).ctx(|| l.display().to_string())?;
        sys::mount::fsconfig_string(fs.as_fd(), c"lowerdir+", &c)
            .ctx(|| format!("overlay: add lower layer {}", l.display()))?;
    }
    let u = sys::cstr(upper).ctx(|| upper.display().to_string())?;
    let w = sys::cstr(work).ctx(|| work.display().to_string())?;
    sys::mount::fsconfig_string(fs.as_fd(), c"upperdir", &u)
        .ctx(|| format!("overlay upperdir {}", upper.display()))?;
    sys::mount::fsconfig_string(fs.as_fd(), c"workdir", &w)
        .ctx(|| format!("overlay workdir {}", work.display()))?;
    sys::mount::fsconfig_create(fs.as_fd())
        .ctx(|| format!("create the overlay over {} layers", layers_top_first.len()))?;
    sys::mount::fsmount(fs.as_fd(), ROOT_ATTRS).ctx(|| "fsmount overlay".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_reversed_and_lower_duplicates_dropped() {
        let p = |s: &str| PathBuf::from(s);
        let got = overlay_layer_order(&[p("a"), p("b"), p("a"), p("c")]);
        assert_eq!(got, vec![p("c"), p("a"), p("b")]);
    }
}
