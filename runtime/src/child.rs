//! The container side of creation: runs in the cloned child (PID 1 of the new pid namespace,
//! inside the new user (but under `--userns host`), mount, uts, ipc and net namespaces), waits
//! for rrun to write its id maps, builds the root, leaves rrun's session and execs rinit from
//! its sealed memfd as the container's user. Kernel docs: namespaces(7), cgroup_namespaces(7),
//! execveat(2), sethostname(2), setsid(2), capabilities(7).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::mount::MountPropagationFlags;
use rustix::thread::UnshareFlags;

use crate::channel::{Channel, Msg, NetEtc};
use crate::error::{Context, Error, Result, Step, StepError};
use crate::spec::{self, ContainerConfig, NetMode, OsArg};
use crate::sys::process::CStrArray;
use crate::{cgroupfs, inroot, mounts, netns, rootfs, security, sys, tty, users};

/// What the child needs besides the config.
pub struct ChildCtx<'a> {
    pub chan: Channel,
    pub config: &'a ContainerConfig,
    pub container_dir: &'a Path,
    pub rinit: BorrowedFd<'a>,
    /// Whether this child must enter a cgroup namespace once rrun placed it in its cgroup.
    pub new_cgroupns: bool,
    /// The container's stdout and stderr when they are not rrun's own (pipes rrun relays).
    pub stdio: Option<[BorrowedFd<'a>; 2]>,
    /// The hierarchies to show at /sys/fs/cgroup ([`cgroupfs`]).
    pub cgroup_mounts: Vec<crate::cgroups::InsideMount>,
    /// The seccomp filter, compiled by rrun (None: unconfined).
    pub seccomp: Option<&'a security::Filter>,
}

/// The umask a container's processes start with (`rrun` and `rrun exec` alike): 0022, as
/// runc gives when config.json sets none (OCI runtime spec, config.md `process.user.umask`)
/// and Podman's `--umask` default.
pub const CONTAINER_UMASK: u32 = 0o022;

/// Runs the child to the exec of rinit; on any failure reports it to rrun and exits 125.
pub fn main(ctx: ChildCtx<'_>) -> ! {
    let err = match setup_and_exec(&ctx) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = ctx.chan.send(&Msg::Failed(err.to_string()));
    // _exit: this forked child must not run the parent's destructors or atexit handlers
    sys::process::exit_now(125)
}

/// The child's steps, in order; each says what it needs from the one before.
fn setup_and_exec(ctx: &ChildCtx<'_>) -> Result<std::convert::Infallible> {
    let cfg = ctx.config;
    // The container's umask is runc's and Podman's default, never rrun's caller's: what the
    // setup makes in the root (a missing working directory, mount targets, /sys/fs/cgroup's
    // folders) gets the mode it states, and the command starts with 0022 (umask(2)).
    rustix::process::umask(Mode::from_raw_mode(CONTAINER_UMASK));
    if let Some([out, err]) = ctx.stdio {
        sys::fd::dup2(out.as_raw_fd(), 1).ctx(|| "stdout to rrun's pipe".into())?;
        sys::fd::dup2(err.as_raw_fd(), 2).ctx(|| "stderr to rrun's pipe".into())?;
    }
    // First what needs no id map, while rrun writes the maps and builds the overlay.
    let (mut host, resolv_conf) = before_id_maps(cfg)?;
    let (root, volume_fds, net) = receive_mounts(ctx)?;
    let dir_fd = become_container_root(ctx)?;
    host.add_etc(&etc_files(cfg, resolv_conf, net))?;
    let (root, volume_fds) = match root {
        Some(r) => (r, volume_fds),
        None => rootless_mounts(cfg, ctx.container_dir)?,
    };
    let built = build_root(ctx, &mut host, root, dir_fd, volume_fds)?;
    lock_mounts()?;
    let pty = match cfg.process.tty {
        true => Some(rootfs::open_pty()?),
        false => None,
    };
    let master = enter_session(pty, &host)?;
    drop(host);
    let (argv, envp) = rinit_command(cfg, &built.user)?;
    let (a, e) = (CStrArray::new(&argv), CStrArray::new(&envp));
    ctx.chan.send(&Msg::Ready(master))?;
    // rrun sets the --ulimit's now, the setup's own descriptors and memory done with, and
    // before the switch to the container's user (which the kernel checks against nproc):
    // runc's procReady point. The child allocates nothing from here on but on failure.
    if !cfg.ulimits.is_empty() {
        ctx.chan.wait_for_start()?;
    }
    become_user(cfg, &built.user, ctx.seccomp)?;
    exec_rinit(ctx, &a, &e)
}

/// In the new namespaces, before rrun wrote the id maps: a private mount tree, loopback up
/// under `--net none`, the hostname, the host's resolv.conf (for `--net none|host`) and the
/// host handles the root will need ([`rootfs::capture_host`]).
fn before_id_maps(cfg: &ContainerConfig) -> Result<(rootfs::HostHandles, Vec<u8>)> {
    sys::mount::change_propagation(
        Path::new("/"),
        MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
    )
    .ctx(|| "make / rprivate".into())?;
    if cfg.net == NetMode::None {
        netns::loopback_up()?;
    }
    rustix::system::sethostname(cfg.hostname.as_bytes())
        .ctx(|| format!("set hostname {:?}", cfg.hostname))?;
    let resolv_conf = match cfg.net {
        NetMode::None | NetMode::Host => std::fs::read("/etc/resolv.conf").unwrap_or_default(),
        _ => Vec::new(),
    };
    let host = rootfs::capture_host(!cfg.process.stdin && !cfg.process.tty)?;
    Ok((host, resolv_conf))
}

/// Waits for rrun's setup message: the overlay root then the volumes as detached mounts, or
/// nothing when rootless (the child makes them itself, [`rootless_mounts`]); and the /etc
/// files of a network of netd's, which rrun sends before.
fn receive_mounts(ctx: &ChildCtx<'_>) -> Result<(Option<OwnedFd>, Vec<OwnedFd>, Option<NetEtc>)> {
    let (fds, net) = ctx.chan.wait_for_setup_and_net()?;
    let mut fds = fds.into_iter();
    if ctx.config.rootless {
        return Ok((None, Vec::new(), net));
    }
    let root = fds
        .next()
        .ok_or_else(|| Error::Child("rrun sent no root mount".into()))?;
    Ok((Some(root), fds.collect(), net))
}

/// Opens the container's folder (the overlay's mount point), then becomes root of the new user
/// namespace and, if asked, enters a new cgroup namespace. Returns the folder's descriptor.
fn become_container_root(ctx: &ChildCtx<'_>) -> Result<OwnedFd> {
    // Still with host root's uid (unmapped here), which owns the store: reach the container's
    // folder now, even below a folder only root may enter; the overlay is attached over it.
    let dir_fd = sys::fd::openat2(
        rustix::fs::CWD,
        ctx.container_dir,
        OFlags::PATH | OFlags::DIRECTORY,
        Mode::empty(),
        ResolveFlags::empty(),
    )
    .ctx(|| format!("open {}", ctx.container_dir.display()))?;
    // Become root of the new user namespace now that the maps exist.
    sys::ids::set_ids(0, 0, &[]).ctx(|| "become root in the container's user namespace".into())?;
    if ctx.new_cgroupns {
        sys::ns::unshare(UnshareFlags::NEWCGROUP).ctx(|| "unshare the cgroup namespace".into())?;
    }
    Ok(dir_fd)
}

/// The container's /etc/hostname, /etc/hosts and /etc/resolv.conf (those of its network when
/// rrun sent them).
fn etc_files(cfg: &ContainerConfig, resolv_conf: Vec<u8>, net: Option<NetEtc>) -> rootfs::EtcFiles {
    if let Some(n) = net {
        return rootfs::EtcFiles {
            hostname: format!("{}\n", cfg.hostname),
            hosts: n.hosts,
            resolv_conf: n.resolv_conf,
        };
    }
    rootfs::EtcFiles {
        hostname: format!("{}\n", cfg.hostname),
        hosts: format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{}\n",
            cfg.hostname
        ),
        resolv_conf,
    }
}

/// What [`build_root`] leaves for the last steps.
struct BuiltRoot {
    /// The user rinit runs as, resolved inside the container's root.
    user: users::User,
}

/// Attaches `root` over the container's folder, pivots into it and mounts everything inside:
/// kernel filesystems, its cgroups at /sys/fs/cgroup, /dev, masked paths, /etc files,
/// volumes, tmpfs mounts; resolves the user and checks the working directory.
fn build_root(
    ctx: &ChildCtx<'_>,
    host: &mut rootfs::HostHandles,
    root: OwnedFd,
    dir_fd: OwnedFd,
    volume_fds: Vec<OwnedFd>,
) -> Result<BuiltRoot> {
    // The overlay goes over the container's own folder: in this private mount namespace that
    // hides nothing from anyone, and needs no extra mount-point directory on disk.
    let cfg = ctx.config;
    rootfs::enter_root(root, dir_fd.as_fd())?;
    drop(dir_fd);
    let croot = inroot::Root::open()?;
    let tty_gid = cfg.idmaps.host_gid(5).map(|_| 5);
    rootfs::attach_kernel_fs(host)?;
    cgroupfs::mount_inside(&croot, &ctx.cgroup_mounts)?;
    rootfs::populate_dev(host, cfg.process.tty, tty_gid)?;
    if !cfg.security.privileged {
        rootfs::protect_kernel_paths(&croot)?;
    }
    rootfs::bind_etc(host, &croot)?;
    rootfs::attach_volumes(&croot, &cfg.volumes, volume_fds)?;
    rootfs::mount_tmpfs(&croot, &cfg.tmpfs)?;

    let user = users::in_container(&croot, &cfg.process.user, &cfg.idmaps)?;
    croot.dir(
        &cfg.process.cwd,
        &format!("working directory {}", cfg.process.cwd),
    )?;
    drop(croot);
    let as_root = user.uid == 0 && user.gid == 0;
    // rinit mounts what is missing only as root with CAP_SYS_ADMIN (and a filter letting
    // mount(2) through: only --privileged is sure to); otherwise rrun mounts it now.
    let rinit_may_mount = as_root && cfg.security.privileged && cfg.idmaps.own_userns();
    if !rinit_may_mount {
        rootfs::premount_kernel_fs(cfg.process.tty)?;
    }
    if cfg.read_only {
        rootfs::make_root_readonly()?;
    }
    Ok(BuiltRoot { user })
}

/// Locks every mount made so far (the root, volumes, masked and read-only paths, /proc, /sys,
/// /dev and its nodes) against the container itself: nobody inside can unmount, move or
/// remount them read-write, whatever capabilities it holds, as the kernel locks the mounts a
/// less privileged mount namespace inherits ([`sys::ns::enter_locked_mount_ns`]). The
/// capability drop and the seccomp filter come on top of this; this alone already holds for
/// a container root with every capability. Mounts rinit adds afterwards (under
/// `--privileged`: /tmp, /dev/shm, ...) stay the container's own to change.
fn lock_mounts() -> Result<()> {
    sys::ns::enter_locked_mount_ns().ctx(|| "lock the container's mounts".into())
}

/// A session of its own, always: with -t on the pty (its controlling terminal), else
/// without any controlling terminal, so nothing in the container can reach the caller's
/// terminal (TIOCSTI) or get its job-control signals. Standard streams: the pty, or the
/// inherited ones with stdin from /dev/null unless -i. Returns the pty's master, for rrun.
fn enter_session(
    pty: Option<(OwnedFd, OwnedFd)>,
    host: &rootfs::HostHandles,
) -> Result<Option<OwnedFd>> {
    match pty {
        Some((master, slave)) => {
            tty::become_session_leader_on(&slave)?;
            Ok(Some(master))
        }
        None => {
            leave_session()?;
            if let Some(null) = &host.devnull {
                sys::fd::dup2(null.as_raw_fd(), 0).ctx(|| "stdin from /dev/null".into())?;
            }
            Ok(None)
        }
    }
}

/// Shrinks the capability bounding set, switches to `user` with its groups, lowers the other
/// capability sets, sets no_new_privs ([`security`]) and enters the working directory. rinit
/// starts as the user (see rootfs::premount_kernel_fs).
fn become_user(
    cfg: &ContainerConfig,
    user: &users::User,
    seccomp: Option<&security::Filter>,
) -> Result<()> {
    security::apply_before_user(&cfg.security, seccomp)?;
    sys::ids::set_ids(user.uid, user.gid, &user.groups)
        .ctx(|| format!("switch to user {}", user_arg(user)))?;
    security::apply_after_user(&cfg.security)?;
    std::env::set_current_dir(&cfg.process.cwd).ctx(|| format!("chdir {}", cfg.process.cwd))
}

/// rinit's argv (`rinit -- COMMAND...`) and the command's environment (HOME added from the
/// user's passwd entry when the config has none).
fn rinit_command(
    cfg: &ContainerConfig,
    user: &users::User,
) -> Result<(Vec<CString>, Vec<CString>)> {
    let mut env: Vec<OsArg> = cfg.process.env.clone();
    if !spec::has_env(&env, "HOME") {
        env.push(format!("HOME={}", user.home).into());
    }
    let mut argv: Vec<OsArg> = vec!["rinit".into(), "--".into()];
    argv.extend(cfg.process.args.iter().cloned());
    Ok((to_cstrings(&argv)?, to_cstrings(&env)?))
}

/// Execs rinit from its memfd with `argv` and `envp`, only descriptors 0-2 and default signal
/// handling, under the filter.
fn exec_rinit(
    ctx: &ChildCtx<'_>,
    argv: &CStrArray<'_>,
    envp: &CStrArray<'_>,
) -> Result<std::convert::Infallible> {
    sys::fd::cloexec_from(3).ctx(|| "mark inherited descriptors close-on-exec".into())?;
    sys::signal::reset_signals_for_exec();
    security::apply_last(&ctx.config.security, ctx.seccomp)?;
    // the memfd is a sealed copy of rinit
    let err = sys::process::execveat_fd(ctx.rinit, argv, envp);
    Err(err).ctx(|| "exec rinit from its memfd".into())
}

/// setsid(2): a new session without a controlling terminal (the caller's terminal, if any,
/// stays open as a plain descriptor: no TIOCSTI, no job-control signals through it).
pub fn leave_session() -> std::result::Result<(), StepError> {
    rustix::process::setsid().step("setsid: leave rrun's session")?;
    Ok(())
}

/// `UID:GID[:G1,G2...]` for rinit.
pub fn user_arg(u: &users::User) -> String {
    let mut s = format!("{}:{}", u.uid, u.gid);
    if !u.groups.is_empty() {
        s.push(':');
        s.push_str(
            &u.groups
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    s
}

/// C strings for execve; any bytes but NUL.
pub fn to_cstrings(v: &[OsArg]) -> Result<Vec<CString>> {
    v.iter()
        .map(|s| {
            CString::new(s.as_bytes()).map_err(|_| {
                Error::User(format!(
                    "argument or variable {:?} contains a NUL byte",
                    s.to_string_lossy()
                ))
            })
        })
        .collect()
}

/// Rootless: the overlay (with `userxattr`, over the layers by path, upper and work dirs in
/// the container's folder: see upper.rs) and plain binds of the volumes, made here where the
/// child is root of the user namespace owning its mounts.
fn rootless_mounts(cfg: &ContainerConfig, dir: &Path) -> Result<(OwnedFd, Vec<OwnedFd>)> {
    let (upper, work) = (dir.join("upper"), dir.join("work"));
    let root =
        mounts::overlay_by_path(&mounts::overlay_layer_order(&cfg.lowerdirs), &upper, &work)?;
    let mut vols = Vec::with_capacity(cfg.volumes.len());
    for v in &cfg.volumes {
        // By path: the descriptor rrun opened belongs to the mount namespace this child left,
        // and open_tree(2) refuses to clone a mount of another namespace (EINVAL). The child
        // acts as the same user rrun does, so resolving the path again grants nothing new.
        vols.push(mounts::clone_tree(&v.source, None, v.readonly)?);
    }
    Ok((root, vols))
}
