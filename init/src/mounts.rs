//! The kernel filesystems of a container, set up by rinit as PID 1: /proc, /dev (device nodes,
//! pts, ptmx, shm, mqueue, fd links), /tmp and a read-only /sys; whatever is already mounted is
//! kept. Drives mount(2), mkdir(2), mknod(2), symlink(2), statx(2), statfs(2); see proc(5),
//! tmpfs(5), Documentation/filesystems/devpts.rst, mq_overview(7) and sysfs(5).

use crate::cbuf::CBuf;
use crate::mountinfo;
use crate::msg::Line;
use crate::sys::fs::{MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_STRICTATIME};
use crate::sys::{self, Errno};
use core::ffi::CStr;

/// A mount point that could not be made or mounted: fatal for /proc, /dev, /tmp.
#[derive(Debug)]
pub struct MountError {
    /// The filesystem type, or None when creating the mount point failed.
    pub fstype: Option<&'static CStr>,
    pub path: &'static CStr,
    pub errno: Errno,
}

impl MountError {
    pub fn line(&self) -> Line {
        let line = match self.fstype {
            Some(t) => Line::new().s("cannot mount ").q(t.to_bytes()).s(" on "),
            None => Line::new().s("cannot create mount point "),
        };
        line.q(self.path.to_bytes()).s(": ").e(self.errno)
    }
}

/// Character devices every container gets: (path, major, minor), see devices.txt.
const NODES: [(&CStr, u32, u32); 6] = [
    (c"/dev/null", 1, 3),
    (c"/dev/zero", 1, 5),
    (c"/dev/full", 1, 7),
    (c"/dev/random", 1, 8),
    (c"/dev/urandom", 1, 9),
    (c"/dev/tty", 5, 0),
];

/// Links into /proc/self/fd (what udev or Docker create).
const LINKS: [(&CStr, &CStr); 4] = [
    (c"/proc/self/fd", c"/dev/fd"),
    (c"/proc/self/fd/0", c"/dev/stdin"),
    (c"/proc/self/fd/1", c"/dev/stdout"),
    (c"/proc/self/fd/2", c"/dev/stderr"),
];

/// Sets up every mount; returns the first fatal failure. Modes are exact (umask 0 meanwhile).
pub fn setup() -> Result<(), MountError> {
    let old_umask = sys::process::umask(0);
    let result = setup_all();
    sys::process::umask(old_umask);
    result
}

fn setup_all() -> Result<(), MountError> {
    if shares_mounts_with_host_init() {
        Line::new()
            .s("not mounting /proc, /dev, /tmp or /sys: this is the mount namespace of the host's init ")
            .s("(start rinit in a new one, e.g. unshare --mount)")
            .emit();
        return Ok(());
    }
    if !is_own_proc() {
        mount_fresh(
            c"/proc",
            0o555,
            c"proc",
            c"proc",
            MS_NOSUID | MS_NODEV | MS_NOEXEC,
            None,
        )?;
    }
    dev()?;
    if !is_mount_point(c"/tmp") {
        mount_fresh(
            c"/tmp",
            0o1777,
            c"tmpfs",
            c"tmpfs",
            MS_NOSUID | MS_NODEV,
            Some(c"mode=1777"),
        )?;
    }
    sys_readonly();
    Ok(())
}

/// /dev: a tmpfs of our own unless one is there. A /dev that is mounted but not a tmpfs (the
/// kernel-wide devtmpfs of the host) is left exactly as it is: writing there changes the host.
fn dev() -> Result<(), MountError> {
    if is_mount_point(c"/dev") {
        let mut t = [0u8; 32];
        if mountinfo::fstype_at(b"/dev", &mut t) != Some(&b"tmpfs"[..]) {
            return Ok(());
        }
    } else {
        let data = Some(c"mode=755,size=65536k");
        mount_fresh(
            c"/dev",
            0o755,
            c"tmpfs",
            c"tmpfs",
            MS_NOSUID | MS_STRICTATIME,
            data,
        )?;
    }
    device_nodes();
    let new_pts = !is_mount_point(c"/dev/pts");
    if new_pts {
        let data = Some(c"newinstance,ptmxmode=0666,mode=0620");
        mount_fresh(
            c"/dev/pts",
            0o755,
            c"devpts",
            c"devpts",
            MS_NOSUID | MS_NOEXEC,
            data,
        )?;
    }
    ptmx(new_pts);
    if !is_mount_point(c"/dev/shm") {
        let data = Some(c"mode=1777,size=65536k");
        mount_fresh(
            c"/dev/shm",
            0o1777,
            c"shm",
            c"tmpfs",
            MS_NOSUID | MS_NODEV | MS_NOEXEC,
            data,
        )?;
    }
    if !is_mount_point(c"/dev/mqueue") {
        // Needs an ipc namespace owned by our user namespace; without one, say so and go on.
        if let Err(e) = mount_fresh(
            c"/dev/mqueue",
            0o755,
            c"mqueue",
            c"mqueue",
            MS_NOSUID | MS_NODEV | MS_NOEXEC,
            None,
        ) {
            e.line().emit();
        }
    }
    for (target, link) in LINKS {
        if let Err(errno) = create_missing(link, |p| sys::fs::symlink(target, p)) {
            Line::new()
                .s("cannot link ")
                .q(link.to_bytes())
                .s(": ")
                .e(errno)
                .emit();
        }
    }
    Ok(())
}

/// Creates the missing device nodes; in a user namespace mknod is refused, and whoever started
/// rinit should have bind-mounted them (rrun does): one line lists what is missing.
fn device_nodes() {
    let mut missing = Line::bare();
    let mut failure = None;
    for (path, major, minor) in NODES {
        if let Err(errno) = create_missing(path, |p| sys::fs::mknod_char(p, 0o666, major, minor)) {
            failure = Some(errno);
            missing = missing.s(" ").q(path.to_bytes());
        }
    }
    if let Some(errno) = failure {
        Line::new()
            .s("cannot create device nodes (")
            .e(errno)
            .s("):")
            .b(missing.as_bytes())
            .emit();
    }
}

/// /dev/ptmx must open our devpts instance: a link to pts/ptmx. A device node left over from
/// elsewhere is replaced when we just mounted a new devpts instance.
fn ptmx(new_pts: bool) {
    let path = c"/dev/ptmx";
    let result = match sys::fs::lstatx(path) {
        Err(Errno::ENOENT) => sys::fs::symlink(c"pts/ptmx", path),
        Ok(st) if new_pts && st.file_type() == sys::fs::S_IFCHR && !is_mount_point(path) => {
            sys::fs::unlink(path).and_then(|()| sys::fs::symlink(c"pts/ptmx", path))
        }
        Ok(_) => Ok(()),
        Err(e) => Err(e),
    };
    if let Err(errno) = result {
        Line::new()
            .s("cannot link /dev/ptmx to pts/ptmx: ")
            .e(errno)
            .emit();
    }
}

/// /sys read-only when the kernel allows it. In a user namespace without its own network
/// namespace sysfs is refused (EPERM): that is expected, and rinit goes on quietly.
fn sys_readonly() {
    if is_mount_point(c"/sys") {
        return;
    }
    match mount_fresh(
        c"/sys",
        0o555,
        c"sysfs",
        c"sysfs",
        MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
        None,
    ) {
        Ok(()) => {}
        Err(e) if e.fstype.is_some() && matches!(e.errno, Errno::EPERM | Errno::EACCES) => {}
        Err(e) => e.line().emit(),
    }
}

/// Creates the mount point if missing, then mounts.
fn mount_fresh(
    path: &'static CStr,
    dir_mode: u32,
    source: &CStr,
    fstype: &'static CStr,
    flags: u64,
    data: Option<&CStr>,
) -> Result<(), MountError> {
    match sys::fs::mkdir(path, dir_mode) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(errno) => {
            return Err(MountError {
                fstype: None,
                path,
                errno,
            })
        }
    }
    sys::fs::mount(source, path, fstype, flags, data).map_err(|errno| MountError {
        fstype: Some(fstype),
        path,
        errno,
    })
}

/// Runs `create` unless `path` exists (as anything, a dangling link included).
fn create_missing(
    path: &CStr,
    create: impl FnOnce(&CStr) -> Result<(), Errno>,
) -> Result<(), Errno> {
    match sys::fs::lstatx(path) {
        Ok(_) => Ok(()),
        Err(Errno::ENOENT) => match create(path) {
            Err(Errno::EEXIST) => Ok(()),
            other => other,
        },
        Err(e) => Err(e),
    }
}

/// True when a filesystem is mounted at `path` (it is the root of a mount).
pub fn is_mount_point(path: &CStr) -> bool {
    let Ok(st) = sys::fs::lstatx(path) else {
        return false;
    };
    if st.attributes_mask & sys::fs::STATX_ATTR_MOUNT_ROOT != 0 {
        return st.attributes & sys::fs::STATX_ATTR_MOUNT_ROOT != 0;
    }
    // Kernels before 5.8: a mount root sits on another device than its parent directory.
    let bytes = path.to_bytes();
    let cut = bytes.iter().rposition(|&c| c == b'/').unwrap_or(0);
    let mut parent = CBuf::<64>::new();
    if parent
        .push(if cut == 0 { b"/" } else { &bytes[..cut] })
        .is_err()
    {
        return false;
    }
    match sys::fs::lstatx(parent.as_cstr()) {
        Ok(p) => (p.dev_major, p.dev_minor) != (st.dev_major, st.dev_minor),
        Err(_) => false,
    }
}

/// True when /proc is a proc mount of our own pid namespace (/proc/self is our pid there).
fn is_own_proc() -> bool {
    if sys::fs::statfs_type(c"/proc") != Ok(sys::fs::PROC_SUPER_MAGIC) {
        return false;
    }
    let mut link = [0u8; 32];
    let mut pid = [0u8; 20];
    let me = crate::msg::decimal(sys::process::getpid() as i64, &mut pid);
    sys::fs::readlink(c"/proc/self", &mut link).is_ok_and(|l| l == me)
}

/// True when /proc belongs to another pid namespace whose init shares our mount namespace: we
/// were started with a new pid namespace but the host's mounts, and mounting would change
/// the host. When this cannot be told (no proc, no access), the kernel's permission checks
/// still stand between us and the host's mounts.
fn shares_mounts_with_host_init() -> bool {
    if sys::fs::statfs_type(c"/proc") != Ok(sys::fs::PROC_SUPER_MAGIC) || is_own_proc() {
        return false;
    }
    let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
    match (
        sys::fs::readlink(c"/proc/1/ns/mnt", &mut a),
        sys::fs::readlink(c"/proc/self/ns/mnt", &mut b),
    ) {
        (Ok(init), Ok(me)) => init == me,
        _ => false,
    }
}
