//! Creating a container from rrun's side: its folder and state, the cgroup, clone(2) into new
//! namespaces, the id maps, the idmapped layers and overlay handed to the child, and undoing all
//! of it if any step fails. Kernel docs: clone(2), user_namespaces(7), pid_namespaces(7).

use std::fs;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::FileType;
use rustix::process::{Pid, Signal, Uid};
use rustix::thread::UnshareFlags;

use crate::cgroups::{self, Cgroup, Limits};
use crate::channel::{self, Channel, Msg};
use crate::child::{self, ChildCtx};
use crate::error::{user, Context, Result};
use crate::image::ImageHold;
use crate::mounts;
use crate::spec::NetMode;
use crate::state::{Containers, State};
use crate::{memfd, net, security, sys, upper};

/// A container whose PID 1 (rinit) is running.
pub struct Created {
    pub state: State,
    pub pid: i32,
    pub pidfd: OwnedFd,
    /// The pty master when a terminal was asked for.
    pub master: Option<OwnedFd>,
    /// None for a rootless container without limits (no delegated cgroup to make one in).
    pub cgroup: Option<Cgroup>,
}

/// Undoes a half-made container: kills its process, removes its cgroup and folder.
struct Undo<'a> {
    containers: &'a Containers,
    id: String,
    pid: Option<i32>,
    cgroup: Option<Cgroup>,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.pid.and_then(Pid::from_raw) {
            // our own child, not yet reaped, so the pid cannot have been reused
            let _ = rustix::process::kill_process(pid, Signal::KILL);
            let _ = sys::process::waitpid(pid.as_raw_nonzero().get(), false);
        }
        if let Some(cg) = self.cgroup.take() {
            let _ = cg.kill_all();
            if let Err(e) = cg.remove() {
                tracing::warn!("cleanup: {e}");
            }
        }
        // Under the container's lock, as every removal (see Containers::remove_abandoned).
        let _l = self.containers.lock(&self.id);
        if let Err(e) = self.containers.remove_dir(&self.id) {
            tracing::warn!("cleanup: {e}");
        }
    }
}

/// Creates and starts the container described by `st` (its config is complete). The calling
/// thread must have blocked the signals it wants to handle; the child resets its mask.
pub fn create(
    containers: &Containers,
    st: State,
    hold: ImageHold,
    rinit: &Path,
) -> Result<Created> {
    create_with(containers, st, hold, rinit, |_| Ok(()), None)
}

/// As [`create`], calling `before_clone` with the container's folder once it exists (the
/// detached monitor points its stdout/stderr at the log files there, a kept foreground run
/// opens its log there), and giving the container `stdio` as its stdout and stderr instead
/// of rrun's own (the write ends of pipes rrun relays; closed here once the child has them).
///
/// Order, so that rrun killed at any moment leaves a record `ps -a` lists and `rm -f`
/// removes completely: the placeholder state (naming every cgroup directory about to be made)
/// first, then the upper dir, the cgroup and the clone; the pid is recorded as soon as it is
/// known. A child whose rrun died before sending Setup sees end of stream and exits.
///
/// `hold` (this process's hold on the image since it was resolved) is made to last until the
/// container is removed once its state is saved: from then on rbuild refuses to remove the
/// image and its layers until `rrun rm`.
pub fn create_with<F: FnOnce(&Path) -> Result<()>>(
    containers: &Containers,
    mut st: State,
    hold: ImageHold,
    rinit: &Path,
    before_clone: F,
    stdio: Option<[OwnedFd; 2]>,
) -> Result<Created> {
    let dir = containers.dir(&st.id);
    let rinit_fd = memfd::sealed_copy(rinit)?;
    let seccomp = security::filter(&st.config.security, Some(containers.root()))?;
    let (parent, kid) = channel::pair()?;
    let limits = cgroup_limits(&st);
    if let Some(l) = &limits {
        st.cgroup_paths = cgroups::candidate_paths(&st.id)?;
        tracing::trace!(?l, "cgroup limits");
    }
    containers.reserve(&st)?;
    let mut undo = Undo {
        containers,
        id: st.id.clone(),
        pid: None,
        cgroup: None,
        armed: true,
    };
    hold.keep()?;
    upper::prepare(&dir, &st.id, st.upper_place(), &st.config.idmaps)?;
    before_clone(&dir)?;
    share_stdio(&st, stdio.as_ref());
    if let Some(l) = &limits {
        undo.cgroup = Some(Cgroup::create(&st.id, l)?);
    }
    tracing::debug!(us = crate::elapsed_us(), "folder and cgroup ready");

    let cg_paths = undo
        .cgroup
        .as_ref()
        .map(|c| c.paths().to_vec())
        .unwrap_or_default();
    let (v2, v1): (Vec<PathBuf>, Vec<PathBuf>) = cg_paths.into_iter().partition(|p| is_cgroup2(p));
    let ctx = ChildCtx {
        chan: kid,
        config: &st.config,
        container_dir: &dir,
        rinit: rinit_fd.as_fd(),
        new_cgroupns: true,
        stdio: stdio.as_ref().map(|[o, e]| [o.as_fd(), e.as_fd()]),
        cgroup_mounts: undo
            .cgroup
            .as_ref()
            .map(Cgroup::inside_mounts)
            .unwrap_or_default(),
        seccomp: seccomp.as_ref(),
    };
    let pid = spawn(ctx, v2.first(), parent.as_fd())?;
    drop(stdio);
    undo.pid = Some(pid);
    tracing::debug!(us = crate::elapsed_us(), "cloned");
    let master = start(containers, &mut st, pid, &v1, &parent)?;
    drop(rinit_fd);
    let pidfd = sys::process::pidfd_open(pid).ctx(|| format!("pidfd_open {pid}"))?;
    undo.armed = false;
    let cgroup = undo.cgroup.take();
    Ok(Created {
        state: st,
        pid,
        pidfd,
        master,
        cgroup,
    })
}

/// After the clone: records the pid, writes the id maps, joins the v1 cgroups `v1`, hands the
/// child its mounts, waits until it is ready (returning its pty master), sets its
/// `--ulimit`s, and waits until it exec'd rinit.
fn start(
    containers: &Containers,
    st: &mut State,
    pid: i32,
    v1: &[PathBuf],
    parent: &Channel,
) -> Result<Option<OwnedFd>> {
    st.pid = pid;
    st.pid_start = sys::procfs::proc_start_time(pid).unwrap_or(0);
    st.started_at_ns = crate::clock::now_ns();
    {
        let _l = containers.lock(&st.id)?;
        containers.save(st)?;
    }
    st.config.idmaps.write(pid)?;
    if !v1.is_empty() {
        Cgroup::from_paths(v1)?.add_pid(pid)?;
    }
    tracing::debug!(us = crate::elapsed_us(), "state, maps and cgroup done");
    // netd works on the network while rrun builds the root.
    let pending = net::attach::start(st, pid, &containers.dir(&st.id))?;
    // pasta or slirp4netns: running and recorded (so that every end stops it) before the
    // container's command can start.
    let user_net = net::usernet::start(st, pid, &containers.dir(&st.id))?;
    let mounts = build_mounts(pid, containers, st)?;
    tracing::debug!(us = crate::elapsed_us(), "overlay and volumes built");
    if let Some(etc) = net::container_etc(containers, st, pending, user_net.as_ref())? {
        parent.send(&Msg::Net(etc))?;
    }
    tracing::debug!(us = crate::elapsed_us(), "network attached");
    parent.send(&Msg::Setup(mounts))?;
    let master = parent.wait_for_ready()?;
    tracing::debug!(us = crate::elapsed_us(), "child ready");
    // Now, as runc does (at procReady): limits asked for the command do not bind the setup
    // (a low `nofile` would refuse the descriptors it opens). The child waits for Start.
    if !st.config.ulimits.is_empty() {
        crate::rlimits::apply(pid, &st.config.ulimits)?;
        parent.send(&Msg::Start)?;
    }
    parent.wait_for_exec()?;
    tracing::debug!(us = crate::elapsed_us(), "rinit exec'd");
    Ok(master)
}

/// The container's cgroup limits, or None for a rootless run without limits (there is no
/// delegated cgroup to make one in).
fn cgroup_limits(st: &State) -> Option<Limits> {
    let cfg = &st.config;
    if cfg.rootless && cfg.limits.is_empty() {
        return None;
    }
    Some(Limits {
        memory: cfg.limits.memory,
        cpus: cfg.limits.cpus,
        cpuset_cpus: cfg.limits.cpuset_cpus.clone(),
        pids: cfg.limits.pids,
        // Root containers may use only the default devices; rootless ones cannot open device
        // nodes at all (their mounts are nodev, see cgroups/devices.rs).
        devices: !cfg.rootless,
        every_controller: false,
    })
}

/// clone3 into the new namespaces, directly inside the cgroup v2 directory `v2` if any
/// (CLONE_INTO_CGROUP: moving a task later through cgroup.procs waits for an RCU grace period,
/// milliseconds). The child runs `child::main` and never returns here.
fn spawn(ctx: ChildCtx<'_>, v2: Option<&PathBuf>, parent_end: BorrowedFd<'_>) -> Result<i32> {
    let mut flags = ctx.config.idmaps.clone_flag()
        | UnshareFlags::NEWPID
        | UnshareFlags::NEWNS
        | UnshareFlags::NEWUTS
        | UnshareFlags::NEWIPC;
    if !matches!(ctx.config.net, NetMode::Host | NetMode::Container(_)) {
        flags |= UnshareFlags::NEWNET;
    }
    // --net container:NAME: the child is born in that container's network namespace.
    let _joined = match &ctx.config.net_opts.join {
        Some(ns) => Some(net::join::enter(ns.as_fd())?),
        None => None,
    };
    let v2_dir = match v2 {
        Some(p) => Some(fs::File::open(p).ctx(|| format!("open {}", p.display()))?),
        None => None,
    };
    // The child closes its copy of the parent's end of the socketpair (so it sees end of
    // stream when rrun dies) and runs child::main, which ends in exec or _exit. The parent
    // gets `ctx` back and drops it on return, closing its copy of the child's end.
    let cgroup = v2_dir.as_ref().map(|f| f.as_fd());
    let (pid, _ctx) =
        sys::process::clone_child(flags, cgroup, Some(parent_end), ctx, |ctx| child::main(ctx));
    pid.ctx(|| "clone the container's namespaces".into())
}

/// Under remap the container's root cannot reopen an anonymous pipe or socket owned by host
/// root (as `echo > /dev/stdout` does through /proc/self/fd/1): hand such stdio objects (rrun's
/// own 0-2, or the pipes given as the container's stdout and stderr) to the container's root.
/// Files and terminals are left as they are.
fn share_stdio(st: &State, stdio: Option<&[OwnedFd; 2]>) {
    let ids = &st.config.idmaps;
    if ids.is_identity() {
        return;
    }
    let Some(uid) = ids.host_uid(0) else { return };
    let fds: Vec<BorrowedFd<'_>> = match stdio {
        Some([o, e]) => vec![rustix::stdio::stdin(), o.as_fd(), e.as_fd()],
        None => vec![
            rustix::stdio::stdin(),
            rustix::stdio::stdout(),
            rustix::stdio::stderr(),
        ],
    };
    for fd in fds {
        let Ok(sb) = rustix::fs::fstat(fd) else {
            continue;
        };
        let kind = FileType::from_raw_mode(sb.st_mode);
        let anon = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .map(|l| {
                l.to_string_lossy().starts_with("pipe:[")
                    || l.to_string_lossy().starts_with("socket:[")
            })
            .unwrap_or(false);
        if matches!(kind, FileType::Fifo | FileType::Socket) && sb.st_uid == 0 && anon {
            let _ = rustix::fs::fchown(fd, Some(Uid::from_raw(uid)), None);
        }
    }
}

/// The overlay root (over idmapped clones of the layers) and the volume mounts, detached.
/// Rootless, rrun has no right to make mounts: the child builds them in its own namespaces.
fn build_mounts(pid: i32, containers: &Containers, st: &State) -> Result<Vec<OwnedFd>> {
    let cfg = &st.config;
    if cfg.rootless {
        return Ok(Vec::new());
    }
    let userns = if cfg.idmaps.is_identity() {
        None
    } else {
        let p = format!("/proc/{pid}/ns/user");
        Some(OwnedFd::from(
            fs::File::open(&p).ctx(|| format!("open {p}"))?,
        ))
    };
    let ns = userns.as_ref().map(|f| f.as_fd());
    let order = mounts::overlay_layer_order(&cfg.lowerdirs);
    let mut layers = Vec::with_capacity(order.len());
    for l in &order {
        if !l.is_dir() {
            return Err(user(format!(
                "layer folder {} is missing: the image store is damaged (try `rbuild fsck`)",
                l.display()
            )));
        }
        layers.push(mounts::clone_tree(l, ns, false)?);
    }
    let dir = containers.dir(&st.id);
    let upper = upper::upper_dir(&dir, &st.id, st.upper_place());
    let work = upper::work_dir(&dir, &st.id, st.upper_place());
    let root = mounts::overlay(&layers, &upper, &work)?;
    drop(layers);
    let mut out = vec![root];
    for v in &cfg.volumes {
        out.push(mounts::clone_volume(v, ns)?);
    }
    tracing::debug!(fds = out.len(), first = out[0].as_raw_fd(), "mounts ready");
    Ok(out)
}

/// True when `p` lies on a cgroup v2 filesystem.
fn is_cgroup2(p: &Path) -> bool {
    let Ok(c) = sys::cstr(p) else { return false };
    rustix::fs::statfs(c.as_c_str()).is_ok_and(|s| s.f_type == sys::CGROUP2_SUPER_MAGIC)
}
