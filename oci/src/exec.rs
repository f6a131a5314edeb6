//! `exec`: a new process in a running container, as runc does it: the process comes from
//! `--process FILE` (a runtime-spec process object) or from the bundle's process with the
//! given args, cwd, env, user and tty. rrun-oci joins the init's pid namespace itself (it
//! applies to its children), forks, and the child joins the user namespace first, then ipc,
//! uts, net, cgroup and mount (which also makes the container's root its root and cwd), waits
//! until it is in the container's cgroup, takes a pty if asked (sent to --console-socket),
//! becomes the process's user, installs the container's seccomp filter (compiled here from
//! the linux.seccomp `create` recorded, as runc applies the container's filter to exec'd
//! processes) and execs. Without --detach, rrun-oci waits and exits with the process's code.
//! Kernel interfaces: setns(2), /proc/PID/ns (namespaces(7)), fork(2), execve(2).

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::Process;
use rrun::cgroups::Cgroup;
use rrun::channel::{self, Channel, Msg};
use rrun::security::Filter;

use crate::state::{Record, Status};
use crate::{console, process};

/// The namespaces joined, user first and mount last (runc's order).
const NAMESPACES: [&str; 6] = ["user", "ipc", "uts", "net", "cgroup", "mnt"];

pub fn exec(root: &Path, a: &liboci_cli::Exec) -> Result<i32> {
    let rec = Record::load(root, &a.container_id)?;
    match rec.status(root) {
        Status::Running | Status::Created => {}
        Status::Paused if a.ignore_paused => {}
        s => bail!(
            "cannot exec in a {} container {}",
            s.as_str(),
            a.container_id
        ),
    }
    if a.cgroup.is_some() {
        bail!("exec --cgroup: joining a sub-cgroup is not supported by rrun-oci");
    }
    let p = process_of(&rec, a)?;
    let terminal = p.terminal() == Some(true);
    if terminal && a.console_socket.is_none() {
        bail!("exec --tty needs --console-socket (where the pty goes)");
    }
    let cg = Cgroup::from_recorded(&rec.cgroup_paths)?;
    let filter = crate::spec::seccomp_filter(rec.seccomp.as_ref())?;
    let joins = namespaces_of(rec.pid)?;
    let new_userns = joins.iter().any(|(n, _)| n == "user");
    let pidns = format!("/proc/{}/ns/pid", rec.pid);
    if differs(&pidns) {
        let f = std::fs::File::open(&pidns).with_context(|| format!("open {pidns}"))?;
        rustix::thread::move_into_link_name_space(f.as_fd(), None)
            .context("join the container's pid namespace")?;
    }
    let (parent, child) = channel::pair()?;
    let preserve = a.preserve_fds.max(0) as u32;
    // The child's copy of `parent` closes on exec (close-on-exec); it never reads from it.
    let how = How {
        p: &p,
        joins: &joins,
        new_userns,
        preserve,
        seccomp: filter.as_ref(),
        keyring: (!rec.no_new_keyring).then_some(rec.id.as_str()),
        personality: rec.personality.as_ref(),
    };
    let (pid, child) = rrun::sys::process::fork(child, |chan| child_main(chan, &how));
    drop(child);
    let pid = pid.context("fork the exec'd process")?;
    let started = (|| {
        cg.add_pid(pid)?;
        parent.send(&Msg::Setup(vec![]))?;
        let master = parent
            .wait_for_ready()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if let (Some(sock), Some(m)) = (&a.console_socket, &master) {
            console::send_master(sock, m.as_fd())?;
        }
        parent.wait_for_exec().map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Some(pf) = &a.pid_file {
            let tmp = pf.with_extension("rrun-oci-tmp");
            std::fs::write(&tmp, pid.to_string())?;
            std::fs::rename(&tmp, pf).with_context(|| format!("write {}", pf.display()))?;
        }
        Ok::<_, anyhow::Error>(())
    })();
    if let Err(e) = started {
        if let Ok(fd) = rrun::sys::process::pidfd_open(pid) {
            let _ = rrun::sys::process::pidfd_send_signal(fd.as_fd(), 9);
        }
        let _ = rrun::sys::process::waitpid(pid, false);
        return Err(e);
    }
    if a.detach {
        return Ok(0);
    }
    let status = rrun::sys::process::waitpid(pid, false)?.unwrap_or(0);
    Ok(rrun::sys::process::exit_code_of(status))
}

/// The process to run: --process FILE, else the bundle's process with the command line's
/// args, cwd, env, user, tty, additional gids and no_new_privs.
fn process_of(rec: &Record, a: &liboci_cli::Exec) -> Result<Process> {
    if let Some(f) = &a.process {
        let text = std::fs::read(f).with_context(|| format!("read --process {}", f.display()))?;
        let p: Process = serde_json::from_slice(&text)
            .with_context(|| format!("parse --process {}", f.display()))?;
        if p.args().as_ref().is_none_or(|v| v.is_empty()) {
            bail!("--process {}: args must name the command", f.display());
        }
        return Ok(p);
    }
    if a.command.is_empty() {
        bail!(
            "exec {}: give the command to run (or --process FILE)",
            a.container_id
        );
    }
    let (spec, _) = crate::spec::load(&rec.bundle)?;
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut env = p.env().clone().unwrap_or_default();
    for (k, v) in &a.env {
        env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k.as_str()));
        env.push(format!("{k}={v}"));
    }
    p.set_env(Some(env));
    if let Some((uid, gid)) = a.user {
        let mut u = p.user().clone();
        u.set_uid(uid);
        u.set_gid(gid.unwrap_or(0));
        p.set_user(u);
    }
    if !a.additional_gids.is_empty() {
        let mut u = p.user().clone();
        u.set_additional_gids(Some(a.additional_gids.clone()));
        p.set_user(u);
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    Ok(p)
}

/// True when the namespace file differs from this process's own.
fn differs(ns: &str) -> bool {
    let own = ns.rsplit('/').next().map(|n| format!("/proc/self/ns/{n}"));
    let ino = |p: &str| std::fs::metadata(p).map(|m| m.ino()).ok();
    match own {
        Some(o) => ino(ns) != ino(&o),
        None => false,
    }
}

/// The init's namespaces that differ from ours, in joining order.
fn namespaces_of(pid: i32) -> Result<Vec<(String, PathBuf)>> {
    let mut v = Vec::new();
    for n in NAMESPACES {
        let p = format!("/proc/{pid}/ns/{n}");
        if differs(&p) {
            v.push((n.to_string(), PathBuf::from(p)));
        }
    }
    Ok(v)
}

/// What the forked child needs.
struct How<'a> {
    p: &'a Process,
    /// The container's namespaces to join, in order.
    joins: &'a [(String, PathBuf)],
    /// One of them is a user namespace (become its root).
    new_userns: bool,
    /// Descriptors past 2 left open (--preserve-fds).
    preserve: u32,
    /// The container's seccomp filter (None: no filter).
    seccomp: Option<&'a Filter>,
    /// The container id, whose session keyring to join (None: created with --no-new-keyring).
    keyring: Option<&'a str>,
    /// The container's linux.personality.
    personality: Option<&'a oci_spec::runtime::LinuxPersonality>,
}

/// In the forked child: join, wait for the cgroup, terminal, user, filter, exec.
fn child_main(chan: Channel, how: &How<'_>) -> i32 {
    let err = match child_steps(&chan, how) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    if chan.send(&Msg::Failed(format!("{err:#}"))).is_err() {
        eprintln!("rrun-oci: exec: {err:#}");
    }
    255
}

fn child_steps(chan: &Channel, how: &How<'_>) -> Result<std::convert::Infallible> {
    let (p, joins) = (how.p, how.joins);
    let files = joins
        .iter()
        .map(|(n, path)| {
            std::fs::File::open(path)
                .with_context(|| format!("open the {n} namespace {}", path.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    for ((n, _), f) in joins.iter().zip(&files) {
        rustix::thread::move_into_link_name_space(f.as_fd(), None)
            .with_context(|| format!("join the container's {n} namespace"))?;
    }
    drop(files);
    if how.new_userns {
        rrun::sys::ids::set_ids(0, 0, &[])
            .context("become root in the container's user namespace")?;
    }
    process::join_keyring(how.keyring, how.new_userns)?;
    chan.wait_for_setup()?;
    let master = match p.terminal() == Some(true) {
        true => {
            let (master, slave) = rrun::rootfs::open_pty()?;
            rrun::tty::become_session_leader_on(&slave)?;
            Some(master)
        }
        false => {
            rustix::process::setsid().context("setsid")?;
            None
        }
    };
    std::env::set_current_dir(p.cwd()).with_context(|| format!("chdir {}", p.cwd().display()))?;
    let args = p.args().clone().unwrap_or_default();
    let env = p.env().clone().unwrap_or_default();
    let exe = process::find_executable(&args[0], &env)?;
    process::check_caps(p)?;
    process::set_personality(how.personality)?;
    chan.send(&Msg::Ready(master))?;
    process::finish_and_exec(p, &exe, &args, &env, how.preserve, how.seccomp)
}
