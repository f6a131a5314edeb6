//! The container's view of its own cgroups at /sys/fs/cgroup, read-only, as Docker and Podman
//! give it (so programs can read their limits: JVMs, Go's GOMAXPROCS, `nproc`-like tools).
//! Made by the child after it entered its cgroup namespace, so each mount shows the container's
//! cgroup as its root: pure cgroup v2, the v2 hierarchy mounted at /sys/fs/cgroup; otherwise a
//! read-only tmpfs there holding one mount per hierarchy the container has a cgroup of its own
//! in (`memory`, `cpu,cpuacct` with `cpu` and `cpuacct` links, `unified` for v2 on a hybrid
//! host). Kernel docs: cgroup_namespaces(7), cgroups(7), fsopen(2), fsmount(2), move_mount(2),
//! mount_setattr(2).

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{Mode, OFlags};
use rustix::mount::MountAttrFlags;

use crate::cgroups::InsideMount;
use crate::error::{Context, Error, Result};
use crate::inroot::Root;
use crate::sys;

/// statfs(2) f_type of sysfs (include/uapi/linux/magic.h).
const SYSFS_MAGIC: u64 = 0x6265_6572;

/// The attributes of every mount made here: read-only, and nothing to execute or open as a
/// device.
const RO: MountAttrFlags = MountAttrFlags::MOUNT_ATTR_RDONLY
    .union(MountAttrFlags::MOUNT_ATTR_NOSUID)
    .union(MountAttrFlags::MOUNT_ATTR_NODEV)
    .union(MountAttrFlags::MOUNT_ATTR_NOEXEC);

/// Mounts `mounts` at /sys/fs/cgroup in the container's root (nothing when empty, or when
/// /sys is not the container's sysfs, as with `--net host`, where sysfs cannot be made).
pub fn mount_inside(root: &Root, mounts: &[InsideMount]) -> Result<()> {
    if mounts.is_empty() {
        return Ok(());
    }
    let Ok(target) = root.resolve("/sys/fs/cgroup", OFlags::PATH | OFlags::DIRECTORY) else {
        return Ok(());
    };
    // Only over the sysfs the container got (statfs(2) SYSFS_MAGIC), not over an image's
    // folder or a volume the user put at /sys.
    let on_sysfs = rustix::fs::fstatfs(&target).is_ok_and(|s| s.f_type as u64 == SYSFS_MAGIC);
    if !on_sysfs {
        return Ok(());
    }
    if let [m] = mounts {
        if m.v2 && m.dir.is_empty() {
            let fs = cgroup_fs(m)?;
            return sys::mount::move_mount_fd(fs.as_fd(), target.as_fd())
                .ctx(|| "mount the container's cgroup at /sys/fs/cgroup".into());
        }
    }
    let tmpfs = layout_tmpfs(mounts)?;
    sys::mount::move_mount_fd(tmpfs.as_fd(), target.as_fd())
        .ctx(|| "mount a tmpfs at /sys/fs/cgroup".into())?;
    for m in mounts {
        let dir = rustix::fs::openat(
            &tmpfs,
            m.dir.as_str(),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| sys_err(format!("open /sys/fs/cgroup/{}", m.dir), e))?;
        let fs = cgroup_fs(m)?;
        sys::mount::move_mount_fd(fs.as_fd(), dir.as_fd())
            .ctx(|| format!("mount the container's cgroup at /sys/fs/cgroup/{}", m.dir))?;
    }
    Ok(())
}

/// A small detached tmpfs with a folder per hierarchy and the links of co-mounted ones, made
/// read-only before it is attached.
fn layout_tmpfs(mounts: &[InsideMount]) -> Result<OwnedFd> {
    let fs = sys::mount::fsopen(c"tmpfs").ctx(|| "fsopen tmpfs for /sys/fs/cgroup".into())?;
    for (k, v) in [(c"mode", c"755"), (c"size", c"64k")] {
        sys::mount::fsconfig_string(fs.as_fd(), k, v).ctx(|| "/sys/fs/cgroup's tmpfs".into())?;
    }
    sys::mount::fsconfig_create(fs.as_fd()).ctx(|| "create /sys/fs/cgroup's tmpfs".into())?;
    let mnt = sys::mount::fsmount(fs.as_fd(), RO.difference(MountAttrFlags::MOUNT_ATTR_RDONLY))
        .ctx(|| "fsmount /sys/fs/cgroup's tmpfs".into())?;
    for m in mounts {
        if m.dir.is_empty() || m.dir.contains('/') || m.dir.starts_with('.') {
            return Err(Error::Child(format!(
                "bad cgroup hierarchy name {:?} for /sys/fs/cgroup",
                m.dir
            )));
        }
        rustix::fs::mkdirat(&mnt, m.dir.as_str(), Mode::from_raw_mode(0o755))
            .map_err(|e| sys_err(format!("create /sys/fs/cgroup/{}", m.dir), e))?;
        for link in m.links().into_iter().filter(|l| *l != m.dir) {
            rustix::fs::symlinkat(m.dir.as_str(), &mnt, link.as_str())
                .map_err(|e| sys_err(format!("link /sys/fs/cgroup/{link}"), e))?;
        }
    }
    let ro = sys::mount::MountAttr {
        set: MountAttrFlags::MOUNT_ATTR_RDONLY,
        clear: MountAttrFlags::empty(),
        userns: None,
    };
    sys::mount::mount_setattr_fd(mnt.as_fd(), false, &ro)
        .ctx(|| "make /sys/fs/cgroup's tmpfs read-only".into())?;
    Ok(mnt)
}

/// A read-only detached mount of one hierarchy, in the caller's cgroup namespace (its root is
/// the container's cgroup).
fn cgroup_fs(m: &InsideMount) -> Result<OwnedFd> {
    let what = if m.v2 { "cgroup2" } else { "cgroup" };
    let fs = sys::mount::fsopen(if m.v2 { c"cgroup2" } else { c"cgroup" })
        .ctx(|| format!("fsopen {what}"))?;
    for c in &m.controllers {
        let bad = || Error::Child(format!("bad cgroup controller {c:?}"));
        match c.split_once('=') {
            Some((k, v)) => {
                let (k, v) = (
                    CString::new(k).map_err(|_| bad())?,
                    CString::new(v).map_err(|_| bad())?,
                );
                sys::mount::fsconfig_string(fs.as_fd(), &k, &v)
            }
            None => {
                sys::mount::fsconfig_flag(fs.as_fd(), &CString::new(c.as_str()).map_err(|_| bad())?)
            }
        }
        .ctx(|| format!("{what} option {c}"))?;
    }
    sys::mount::fsconfig_create(fs.as_fd())
        .ctx(|| format!("create a {what} mount of {}", m.controllers.join(",")))?;
    sys::mount::fsmount(fs.as_fd(), RO).ctx(|| format!("fsmount {what}"))
}

fn sys_err(what: String, e: rustix::io::Errno) -> Error {
    Error::Sys {
        what,
        source: e.into(),
    }
}
