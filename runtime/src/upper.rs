//! Owns where a container's overlay upper and work dirs live, and their host path (`inspect`'s
//! `upper_dir`). Kernel interfaces: tmpfs (Documentation/filesystems/tmpfs.rst: size=, memory
//! cgroup charging), mount(2), statfs(2), flock(2).
//!
//! - Containers kept after they exit (named or detached without --rm): `<root>/containers/<id>/
//!   {upper,work}`, on the store's filesystem, kept until `rrun rm`.
//! - Containers removed on exit (unnamed foreground runs, --rm), as root: `/run/rbox/containers/
//!   <id>/{upper,work}` in one tmpfs that rrun mounts there the first time it needs it (mode
//!   0700, nosuid, nodev, `size=25%` of RAM for all such containers together). There is no
//!   mount per container, so a crash cannot leak one; `rm` removes the container's folder there
//!   and the last removal unmounts the tmpfs (MNT_DETACH), so a host with no such container has
//!   no rbox mount. Mounting, making a folder there and unmounting are serialised by a flock(2)
//!   of `/run/rbox`, so the tmpfs is never unmounted while a container's folder is in it. Why not
//!   the disk: an overlay whose upper dir is on a disk
//!   filesystem writes and syncs it (ext4 here: about +12 ms per container, three times the
//!   whole start-up); a tmpfs upper costs two mkdirs. A container's writes there are charged to
//!   its memory cgroup, so `--memory` also bounds its share of the tmpfs.
//! - Rootless: rrun cannot mount a tmpfs on the host, so every container keeps its upper dir in
//!   the store (a slower start for containers removed on exit, but an honest `upper_dir`).

use std::fs;
use std::os::unix::fs::{chown, DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::mount::{MountFlags, UnmountFlags};
use serde::{Deserialize, Serialize};

use crate::error::{Context, Result};
use crate::idmap::IdMaps;
use crate::lock::{self, Lock};
use crate::sys;

/// Where rrun's tmpfs for the upper dirs of containers removed on exit is mounted.
pub const RUN_DIR: &str = "/run/rbox/containers";
/// Its mount options: only root may enter; a quarter of RAM for all those containers.
pub const RUN_TMPFS_OPTIONS: &str = "mode=0700,size=25%";

/// Where a container's upper and work dirs are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Place {
    /// In the container's folder in the store.
    #[default]
    Store,
    /// In rrun's tmpfs at [`RUN_DIR`].
    Run,
}

/// The place for a new container: rrun's tmpfs for containers removed on exit, as root.
pub fn choose(auto_remove: bool, rootless: bool) -> Place {
    if auto_remove && !rootless {
        Place::Run
    } else {
        Place::Store
    }
}

/// The folder holding `upper/` and `work/` of container `id` (a validated id), whose folder
/// in the store is `store_dir`.
pub fn base(store_dir: &Path, id: &str, place: Place) -> PathBuf {
    match place {
        Place::Store => store_dir.to_path_buf(),
        Place::Run => Path::new(RUN_DIR).join(id),
    }
}

/// The host path of the overlay's upper dir.
pub fn upper_dir(store_dir: &Path, id: &str, place: Place) -> PathBuf {
    base(store_dir, id, place).join("upper")
}

/// The host path of the overlay's work dir.
pub fn work_dir(store_dir: &Path, id: &str, place: Place) -> PathBuf {
    base(store_dir, id, place).join("work")
}

/// Makes upper/ (mode 0755, owned by the container's root so the overlay root looks like the
/// image's) and work/ for a new container; in rrun's tmpfs, mounted first if need be.
/// Rootless, work/ is the container root's too: the child mounts the overlay as that root, and
/// in a store below a set-group-ID folder mkdir(2) gives both folders that folder's group,
/// which the container does not map (overlayfs then refuses the mount with EACCES).
pub fn prepare(store_dir: &Path, id: &str, place: Place, ids: &IdMaps) -> Result<()> {
    let b = base(store_dir, id, place);
    if place == Place::Run {
        let _lock = run_lock(true)?;
        ensure_tmpfs()?;
        if let Err(e) = fs::DirBuilder::new().mode(0o700).create(&b) {
            unmount_if_unused()?;
            return Err(e).ctx(|| format!("create {}", b.display()));
        }
    }
    let (upper, work) = (b.join("upper"), b.join("work"));
    for d in [&upper, &work] {
        fs::create_dir(d).ctx(|| format!("create {}", d.display()))?;
    }
    fs::set_permissions(&upper, fs::Permissions::from_mode(0o755))
        .ctx(|| format!("chmod {}", upper.display()))?;
    let rootless = !rustix::process::geteuid().is_root();
    let owned = match (ids.is_identity(), rootless) {
        (true, _) => &[][..],
        (false, false) => &[&upper][..],
        (false, true) => &[&upper, &work][..],
    };
    for d in owned {
        chown(d, ids.host_uid(0), ids.host_gid(0))
            .ctx(|| format!("chown {} to the container's root", d.display()))?;
    }
    Ok(())
}

/// Container `id`'s folder in rrun's tmpfs (`id` a validated id), if it has one there (only
/// root's containers may); the caller removes it, then calls [`unmount_run_if_unused`].
pub fn run_dir_of(id: &str) -> Option<PathBuf> {
    if !rustix::process::geteuid().is_root() {
        return None;
    }
    let mine = Path::new(RUN_DIR).join(id);
    // None: this container's upper dir was never there (or is gone already)
    fs::symlink_metadata(&mine).ok().map(|_| mine)
}

/// Unmounts rrun's tmpfs when no container's folder is left in it (after a removal).
pub fn unmount_run_if_unused() -> Result<()> {
    let Some(_lock) = run_lock(false)? else {
        return Ok(());
    };
    unmount_if_unused()
}

/// Unmounts rrun's tmpfs (MNT_DETACH) when it holds no container's folder. The caller holds
/// [`run_lock`].
fn unmount_if_unused() -> Result<()> {
    let dir = Path::new(RUN_DIR);
    let empty = fs::read_dir(dir)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false);
    if empty && is_own_tmpfs(dir) {
        sys::mount::umount2(dir, UnmountFlags::DETACH)
            .ctx(|| format!("unmount rrun's tmpfs for upper dirs on {RUN_DIR}"))?;
        tracing::info!("unmounted the tmpfs on {RUN_DIR}: no container uses it");
    }
    Ok(())
}

/// An exclusive flock(2) of [`RUN_DIR`]'s parent, made first when `create`; None when it does
/// not exist and `create` is false. Held while the tmpfs is mounted, a folder is made in it, or
/// it is checked empty and unmounted.
fn run_lock(create: bool) -> Result<Option<Lock>> {
    let parent = Path::new(RUN_DIR).parent().unwrap_or(Path::new("/"));
    if create {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .ctx(|| format!("create {}", parent.display()))?;
    }
    match lock::flock(parent) {
        Err(e) if !create && e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        r => r.map(Some).ctx(|| format!("lock {}", parent.display())),
    }
}

/// Mounts rrun's tmpfs at [`RUN_DIR`] unless it is there. The caller holds [`run_lock`].
fn ensure_tmpfs() -> Result<()> {
    let dir = Path::new(RUN_DIR);
    if is_own_tmpfs(dir) {
        return Ok(());
    }
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(e).ctx(|| format!("create {}", dir.display()))
        }
        _ => {}
    }
    sys::mount::mount(
        "tmpfs",
        dir,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV,
        Some(RUN_TMPFS_OPTIONS),
    )
    .ctx(|| format!("mount rrun's tmpfs for upper dirs on {RUN_DIR}"))?;
    tracing::info!("mounted a tmpfs ({RUN_TMPFS_OPTIONS}) on {RUN_DIR}");
    Ok(())
}

/// True when `dir` is the root of a tmpfs mount (not merely a folder of a tmpfs /run).
fn is_own_tmpfs(dir: &Path) -> bool {
    let Ok(c) = sys::cstr(dir) else { return false };
    let tmpfs = rustix::fs::statfs(c.as_c_str()).is_ok_and(|s| s.f_type == sys::TMPFS_MAGIC);
    let dev = |p: &Path| fs::metadata(p).map(|m| m.dev()).ok();
    tmpfs && dev(dir).is_some() && dev(dir) != dir.parent().and_then(dev)
}
