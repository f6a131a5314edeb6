//! Owns: the container's filesystem view from the spec, built by its init in its own mount
//! namespace: the rootfs bind, the spec's `mounts` (bind, proc, sysfs, tmpfs, devpts, mqueue,
//! cgroup), the default device nodes and `linux.devices`, pivot_root (or, with --no-pivot, a
//! move over / and chroot), then masked and read-only paths and a read-only root. Every path
//! inside the rootfs is resolved with openat2(RESOLVE_IN_ROOT), so a symlink in the image
//! cannot send a mount outside it; the mount goes through /proc/self/fd/N of that handle.
//! Kernel interfaces: mount(2), umount2(2), pivot_root(2), chroot(2), openat2(2), mknodat(2),
//! mount_namespaces(7); the calls go through rustix and the rrun library's sys::mount.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxDeviceType, Mount, Spec};
use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use rustix::mount::{MountAttrFlags, MountFlags, MountPropagationFlags, UnmountFlags};

use rrun::sys;

/// The default device nodes every container gets on its /dev (runtime-spec "Default Devices").
const DEFAULT_DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// A path relative to the rootfs, without `..` escaping it (RESOLVE_IN_ROOT checks the rest).
fn rel(dest: &Path) -> PathBuf {
    dest.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect()
}

/// openat2 beneath `root` (symlinks resolved as if `root` were /).
fn open_in(root: BorrowedFd<'_>, path: &Path, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let p = rel(path);
    let p = if p.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        p
    };
    sys::fd::openat2(
        root,
        &p,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))
}

/// Makes the directory `path` (and its parents) beneath `root`; returns an O_PATH handle.
fn mkdir_in(root: BorrowedFd<'_>, path: &Path) -> Result<OwnedFd> {
    let mut done = PathBuf::new();
    for c in rel(path).components() {
        let parent = open_in(root, &done, OFlags::PATH | OFlags::DIRECTORY)
            .with_context(|| format!("open {} in the rootfs", done.display()))?;
        match rustix::fs::mkdirat(&parent, c.as_os_str(), Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => {
                return Err(e).with_context(|| format!("mkdir {} in the rootfs", path.display()))
            }
        }
        done.push(c);
    }
    open_in(root, path, OFlags::PATH)
        .with_context(|| format!("open {} in the rootfs", path.display()))
}

/// Makes an empty file at `path` beneath `root` (its parents as directories) unless something
/// is there; returns an O_PATH handle.
fn touch_in(root: BorrowedFd<'_>, path: &Path) -> Result<OwnedFd> {
    if let Ok(fd) = open_in(root, path, OFlags::PATH) {
        return Ok(fd);
    }
    let parent = path.parent().unwrap_or(Path::new("/"));
    let dir = mkdir_in(root, parent)?;
    let name = path
        .file_name()
        .context("a mount destination needs a name")?;
    match rustix::fs::openat(
        &dir,
        name,
        OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::from_raw_mode(0o644),
    ) {
        Ok(_) | Err(Errno::EXIST) => {}
        Err(e) => {
            return Err(e).with_context(|| format!("create {} in the rootfs", path.display()))
        }
    }
    open_in(root, path, OFlags::PATH)
        .with_context(|| format!("open {} in the rootfs", path.display()))
}

fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// A mount's options split as mount(8) does: flags to set, propagation, and the data string.
struct Options {
    flags: MountFlags,
    clear: MountFlags,
    propagation: Option<MountPropagationFlags>,
    bind: bool,
    recursive: bool,
    data: Vec<String>,
    /// Recursive attributes (`rro`, `rnosuid`, ...), set with mount_setattr(AT_RECURSIVE).
    rec_set: MountAttrFlags,
    rec_clear: MountAttrFlags,
}

/// MOUNT_ATTR_NOSYMFOLLOW (include/uapi/linux/mount.h).
const NOSYMFOLLOW: MountAttrFlags = MountAttrFlags::from_bits_retain(0x0020_0000);

/// A recursive mount attribute option: (set, clear).
fn recursive_attr(opt: &str) -> Option<(MountAttrFlags, MountAttrFlags)> {
    use MountAttrFlags as A;
    let none = A::empty();
    Some(match opt {
        "rro" => (A::MOUNT_ATTR_RDONLY, none),
        "rrw" => (none, A::MOUNT_ATTR_RDONLY),
        "rnosuid" => (A::MOUNT_ATTR_NOSUID, none),
        "rsuid" => (none, A::MOUNT_ATTR_NOSUID),
        "rnodev" => (A::MOUNT_ATTR_NODEV, none),
        "rdev" => (none, A::MOUNT_ATTR_NODEV),
        "rnoexec" => (A::MOUNT_ATTR_NOEXEC, none),
        "rexec" => (none, A::MOUNT_ATTR_NOEXEC),
        "rnodiratime" => (A::MOUNT_ATTR_NODIRATIME, none),
        "rdiratime" => (none, A::MOUNT_ATTR_NODIRATIME),
        "rnosymfollow" => (NOSYMFOLLOW, none),
        "rsymfollow" => (none, NOSYMFOLLOW),
        "rnoatime" => (A::MOUNT_ATTR_NOATIME, A::MOUNT_ATTR__ATIME),
        "rstrictatime" => (A::MOUNT_ATTR_STRICTATIME, A::MOUNT_ATTR__ATIME),
        "rrelatime" => (A::MOUNT_ATTR_RELATIME, A::MOUNT_ATTR__ATIME),
        _ => return None,
    })
}

fn parse_options(opts: &[String]) -> Options {
    let mut o = Options {
        flags: MountFlags::empty(),
        clear: MountFlags::empty(),
        propagation: None,
        bind: false,
        recursive: false,
        data: Vec::new(),
        rec_set: MountAttrFlags::empty(),
        rec_clear: MountAttrFlags::empty(),
    };
    for s in opts {
        let (set, clr) = match s.as_str() {
            "ro" => (MountFlags::RDONLY, MountFlags::empty()),
            "rw" => (MountFlags::empty(), MountFlags::RDONLY),
            "nosuid" => (MountFlags::NOSUID, MountFlags::empty()),
            "suid" => (MountFlags::empty(), MountFlags::NOSUID),
            "nodev" => (MountFlags::NODEV, MountFlags::empty()),
            "dev" => (MountFlags::empty(), MountFlags::NODEV),
            "noexec" => (MountFlags::NOEXEC, MountFlags::empty()),
            "exec" => (MountFlags::empty(), MountFlags::NOEXEC),
            "sync" => (MountFlags::SYNCHRONOUS, MountFlags::empty()),
            "dirsync" => (MountFlags::DIRSYNC, MountFlags::empty()),
            "mand" => (MountFlags::empty(), MountFlags::empty()),
            "noatime" => (MountFlags::NOATIME, MountFlags::empty()),
            "nodiratime" => (MountFlags::NODIRATIME, MountFlags::empty()),
            "relatime" => (MountFlags::RELATIME, MountFlags::empty()),
            "strictatime" => (MountFlags::STRICTATIME, MountFlags::empty()),
            "atime" | "defaults" | "async" | "norelatime" | "nostrictatime" => {
                (MountFlags::empty(), MountFlags::empty())
            }
            "bind" => {
                o.bind = true;
                continue;
            }
            "rbind" => {
                o.bind = true;
                o.recursive = true;
                continue;
            }
            p @ ("private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
            | "unbindable" | "runbindable") => {
                let mut f = match p.trim_start_matches('r') {
                    "private" => MountPropagationFlags::PRIVATE,
                    "shared" => MountPropagationFlags::SHARED,
                    "slave" => MountPropagationFlags::DOWNSTREAM,
                    _ => MountPropagationFlags::UNBINDABLE,
                };
                if p.starts_with('r') && p != "rw" {
                    f |= MountPropagationFlags::REC;
                }
                o.propagation = Some(f);
                continue;
            }
            "tmpcopyup" | "idmap" | "ridmap" | "copy-symlink" => continue,
            r if recursive_attr(r).is_some() => {
                let Some((set, clear)) = recursive_attr(r) else {
                    continue;
                };
                o.rec_set = (o.rec_set - clear) | set;
                o.rec_clear = (o.rec_clear - set) | clear;
                continue;
            }
            other => {
                o.data.push(other.to_string());
                continue;
            }
        };
        o.flags |= set;
        o.flags &= !clr;
        o.clear |= clr;
    }
    o
}

/// What the mounts need to know besides the spec.
pub struct Ctx<'a> {
    pub rootfs: &'a Path,
    /// The container has its own user namespace (device nodes are bound, not made).
    pub userns: bool,
    /// The container's cgroup directories on the host (for a /sys/fs/cgroup mount).
    pub cgroup_paths: &'a [PathBuf],
}

/// Everything up to pivot_root: the root's propagation, the rootfs bind, the spec's mounts and
/// the devices. The caller is in the container's new mount namespace.
pub fn prepare(spec: &Spec, c: &Ctx<'_>) -> Result<()> {
    let prop = match spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().clone())
        .as_deref()
    {
        Some("shared" | "rshared") => MountPropagationFlags::SHARED,
        Some("private" | "rprivate") => MountPropagationFlags::PRIVATE,
        Some("unbindable" | "runbindable") => MountPropagationFlags::UNBINDABLE,
        None | Some("slave" | "rslave" | "") => MountPropagationFlags::DOWNSTREAM,
        Some(o) => bail!("config.json: linux.rootfsPropagation {o:?} is not a propagation"),
    };
    sys::mount::change_propagation(Path::new("/"), prop | MountPropagationFlags::REC)
        .context("set the propagation of /")?;
    parent_mount_private(c.rootfs)?;
    rustix::mount::mount_bind_recursive(c.rootfs, c.rootfs)
        .with_context(|| format!("bind the rootfs {}", c.rootfs.display()))?;
    let root = rustix::fs::open(
        c.rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("open the rootfs {}", c.rootfs.display()))?;
    let mounts = spec.mounts().clone().unwrap_or_default();
    for m in &mounts {
        mount_one(root.as_fd(), m, c)
            .and_then(|()| recursive_attrs(root.as_fd(), m))
            .with_context(|| format!("mount {}", m.destination().display()))?;
    }
    if mounts.iter().any(|m| m.destination() == Path::new("/dev")) {
        default_devices(root.as_fd(), c)?;
    }
    for d in spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default()
    {
        make_device(root.as_fd(), &d, c.userns)
            .with_context(|| format!("config.json: linux.devices {}", d.path().display()))?;
    }
    Ok(())
}

/// Makes the mount that holds the rootfs private when it is shared (runc does the same): with
/// `rootfsPropagation` shared, the rootfs bind and every mount below it would otherwise
/// propagate to the peer group of that mount, the host's among them, and pivot_root(2) refuses a
/// shared parent (EINVAL). Only that one mount changes, in the container's mount namespace.
fn parent_mount_private(rootfs: &Path) -> Result<()> {
    let rootfs = std::fs::canonicalize(rootfs)
        .with_context(|| format!("resolve the rootfs {}", rootfs.display()))?;
    let info =
        std::fs::read_to_string("/proc/self/mountinfo").context("read /proc/self/mountinfo")?;
    let Some((point, shared)) = holding_mount(&info, &rootfs) else {
        bail!(
            "no mount holds the rootfs {} in /proc/self/mountinfo",
            rootfs.display()
        );
    };
    if shared {
        sys::mount::change_propagation(&point, MountPropagationFlags::PRIVATE)
            .with_context(|| format!("make {} private", point.display()))?;
    }
    Ok(())
}

/// The mount point of `/proc/self/mountinfo` (proc(5)) that holds `path` (the deepest one; of
/// mounts stacked there, the last listed, which is the one on top), and whether it is shared
/// (a `shared:N` optional field).
fn holding_mount(mountinfo: &str, path: &Path) -> Option<(PathBuf, bool)> {
    let mut best: Option<(PathBuf, bool)> = None;
    for line in mountinfo.lines() {
        let Some((left, _)) = line.split_once(" - ") else {
            continue;
        };
        let f: Vec<&str> = left.split(' ').collect();
        let Some(point) = f
            .get(4)
            .map(|p| PathBuf::from(sys::procfs::unescape_mountinfo(p)))
        else {
            continue;
        };
        if !path.starts_with(&point) {
            continue;
        }
        let shared = f.iter().skip(6).any(|o| o.starts_with("shared:"));
        let deeper = best
            .as_ref()
            .is_none_or(|(b, _)| point.components().count() >= b.components().count());
        if deeper {
            best = Some((point, shared));
        }
    }
    best
}

/// The recursive attributes of a mount, on it and every mount below it.
fn recursive_attrs(root: BorrowedFd<'_>, m: &Mount) -> Result<()> {
    let o = parse_options(m.options().as_deref().unwrap_or_default());
    if o.rec_set.is_empty() && o.rec_clear.is_empty() {
        return Ok(());
    }
    let t = open_in(root, m.destination(), OFlags::PATH)?;
    let attr = sys::mount::MountAttr {
        set: o.rec_set,
        clear: o.rec_clear,
        userns: None,
    };
    sys::mount::mount_setattr_fd(t.as_fd(), true, &attr).context("recursive mount attributes")
}

/// proc and sysfs go on a real directory only (runc's rule: a symlink there could send
/// them anywhere).
fn check_ordinary_dir(rootfs: &Path, dest: &Path, typ: &str) -> Result<()> {
    let p = rootfs.join(rel(dest));
    match std::fs::symlink_metadata(&p) {
        Ok(m) if !m.is_dir() => {
            bail!(
                "{typ} on {}: must be mounted on ordinary directory",
                dest.display()
            )
        }
        _ => Ok(()),
    }
}

fn mount_one(root: BorrowedFd<'_>, m: &Mount, c: &Ctx<'_>) -> Result<()> {
    let dest = m.destination();
    if !dest.is_absolute() {
        bail!(
            "config.json: mount destination {} must be absolute",
            dest.display()
        );
    }
    let o = parse_options(m.options().as_deref().unwrap_or_default());
    let typ = m.typ().clone().unwrap_or_default();
    if o.bind || typ == "bind" {
        return bind(root, m, &o);
    }
    if typ == "cgroup" || typ == "cgroup2" {
        return cgroup_mount(root, dest, &o, c);
    }
    if typ == "proc" || typ == "sysfs" {
        check_ordinary_dir(c.rootfs, dest, &typ)?;
    }
    let target = mkdir_in(root, dest)?;
    let src = m
        .source()
        .as_ref()
        .map(|s| s.display().to_string())
        .unwrap_or_else(|| typ.clone());
    let data = o.data.join(",");
    let r = sys::mount::mount(&src, &fd_path(&target), &typ, o.flags, Some(&data));
    let r = match (r, typ.as_str()) {
        // devpts in a user namespace where gid 5 is not mapped: without the gid option
        (Err(e), "devpts") if e.raw_os_error() == Some(libc_einval()) => {
            let data: Vec<&str> = o
                .data
                .iter()
                .map(String::as_str)
                .filter(|d| !d.starts_with("gid="))
                .collect();
            sys::mount::mount(
                &src,
                &fd_path(&target),
                &typ,
                o.flags,
                Some(&data.join(",")),
            )
        }
        // sysfs without a network namespace of our own (or in a user namespace): bind the host's
        (Err(e), "sysfs") if e.raw_os_error() == Some(Errno::PERM.raw_os_error()) => {
            rustix::mount::mount_bind_recursive("/sys", fd_path(&target))
                .map_err(std::io::Error::from)
                .and_then(|()| remount(&target, o.flags | MountFlags::BIND))
        }
        (r, _) => r,
    };
    r.with_context(|| format!("{typ} on {}", dest.display()))?;
    if let Some(p) = o.propagation {
        sys::mount::change_propagation(&fd_path(&target), p)?;
    }
    Ok(())
}

fn libc_einval() -> i32 {
    Errno::INVAL.raw_os_error()
}

/// MS_REMOUNT|MS_BIND with `flags`, keeping the flags the kernel locked on the mount (a
/// remount that would clear a locked nosuid/nodev/noexec is refused in a user namespace).
fn remount(target: &OwnedFd, flags: MountFlags) -> std::io::Result<()> {
    let locked = rustix::fs::fstatvfs(target)
        .map(|s| {
            let f = s.f_flag;
            let mut m = MountFlags::empty();
            for (bit, flag) in [
                (rustix::fs::StatVfsMountFlags::NOSUID, MountFlags::NOSUID),
                (rustix::fs::StatVfsMountFlags::NODEV, MountFlags::NODEV),
                (rustix::fs::StatVfsMountFlags::NOEXEC, MountFlags::NOEXEC),
            ] {
                if f.contains(bit) {
                    m |= flag;
                }
            }
            m
        })
        .unwrap_or(MountFlags::empty());
    Ok(rustix::mount::mount_remount(
        fd_path(target),
        flags | locked | MountFlags::BIND,
        "",
    )?)
}

fn bind(root: BorrowedFd<'_>, m: &Mount, o: &Options) -> Result<()> {
    let src = m.source().clone().context("a bind mount needs a source")?;
    let meta = std::fs::metadata(&src).with_context(|| format!("bind source {}", src.display()))?;
    let target = match meta.is_dir() {
        true => mkdir_in(root, m.destination())?,
        false => touch_in(root, m.destination())?,
    };
    let r = match o.recursive {
        true => rustix::mount::mount_bind_recursive(&src, fd_path(&target)),
        false => rustix::mount::mount_bind(&src, fd_path(&target)),
    };
    r.with_context(|| format!("bind {}", src.display()))?;
    // The new mount is on top of the O_PATH handle's: reopen to reach it.
    let target = open_in(root, m.destination(), OFlags::PATH)?;
    if !(o.flags - MountFlags::BIND).is_empty() {
        remount(&target, o.flags).context("apply the bind mount's options")?;
    }
    if let Some(p) = o.propagation {
        sys::mount::change_propagation(&fd_path(&target), p)?;
    }
    Ok(())
}

/// /sys/fs/cgroup: a tmpfs with the container's own cgroup directories bound in, one per
/// hierarchy it has (`unified`, `memory`, ...), read-only when the mount asks for it.
fn cgroup_mount(root: BorrowedFd<'_>, dest: &Path, o: &Options, c: &Ctx<'_>) -> Result<()> {
    let target = mkdir_in(root, dest)?;
    let flags = o.flags & !MountFlags::RDONLY;
    sys::mount::mount("tmpfs", &fd_path(&target), "tmpfs", flags, Some("mode=755"))?;
    let base = Path::new("/sys/fs/cgroup");
    for p in c.cgroup_paths {
        let Some(hier) = p
            .strip_prefix(base)
            .ok()
            .and_then(|r| r.components().next())
            .map(|c| c.as_os_str().to_owned())
        else {
            continue;
        };
        let sub = dest.join(&hier);
        let t = mkdir_in(root, &sub)?;
        rustix::mount::mount_bind(p, fd_path(&t))
            .with_context(|| format!("bind {}", p.display()))?;
        if o.flags.contains(MountFlags::RDONLY) {
            let t = open_in(root, &sub, OFlags::PATH)?;
            remount(&t, o.flags)?;
        }
    }
    if o.flags.contains(MountFlags::RDONLY) {
        let t = open_in(root, dest, OFlags::PATH)?;
        rustix::mount::mount_remount(fd_path(&t), flags | MountFlags::RDONLY, "mode=755")?;
    }
    Ok(())
}

/// /dev/null, zero, full, random, urandom, tty bound from the host, and the usual links.
fn default_devices(root: BorrowedFd<'_>, _c: &Ctx<'_>) -> Result<()> {
    for d in DEFAULT_DEVICES {
        let dest = Path::new("/dev").join(d);
        let t = touch_in(root, &dest)?;
        rustix::mount::mount_bind(Path::new("/dev").join(d), fd_path(&t))
            .with_context(|| format!("bind /dev/{d}"))?;
    }
    let dev = open_in(root, Path::new("/dev"), OFlags::PATH | OFlags::DIRECTORY)?;
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        match rustix::fs::symlinkat(to, &dev, link) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e).with_context(|| format!("symlink /dev/{link}")),
        }
    }
    Ok(())
}

/// One `linux.devices` entry: made with mknod, or in a user namespace (where mknod is refused)
/// bound from the same path on the host.
fn make_device(
    root: BorrowedFd<'_>,
    d: &oci_spec::runtime::LinuxDevice,
    userns: bool,
) -> Result<()> {
    let path = d.path();
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => FileType::CharacterDevice,
        LinuxDeviceType::B => FileType::BlockDevice,
        LinuxDeviceType::P => FileType::Fifo,
        LinuxDeviceType::A => bail!("type a is only for cgroup rules"),
    };
    if userns {
        let t = touch_in(root, path)?;
        rustix::mount::mount_bind(path, fd_path(&t)).context("bind the host's node")?;
        return Ok(());
    }
    let parent = mkdir_in(root, path.parent().unwrap_or(Path::new("/")))?;
    let name = path.file_name().context("device path needs a name")?;
    let dir = rustix::fs::openat(
        &parent,
        ".",
        OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let _ = rustix::fs::unlinkat(&dir, name, rustix::fs::AtFlags::empty());
    let mode = Mode::from_raw_mode(d.file_mode().unwrap_or(0o666));
    let dev = rustix::fs::makedev(d.major() as u32, d.minor() as u32);
    rustix::fs::mknodat(&dir, name, kind, mode, dev).context("mknod")?;
    let uid = d.uid().map(rustix::fs::Uid::from_raw);
    let gid = d.gid().map(rustix::fs::Gid::from_raw);
    rustix::fs::chownat(&dir, name, uid, gid, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
        .context("chown")?;
    rustix::fs::chmodat(&dir, name, mode, rustix::fs::AtFlags::empty()).context("chmod")?;
    Ok(())
}

/// Makes the rootfs the root: pivot_root(".", ".") and a lazy unmount of the old root stacked
/// under it, or with `no_pivot` a move of the rootfs over / and chroot (for ramfs roots).
pub fn enter_root(rootfs: &Path, no_pivot: bool) -> Result<()> {
    std::env::set_current_dir(rootfs).with_context(|| format!("chdir {}", rootfs.display()))?;
    if no_pivot {
        rustix::mount::mount_move(".", "/").context("move the rootfs over /")?;
        rustix::process::chroot(".").context("chroot into the rootfs")?;
    } else {
        sys::mount::pivot_root(Path::new("."), Path::new(".")).context("pivot_root")?;
        sys::mount::umount2(Path::new("."), UnmountFlags::DETACH)
            .context("unmount the old root")?;
    }
    std::env::set_current_dir("/").context("chdir /")?;
    Ok(())
}

/// After pivot_root: masked paths (a read-only tmpfs over directories, /dev/null over files),
/// read-only paths (a read-only bind of themselves) and, if asked, a read-only root.
pub fn finish(spec: &Spec) -> Result<()> {
    let root = rustix::fs::open(
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let linux = spec.linux().clone().unwrap_or_default();
    for p in linux.readonly_paths().clone().unwrap_or_default() {
        let Ok(t) = open_in(root.as_fd(), Path::new(&p), OFlags::PATH) else {
            continue;
        };
        rustix::mount::mount_bind_recursive(fd_path(&t), fd_path(&t))
            .with_context(|| format!("config.json: linux.readonlyPaths {p}"))?;
        let t = open_in(root.as_fd(), Path::new(&p), OFlags::PATH)?;
        remount(
            &t,
            MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        )
        .with_context(|| format!("config.json: linux.readonlyPaths {p}"))?;
    }
    for p in linux.masked_paths().clone().unwrap_or_default() {
        let Ok(t) = open_in(root.as_fd(), Path::new(&p), OFlags::PATH) else {
            continue;
        };
        let is_dir = rustix::fs::fstat(&t)
            .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Directory);
        let r = match is_dir {
            true => sys::mount::mount(
                "tmpfs",
                &fd_path(&t),
                "tmpfs",
                MountFlags::RDONLY,
                Some("size=0"),
            ),
            false => rustix::mount::mount_bind("/dev/null", fd_path(&t)).map_err(Into::into),
        };
        r.with_context(|| format!("config.json: linux.maskedPaths {p}"))?;
    }
    if spec
        .root()
        .as_ref()
        .is_some_and(|r| r.readonly() == Some(true))
    {
        remount(&root, MountFlags::RDONLY).context("config.json: root.readonly")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:25 / /tmp rw,nosuid master:7 - tmpfs tmpfs rw
31 30 0:26 / /tmp/my\\040bundle rw - tmpfs tmpfs rw
32 22 0:27 / /srv rw shared:9 - tmpfs tmpfs rw
33 32 0:28 / /srv rw - tmpfs tmpfs rw
";

    #[test]
    fn the_deepest_mount_holds_the_rootfs_and_the_top_of_a_stack_counts() {
        let m = |p: &str| holding_mount(INFO, Path::new(p));
        assert_eq!(m("/work/b/rootfs"), Some(("/".into(), true)));
        assert_eq!(m("/tmp/b/rootfs"), Some(("/tmp".into(), false)));
        assert_eq!(
            m("/tmp/my bundle/rootfs"),
            Some(("/tmp/my bundle".into(), false))
        );
        // /tmp/mybundle is not below "/tmp/my bundle"
        assert_eq!(m("/tmp/mybundle"), Some(("/tmp".into(), false)));
        assert_eq!(m("/srv/b"), Some(("/srv".into(), false)));
        assert_eq!(holding_mount("garbage\n", Path::new("/x")), None);
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        let u = sys::procfs::unescape_mountinfo;
        assert_eq!(u("a\\040b\\134c\\011"), "a b\\c\t");
        assert_eq!(u("end\\04"), "end\\04");
        assert_eq!(u("\\999"), "\\999");
    }
}
