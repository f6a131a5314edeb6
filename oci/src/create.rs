//! `create` and `run`: the runtime side of making a container from a bundle. Checks the spec,
//! compiles its seccomp filter (for the init to install), records the container under --root,
//! makes its cgroup, joins the namespaces the spec names by path, clones the init into the new
//! ones (the rrun library's clone_child), writes its id maps, puts it in the cgroup, runs the
//! createRuntime hooks, and waits until the init reports ready (or why it failed) over the
//! typed channel. Then it hands the pty to the console socket, writes the pid file and exits:
//! the init stays, blocked on the exec fifo, a child of the caller's subreaper. A failure at
//! any step removes everything made so far.
//! Kernel interfaces: clone3(2), setns(2), /proc/PID/{uid,gid}_map (user_namespaces(7)),
//! mkfifo (mknodat(2)), pipe(2).

use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};
use rustix::fs::{FileType, Mode, OFlags};
use rustix::thread::UnshareFlags;

use crate::state::{self, Record};
use crate::{commands, console, hooks, init, spec};
use rrun::cgroups::Cgroup;
use rrun::channel::{self, Msg};
use rrun::idmap::{IdMaps, IdRange};

/// `create`'s options (runc's flags).
pub struct Opts {
    pub id: String,
    pub bundle: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub preserve_fds: u32,
    /// Keep the caller's session keyring (runc's --no-new-keyring).
    pub no_new_keyring: bool,
}

impl From<liboci_cli::Create> for Opts {
    fn from(a: liboci_cli::Create) -> Opts {
        Opts {
            id: a.container_id,
            bundle: a.bundle,
            console_socket: a.console_socket,
            pid_file: a.pid_file,
            no_pivot: a.no_pivot,
            preserve_fds: a.preserve_fds.max(0) as u32,
            no_new_keyring: a.no_new_keyring,
        }
    }
}

/// What a failure half-way must undo; `disarm` once the container is complete.
struct Undo {
    dir: Option<PathBuf>,
    cgroup: Option<Cgroup>,
    pid: i32,
}

impl Undo {
    fn disarm(&mut self) {
        self.dir = None;
        self.cgroup = None;
        self.pid = 0;
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        if self.pid > 0 {
            if let Ok(fd) = rrun::sys::process::pidfd_open(self.pid) {
                let _ = rrun::sys::process::pidfd_send_signal(fd.as_fd(), 9);
            }
            let _ = rrun::sys::process::waitpid(self.pid, false);
        }
        if let Some(cg) = self.cgroup.take() {
            let _ = cg.kill_all();
            let _ = cg.remove();
        }
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// `rrun-oci create`: prints nothing on success.
pub fn create(root: &Path, o: &Opts) -> Result<()> {
    create_inner(root, o).map(drop)
}

/// Creates the container; returns the init's pid.
fn create_inner(root: &Path, o: &Opts) -> Result<i32> {
    state::check_id(&o.id)?;
    let bundle = o
        .bundle
        .canonicalize()
        .with_context(|| format!("bundle {}", o.bundle.display()))?;
    let (spec, rootfs) = spec::load(&bundle)?;
    let terminal = spec.process().as_ref().and_then(|p| p.terminal()) == Some(true);
    if terminal && o.console_socket.is_none() {
        bail!("config.json: process.terminal needs --console-socket (where the pty goes)");
    }
    let mut limits = spec::limits(&spec)?;
    if crate::rootless::rootless() {
        // As runc: a rootless container gets no device cgroup (it cannot make device nodes;
        // its /dev entries are bound from the host).
        limits.devices = false;
    }
    let extra = spec::extra_limits(&spec)?;
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().clone());
    let filter = spec::seccomp_filter(seccomp.as_ref())?;
    std::fs::create_dir_all(root).with_context(|| format!("make {}", root.display()))?;
    let dir = state::dir(root, &o.id)?;
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("container {} already exists", o.id)
        }
        Err(e) => return Err(e).with_context(|| format!("make {}", dir.display())),
    }
    let mut undo = Undo {
        dir: Some(dir.clone()),
        cgroup: None,
        pid: 0,
    };
    let fifo = dir.join(state::FIFO);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        FileType::Fifo,
        Mode::from_raw_mode(0o622),
        0,
    )
    .with_context(|| format!("mkfifo {}", fifo.display()))?;
    rustix::fs::chmod(&fifo, Mode::from_raw_mode(0o622))?;
    let mut rec = Record {
        id: o.id.clone(),
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        pid: 0,
        pid_start: 0,
        created: state::rfc3339_now(),
        annotations: spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        cgroup_paths: vec![],
        hooks: spec.hooks().clone(),
        paused: false,
        seccomp,
        no_new_keyring: o.no_new_keyring,
        personality: spec.linux().as_ref().and_then(|l| l.personality().clone()),
    };
    rec.save(root)?;
    let rootless = crate::rootless::rootless();
    match Cgroup::create_at(&spec::cgroups_path(&spec, &o.id), &limits) {
        Ok(cg) => {
            rec.cgroup_paths = cg.paths().to_vec();
            undo.cgroup = Some(cg);
            rec.save(root)?;
        }
        // runc's rootless rule: without limits to set, a cgroup it may not make is done
        // without (nothing delegated to the user, as on cgroup v1); the container then has
        // none, and `kill --all` signals its init only.
        Err(e) if rootless && denied(&e) && !asks_limits(&limits, &extra) => {}
        Err(e) if rootless && denied(&e) => bail!(
            "config.json: linux.resources asks for limits, and rootless rrun-oci may not make the container's cgroup (nothing is delegated to this user; remove the limits or delegate a cgroup v2 subtree): {e}"
        ),
        Err(e) => {
            return Err(anyhow::anyhow!(
                "the container's cgroup (linux.cgroupsPath, linux.resources): {e}"
            ))
        }
    }
    if let Some(cg) = &undo.cgroup {
        cg.update(&extra).context("config.json: linux.resources")?;
    }

    let fifo_fd = rustix::fs::open(&fifo, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
        .with_context(|| format!("open {}", fifo.display()))?;
    let (flags, join, new_userns) = namespaces(&spec)?;
    let (parent, child) = channel::pair()?;
    let ctx = init::Ctx {
        chan: child,
        spec: &spec,
        rootfs: &rootfs,
        fifo: &fifo_fd,
        no_pivot: o.no_pivot,
        preserve_fds: o.preserve_fds,
        cgroup_paths: &rec.cgroup_paths,
        new_userns,
        join,
        seccomp: filter.as_ref(),
        keyring: (!o.no_new_keyring).then_some(o.id.as_str()),
    };
    let (pid, ctx) =
        rrun::sys::process::clone_child(flags, None, Some(parent.as_fd()), ctx, init::main);
    drop(ctx);
    let pid = pid.context("clone the container's init")?;
    undo.pid = pid;
    if new_userns {
        id_maps(&spec)?.write(pid)?;
    }
    if let Some(cg) = &undo.cgroup {
        cg.add_pid(pid)?;
    }
    rec.pid = pid;
    rec.pid_start = rrun::sys::procfs::proc_start_time(pid).unwrap_or(0);
    rec.save(root)?;
    let mut doc = rec.document(root);
    doc["status"] = "creating".into();
    let hooks = spec.hooks().clone().unwrap_or_default();
    #[allow(deprecated)]
    hooks::run("prestart", hooks.prestart(), &doc)?;
    hooks::run("createRuntime", hooks.create_runtime(), &doc)?;
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    std::fs::File::from(w).write_all(doc.to_string().as_bytes())?;
    parent.send(&Msg::Setup(vec![r]))?;
    let master = parent
        .wait_for_ready()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if let (Some(sock), Some(m)) = (&o.console_socket, &master) {
        console::send_master(sock, m.as_fd())?;
    }
    if let Some(pf) = &o.pid_file {
        write_pid_file(pf, pid)?;
    }
    undo.disarm();
    Ok(pid)
}

/// A refusal for want of permission (EACCES, EPERM, EROFS), which runc ignores rootless.
fn denied(e: &rrun::cgroups::CgroupError) -> bool {
    use rrun::cgroups::CgroupError as E;
    let io = match e {
        E::Mkdir { source, .. } | E::Write { source, .. } | E::Read { source, .. } => source,
        E::BpfAttach { source, .. } | E::BpfLoad { source, .. } => source,
        _ => return false,
    };
    matches!(
        io.kind(),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
    )
}

/// The spec asks for a limit (not only for a cgroup).
fn asks_limits(l: &rrun::cgroups::Limits, extra: &rrun::cgroups::Update) -> bool {
    l.memory.is_some()
        || l.cpus.is_some()
        || l.cpuset_cpus.is_some()
        || l.pids.is_some()
        || *extra != rrun::cgroups::Update::default()
}

/// runc writes the pid file through a temporary file renamed into place.
fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_extension("rrun-oci-tmp");
    std::fs::write(&tmp, pid.to_string()).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("write the pid file {}", path.display()))
}

/// Namespaces the init joins by path itself.
type Joins = Vec<(LinuxNamespaceType, PathBuf)>;

/// The clone flags of the namespaces to make; joins here those given by path that the init
/// inherits (pid, net, ipc, uts, cgroup), and returns those the init joins itself (user,
/// mount) and whether a new user namespace is made.
fn namespaces(spec: &Spec) -> Result<(UnshareFlags, Joins, bool)> {
    let mut flags = UnshareFlags::empty();
    let mut join = Vec::new();
    let all = spec::namespaces(spec);
    if !all.iter().any(|(t, _)| *t == LinuxNamespaceType::Mount) {
        bail!("config.json: linux.namespaces must include a mount namespace");
    }
    for (t, path) in all {
        match path {
            None => flags |= spec::clone_flag(t),
            Some(p) if matches!(t, LinuxNamespaceType::User | LinuxNamespaceType::Mount) => {
                join.push((t, p))
            }
            Some(p) => {
                let f = std::fs::File::open(&p).with_context(|| {
                    format!("config.json: linux.namespaces {t} path {}", p.display())
                })?;
                rustix::thread::move_into_link_name_space(f.as_fd(), None)
                    .with_context(|| format!("join the {t} namespace {}", p.display()))?;
            }
        }
    }
    // The user namespace is joined first, as its capabilities are needed for the others.
    join.sort_by_key(|(t, _)| *t != LinuxNamespaceType::User);
    Ok((flags, join, flags.contains(UnshareFlags::NEWUSER)))
}

/// linux.uidMappings / gidMappings as the rrun library's id maps.
fn id_maps(spec: &Spec) -> Result<IdMaps> {
    let linux = spec.linux().clone().unwrap_or_default();
    let conv = |m: &Option<Vec<LinuxIdMapping>>| -> Vec<IdRange> {
        m.iter()
            .flatten()
            .map(|m| IdRange {
                inside: m.container_id(),
                outside: m.host_id(),
                count: m.size(),
            })
            .collect()
    };
    let (uid, gid) = (conv(linux.uid_mappings()), conv(linux.gid_mappings()));
    if uid.is_empty() || gid.is_empty() {
        bail!("config.json: a new user namespace needs linux.uidMappings and linux.gidMappings");
    }
    Ok(IdMaps {
        uid,
        gid,
        deny_setgroups: false,
        // rrun-oci runs as root: it writes the maps itself
        helper: false,
    })
}

/// `rrun-oci run`: create, start, and unless --detach wait for the init and delete.
pub fn run(root: &Path, a: &liboci_cli::Run) -> Result<i32> {
    let o = Opts {
        id: a.container_id.clone(),
        bundle: a.bundle.clone(),
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        no_pivot: a.no_pivot,
        preserve_fds: a.preserve_fds.max(0) as u32,
        no_new_keyring: a.no_new_keyring,
    };
    let pid = create_inner(root, &o)?;
    if let Err(e) = commands::start(root, &o.id) {
        let _ = commands::delete(root, &o.id, true);
        return Err(e);
    }
    if a.detach {
        return Ok(0);
    }
    let status = rrun::sys::process::waitpid(pid, false)?.unwrap_or(0);
    if !a.keep {
        commands::delete(root, &o.id, true)?;
    }
    Ok(rrun::sys::process::exit_code_of(status))
}
