//! The container's root, set up by the child inside its new mount, user and uts namespaces:
//! attach the overlay, pivot_root into it, then /dev, the read-only and masked kernel paths,
//! /etc/{hostname,hosts,resolv.conf}, volumes, tmpfs and read-only. Every target inside the
//! root is opened with [`inroot`] (never leaving the root, never opening a FIFO) and mounted
//! on by descriptor. Kernel docs: pivot_root(2), mount(2), move_mount(2), open_tree(2),
//! mount_namespaces(7), devpts (Documentation/filesystems/devpts.rst).
//!
//! Mount flags follow runc's default spec: /dev tmpfs nosuid,noexec and also nodev (rrun binds
//! the device nodes from the host as mounts of their own, so nothing needs device nodes of the
//! tmpfs itself); /dev/pts nosuid,noexec; /dev/shm, /dev/mqueue nosuid,nodev,noexec; /proc
//! nosuid,nodev,noexec; /sys read-only; --tmpfs nosuid,nodev; the root overlay nodev only
//! ([`mounts`]), so setuid programs of the image keep working for container root.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::mount::{MountAttrFlags, MountFlags, OpenTreeFlags, UnmountFlags};

use crate::error::{Context, Result};
use crate::inroot::{Kind, Root};
use crate::spec::{self, Volume};
use crate::sys::mount::MountAttr;
use crate::{masks, mounts, sys};

/// The host device nodes bind-mounted into the container's /dev.
pub const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];
/// The per-container files bind-mounted over /etc in the image.
pub const ETC_FILES: [&str; 3] = ["hostname", "hosts", "resolv.conf"];

/// Contents of the per-container /etc files, in [`ETC_FILES`] order.
pub struct EtcFiles {
    pub hostname: String,
    pub hosts: String,
    pub resolv_conf: Vec<u8>,
}

/// Handles on host objects taken before pivot_root, which hides the host.
pub struct HostHandles {
    devices: Vec<(&'static str, OwnedFd)>,
    /// proc and sysfs instances of the container's namespaces, made while the host's are still
    /// visible (the kernel refuses them in a user namespace otherwise: "mount too revealing").
    kernel_fs: Vec<(&'static str, OwnedFd)>,
    etc: Vec<(&'static str, OwnedFd)>,
    pub devnull: Option<File>,
}

/// Clones the host's device nodes as detached bind mounts and makes the proc and sysfs
/// instances; none of it needs the id maps, so it runs while rrun writes them.
pub fn capture_host(want_devnull: bool) -> Result<HostHandles> {
    let mut devices = Vec::with_capacity(DEVICES.len());
    for d in DEVICES {
        let p = PathBuf::from("/dev").join(d);
        devices.push((d, mounts::clone_tree(&p, None, false)?));
    }
    let etc = Vec::new();
    let devnull = if want_devnull {
        Some(File::open("/dev/null").ctx(|| "open /dev/null".into())?)
    } else {
        None
    };
    let mut kernel_fs = vec![(
        "/proc",
        new_fs(
            c"proc",
            MountAttrFlags::MOUNT_ATTR_NOSUID
                | MountAttrFlags::MOUNT_ATTR_NODEV
                | MountAttrFlags::MOUNT_ATTR_NOEXEC,
        )?,
    )];
    // sysfs needs a network namespace of our own (refused with --net host): then rinit tries.
    let ro = MountAttrFlags::MOUNT_ATTR_RDONLY
        | MountAttrFlags::MOUNT_ATTR_NOSUID
        | MountAttrFlags::MOUNT_ATTR_NODEV
        | MountAttrFlags::MOUNT_ATTR_NOEXEC;
    if let Ok(fd) = new_fs(c"sysfs", ro) {
        kernel_fs.push(("/sys", fd));
    }
    Ok(HostHandles {
        devices,
        etc,
        kernel_fs,
        devnull,
    })
}

impl HostHandles {
    /// Writes the container's /etc files into a small tmpfs of its own (no disk I/O; they
    /// live as long as the container). Needs the id maps (the files get an owner).
    pub fn add_etc(&mut self, files: &EtcFiles) -> Result<()> {
        self.etc = etc_tmpfs(files)?;
        Ok(())
    }
}

/// A tmpfs holding hostname, hosts and resolv.conf, returned as one bind mount per file.
fn etc_tmpfs(files: &EtcFiles) -> Result<Vec<(&'static str, OwnedFd)>> {
    let fs = sys::mount::fsopen(c"tmpfs").ctx(|| "fsopen tmpfs for /etc files".into())?;
    sys::mount::fsconfig_string(fs.as_fd(), c"size", c"64k").ctx(|| "tmpfs size".into())?;
    sys::mount::fsconfig_string(fs.as_fd(), c"mode", c"755").ctx(|| "tmpfs mode".into())?;
    sys::mount::fsconfig_create(fs.as_fd()).ctx(|| "create the /etc files tmpfs".into())?;
    let mnt = sys::mount::fsmount(
        fs.as_fd(),
        MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOEXEC,
    )
    .ctx(|| "fsmount the /etc files tmpfs".into())?;
    let data: [&[u8]; 3] = [
        files.hostname.as_bytes(),
        files.hosts.as_bytes(),
        &files.resolv_conf,
    ];
    let mut out = Vec::with_capacity(3);
    for (name, bytes) in ETC_FILES.iter().zip(data) {
        let f = sys::fd::openat2(
            mnt.as_fd(),
            Path::new(name),
            OFlags::CREATE | OFlags::WRONLY | OFlags::EXCL,
            Mode::from_raw_mode(0o644),
            ResolveFlags::BENEATH,
        )
        .ctx(|| format!("create {name} in the /etc files tmpfs"))?;
        File::from(f)
            .write_all(bytes)
            .ctx(|| format!("write {name}"))?;
        let bind = sys::mount::open_tree(
            mnt.as_fd(),
            Path::new(name),
            OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
        )
        .ctx(|| format!("bind {name} from the /etc files tmpfs"))?;
        out.push((*name, bind));
    }
    Ok(out)
}

/// A detached mount of a fresh instance of a kernel filesystem (proc, sysfs).
fn new_fs(fstype: &std::ffi::CStr, attrs: MountAttrFlags) -> Result<OwnedFd> {
    let name = fstype.to_string_lossy();
    let fs = sys::mount::fsopen(fstype).ctx(|| format!("fsopen {name}"))?;
    sys::mount::fsconfig_create(fs.as_fd()).ctx(|| format!("create a {name} instance"))?;
    sys::mount::fsmount(fs.as_fd(), attrs).ctx(|| format!("fsmount {name}"))
}

/// Attaches the proc and sysfs instances made by [`capture_host`] at /proc and /sys, then
/// checks that the paths really show procfs and sysfs (statfs(2) `f_type`): a process of the
/// container reading /proc/self/... or a mask applied below /proc must reach the kernel's.
pub fn attach_kernel_fs(h: &mut HostHandles) -> Result<()> {
    for (path, fd) in h.kernel_fs.drain(..) {
        let p = Path::new(path);
        check_kernel_dir(path)?;
        mkdir_all(p)?;
        sys::mount::move_mount_path(fd.as_fd(), p).ctx(|| format!("mount {path}"))?;
        let magic = match path {
            "/proc" => sys::PROC_SUPER_MAGIC,
            _ => sys::SYSFS_MAGIC,
        };
        let st = rustix::fs::statfs(p).ctx(|| format!("statfs {path}"))?;
        if st.f_type != magic {
            return Err(crate::error::user(format!(
                "{path} in the container is not the {} just mounted there (f_type {:#x})",
                if magic == sys::PROC_SUPER_MAGIC {
                    "procfs"
                } else {
                    "sysfs"
                },
                st.f_type
            )));
        }
    }
    Ok(())
}

/// Refuses an image whose /proc, /sys or /dev is there but is no directory (a symbolic link,
/// wherever it points, or a file): the kernel filesystems go on the container's own folders,
/// as runc requires. After pivot_root, so the one-component lstat(2) stays in the container.
fn check_kernel_dir(path: &str) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if !m.is_dir() => {
            let what = match m.file_type().is_symlink() {
                true => format!(
                    "a symbolic link (to {})",
                    fs::read_link(path).unwrap_or_default().display()
                ),
                false => "not a directory".to_string(),
            };
            Err(crate::error::user(format!(
                "the image's {path} is {what}: it must be a directory (or absent), fix the image"
            )))
        }
        _ => Ok(()),
    }
}

/// Attaches the overlay over `mountpoint`, makes it the root and detaches the old root.
/// Works on descriptors, so no host path has to be reachable by the container's (unprivileged)
/// root: the store may sit below a folder only host root can enter.
pub fn enter_root(root: OwnedFd, mountpoint: std::os::fd::BorrowedFd<'_>) -> Result<()> {
    sys::mount::move_mount_fd(root.as_fd(), mountpoint)
        .ctx(|| "attach the overlay over the container's folder".into())?;
    rustix::process::fchdir(&root).ctx(|| "chdir into the overlay".into())?;
    drop(root);
    sys::mount::pivot_root(Path::new("."), Path::new("."))
        .ctx(|| "pivot_root into the container root".into())?;
    sys::mount::umount2(Path::new("."), UnmountFlags::DETACH)
        .ctx(|| "detach the old root".into())?;
    std::env::set_current_dir("/").ctx(|| "chdir /".into())
}

/// `mkdir -p` (mode 0755) inside the (already pivoted) container root.
pub fn mkdir_all(p: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(p)
        .ctx(|| format!("create directory {} in the container", p.display()))
}

/// /dev: a tmpfs with the host's device nodes bind-mounted, and with a terminal a devpts
/// instance of the container's own (its pair is opened later, [`open_pty`]).
pub fn populate_dev(h: &mut HostHandles, tty: bool, tty_gid: Option<u32>) -> Result<()> {
    let dev = Path::new("/dev");
    check_kernel_dir("/dev")?;
    mkdir_all(dev)?;
    sys::mount::mount(
        "tmpfs",
        dev,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        Some("mode=755,size=65536k"),
    )
    .ctx(|| "mount tmpfs on /dev".into())?;
    for (name, fd) in h.devices.drain(..) {
        let p = dev.join(name);
        File::create(&p).ctx(|| format!("create {}", p.display()))?;
        sys::mount::move_mount_path(fd.as_fd(), &p)
            .ctx(|| format!("bind the host's /dev/{name}"))?;
    }
    if !tty {
        return Ok(());
    }
    let pts = dev.join("pts");
    mkdir_all(&pts)?;
    let opts = match tty_gid {
        Some(g) => format!("newinstance,ptmxmode=0666,mode=0620,gid={g}"),
        None => "newinstance,ptmxmode=0666,mode=0620".to_string(),
    };
    sys::mount::mount(
        "devpts",
        &pts,
        "devpts",
        MountFlags::NOSUID | MountFlags::NOEXEC,
        Some(&opts),
    )
    .ctx(|| "mount devpts on /dev/pts".into())?;
    std::os::unix::fs::symlink("pts/ptmx", dev.join("ptmx")).ctx(|| "link /dev/ptmx".into())?;
    Ok(())
}

/// The container's pty pair (master, slave) from its devpts instance at /dev/pts (for the
/// container's init and for `exec -t`, which reaches it through the container's namespace). Opened once
/// the mount namespace is final (after the mounts are locked): a descriptor keeps the mount it
/// was opened through, and `tty`/ttyname(3) inside find the slave's name only through a mount
/// of the namespace they run in.
pub fn open_pty() -> Result<(OwnedFd, OwnedFd)> {
    let master = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags((OFlags::NOCTTY | OFlags::CLOEXEC).bits() as i32)
        .open("/dev/pts/ptmx")
        .ctx(|| "open /dev/pts/ptmx".into())?;
    let master = OwnedFd::from(master);
    let slave = crate::tty::open_peer(master.as_fd())?;
    Ok((master, slave))
}

/// Makes /proc/sys and the other host-wide kernel knobs read-only and masks kernel
/// information files ([`masks`]); needs /dev/null in place.
pub fn protect_kernel_paths(root: &Root) -> Result<()> {
    let null = root
        .resolve("/dev/null", OFlags::PATH)
        .map_err(|e| crate::error::Error::Sys {
            what: "open the container's /dev/null".into(),
            source: e.into(),
        })?;
    masks::apply(root, &null)
}

/// Binds the container's hostname, hosts and resolv.conf over the image's /etc files (a
/// symbolic link there is replaced, a FIFO or device is mounted over unopened, a directory
/// refused).
pub fn bind_etc(h: &mut HostHandles, root: &Root) -> Result<()> {
    for (name, fd) in h.etc.drain(..) {
        let target = root.file_target_replacing_links("/etc", name)?;
        sys::mount::move_mount_fd(fd.as_fd(), target.as_fd())
            .ctx(|| format!("bind /etc/{name}"))?;
    }
    Ok(())
}

/// Refuses a resolved mount target that is the root, /dev, or in /proc (but the allowed
/// files): the same rule as [`spec::check_mount_target`], for targets reached through
/// symbolic links of the image.
fn check_resolved_target(root: &Root, target: &OwnedFd, path: &str, what: &str) -> Result<()> {
    let id = |fd: &OwnedFd| rustix::fs::fstat(fd).map(|s| (s.st_dev, s.st_ino)).ok();
    let mine = id(target);
    if mine.is_some() && mine == id(root.fd()) {
        return spec::check_mount_target("/", what);
    }
    if let Ok(dev) = root.resolve("/dev", OFlags::PATH) {
        if mine.is_some() && mine == id(&dev) {
            return spec::check_mount_target("/dev", what);
        }
    }
    let on_proc = rustix::fs::fstatfs(target)
        .map(|s| s.f_type == rustix::fs::PROC_SUPER_MAGIC)
        .unwrap_or(false);
    if on_proc && !spec::PROC_TARGETS_ALLOWED.contains(&spec::normalize(path).as_str()) {
        return spec::check_mount_target("/proc", what);
    }
    Ok(())
}

/// Attaches the volumes (detached mounts prepared by rrun, in the same order). Whether the
/// source is a directory or a file is read from the mount itself (fstat of the open_tree
/// descriptor, made on the host side), and the target made or checked to match.
pub fn attach_volumes(root: &Root, vols: &[Volume], fds: Vec<OwnedFd>) -> Result<()> {
    for (v, fd) in vols.iter().zip(fds) {
        let what = format!("volume {}:{}", v.source.display(), v.target);
        let st = rustix::fs::fstat(&fd).map_err(|e| crate::error::Error::Sys {
            what: format!("stat the source of {what}"),
            source: e.into(),
        })?;
        let kind = if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            Kind::Dir
        } else {
            Kind::NonDir
        };
        let target = root.mount_target(&v.target, kind, &what)?;
        check_resolved_target(root, &target, &v.target, &what)?;
        sys::mount::move_mount_fd(fd.as_fd(), target.as_fd()).ctx(|| format!("mount {what}"))?;
    }
    Ok(())
}

/// Mounts each `--tmpfs` (a fresh tmpfs with its options, see [`crate::tmpfs`]) at its path.
pub fn mount_tmpfs(root: &Root, mounts: &[crate::tmpfs::Tmpfs]) -> Result<()> {
    for t in mounts {
        let d = &t.path;
        let what = format!("--tmpfs {d}");
        spec::check_mount_target(d, &what)?;
        let target = root.mount_target(d, Kind::Dir, &what)?;
        check_resolved_target(root, &target, d, &what)?;
        let mnt = t.new_mount()?;
        sys::mount::move_mount_fd(mnt.as_fd(), target.as_fd()).ctx(|| format!("mount {what}"))?;
    }
    Ok(())
}

/// Makes the root mount (only the root, not the mounts on it) read-only.
pub fn make_root_readonly() -> Result<()> {
    let attr = MountAttr {
        set: MountAttrFlags::MOUNT_ATTR_RDONLY,
        clear: MountAttrFlags::empty(),
        userns: None,
    };
    sys::mount::mount_setattr_path(Path::new("/"), &attr).ctx(|| "make the root read-only".into())
}

/// What rinit would mount as root (besides /proc and /sys, see [`attach_kernel_fs`]):
/// /dev/pts (+ptmx link), /dev/shm, /dev/mqueue, the /dev/fd links and /tmp. rrun mounts them itself
/// when the command runs as another user, because rinit then starts as that user (like
/// `docker run --init -u`), and under `--userns host`, where rinit starts without
/// CAP_SYS_ADMIN; rinit keeps what is already mounted. Mount points already there (a --tmpfs
/// /tmp of the user) are kept.
pub fn premount_kernel_fs(have_pts: bool) -> Result<()> {
    let m = |src: &str,
             path: &str,
             fstype: &str,
             flags: MountFlags,
             data: Option<&str>,
             mode: u32|
     -> Result<()> {
        let p = Path::new(path);
        if is_mount_point(p) {
            // a --tmpfs or volume the user put there
            return Ok(());
        }
        mkdir_all(p)?;
        fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .ctx(|| format!("chmod {path}"))?;
        sys::mount::mount(src, p, fstype, flags, data).ctx(|| format!("mount {fstype} on {path}"))
    };
    let (nosuid, nodev, noexec) = (MountFlags::NOSUID, MountFlags::NODEV, MountFlags::NOEXEC);
    if !have_pts && !is_mount_point(Path::new("/dev/pts")) {
        m(
            "devpts",
            "/dev/pts",
            "devpts",
            nosuid | noexec,
            Some("newinstance,ptmxmode=0666,mode=0620"),
            0o755,
        )?;
        std::os::unix::fs::symlink("pts/ptmx", "/dev/ptmx").ctx(|| "link /dev/ptmx".into())?;
    }
    m(
        "shm",
        "/dev/shm",
        "tmpfs",
        nosuid | nodev | noexec,
        Some("mode=1777,size=65536k"),
        0o1777,
    )?;
    let _ = m(
        "mqueue",
        "/dev/mqueue",
        "mqueue",
        nosuid | nodev | noexec,
        None,
        0o755,
    );
    for (target, link) in [
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
    ] {
        match std::os::unix::fs::symlink(target, link) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            other => other.ctx(|| format!("link {link}"))?,
        }
    }
    m(
        "tmpfs",
        "/tmp",
        "tmpfs",
        nosuid | nodev,
        Some("mode=1777"),
        0o1777,
    )?;
    Ok(())
}

/// True when a filesystem is mounted at `p` (statx STATX_ATTR_MOUNT_ROOT, Linux >= 5.8).
pub fn is_mount_point(p: &Path) -> bool {
    use rustix::fs::{AtFlags, StatxAttributes, StatxFlags, CWD};
    rustix::fs::statx(CWD, p, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::BASIC_STATS)
        .map(|s| {
            s.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT)
                && s.stx_attributes.contains(StatxAttributes::MOUNT_ROOT)
        })
        .unwrap_or(false)
}
