//! The container's init, from the clone to the execve of `process.args`: it runs in the new
//! namespaces as the child of `rrun-oci create`, waits for the parent's setup message (id maps
//! written, cgroup joined; with it the state document for the hooks), builds the root
//! ([`crate::mounts`]), takes its terminal, reports ready over the rrun library's typed
//! channel (with the pty master), then blocks opening the exec fifo for writing until
//! `rrun-oci start` opens it for reading, and only then becomes the spec's user, installs the
//! seccomp filter `create` compiled and execs ([`process::finish_and_exec`]).
//! Kernel interfaces: setns(2), sethostname(2), setdomainname(2), setsid(2), fifo(7); the rest
//! through mounts.rs and process.rs.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use rrun::channel::{Channel, Msg};
use rrun::security::Filter;

use crate::{hooks, mounts, process};

/// What the init needs from `create`.
pub struct Ctx<'a> {
    pub chan: Channel,
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    /// The exec fifo, opened O_PATH by `create` (the init may not reach --root once it is
    /// root of a new user namespace mapped to another host user).
    pub fifo: &'a OwnedFd,
    pub no_pivot: bool,
    pub preserve_fds: u32,
    pub cgroup_paths: &'a [PathBuf],
    /// The container has a new user namespace (become its root once mapped).
    pub new_userns: bool,
    /// Namespaces to join by path here (user and mount; the parent joined the others).
    pub join: Vec<(LinuxNamespaceType, PathBuf)>,
    /// linux.seccomp, compiled by `create` (None: no filter).
    pub seccomp: Option<&'a Filter>,
    /// The container id, whose session keyring to join (None: --no-new-keyring).
    pub keyring: Option<&'a str>,
}

/// Runs the init to its execve; on failure reports the error to `create` and exits 1.
pub fn main(ctx: Ctx<'_>) -> i32 {
    let err = match run(&ctx) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    // Before `create` returned, it reports the error; after, stderr is all there is.
    if ctx.chan.send(&Msg::Failed(format!("{err:#}"))).is_err() {
        eprintln!("rrun-oci: container init: {err:#}");
    }
    1
}

fn run(ctx: &Ctx<'_>) -> Result<std::convert::Infallible> {
    let spec = ctx.spec;
    // Mount targets and folders made in the root get the modes they state, whatever the
    // caller's umask; config.json's process.user.umask comes at the end (process.rs).
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(
        rrun::child::CONTAINER_UMASK,
    ));
    let setup = ctx.chan.wait_for_setup()?;
    let state = read_state(setup.into_iter().next())?;
    for (t, path) in &ctx.join {
        let f = std::fs::File::open(path).with_context(|| {
            format!("config.json: linux.namespaces {t} path {}", path.display())
        })?;
        rustix::thread::move_into_link_name_space(f.as_fd(), None)
            .with_context(|| format!("join the {t} namespace {}", path.display()))?;
    }
    if ctx.new_userns {
        rrun::sys::ids::set_ids(0, 0, &[]).context("become root in the user namespace")?;
    }
    let userns = ctx.new_userns || ctx.join.iter().any(|(t, _)| *t == LinuxNamespaceType::User);
    process::join_keyring(ctx.keyring, userns)?;
    let proc_ = spec.process().clone().unwrap_or_default();
    process::set_oom_score_adj(&proc_)?;
    if let Some(h) = spec.hostname().as_ref().filter(|h| !h.is_empty()) {
        rustix::system::sethostname(h.as_bytes()).context("config.json: hostname")?;
    }
    if let Some(d) = spec.domainname().as_ref().filter(|d| !d.is_empty()) {
        rustix::system::setdomainname(d.as_bytes()).context("config.json: domainname")?;
    }
    mounts::prepare(
        spec,
        &mounts::Ctx {
            rootfs: ctx.rootfs,
            // Rootless (already in a user namespace), mknod is refused just the same.
            userns: userns || crate::rootless::rootless(),
            cgroup_paths: ctx.cgroup_paths,
        },
    )?;
    let hooks = spec.hooks().clone().unwrap_or_default();
    hooks::run("createContainer", hooks.create_container(), &state)?;
    mounts::enter_root(ctx.rootfs, ctx.no_pivot)?;
    // A missing process.cwd is made (0755, as the container's root, never leaving the root),
    // as runc does; before the root may turn read-only.
    if let Some(cwd) = proc_.cwd().to_str() {
        rrun::inroot::Root::open()?.dir(cwd, "config.json: process.cwd")?;
    }
    write_sysctls(spec)?; // before /proc/sys turns read-only
    mounts::finish(spec)?;
    let master = match proc_.terminal() == Some(true) {
        true => Some(take_terminal(&proc_)?),
        false => {
            rustix::process::setsid().context("setsid")?;
            None
        }
    };
    let cwd = proc_.cwd();
    std::env::set_current_dir(cwd)
        .with_context(|| format!("config.json: process.cwd {}", cwd.display()))?;
    let args = proc_.args().clone().unwrap_or_default();
    let env = proc_.env().clone().unwrap_or_default();
    let exe = process::find_executable(&args[0], &env)?;
    process::check_caps(&proc_)?;
    process::set_personality(spec.linux().as_ref().and_then(|l| l.personality().as_ref()))?;
    ctx.chan.send(&Msg::Ready(master))?;
    wait_for_start(ctx.fifo)?;
    hooks::run_with_env("startContainer", hooks.start_container(), &state, &env)?;
    process::finish_and_exec(&proc_, &exe, &args, &env, ctx.preserve_fds, ctx.seccomp)
}

/// The state document `create` sent through a pipe with the setup message.
fn read_state(fd: Option<OwnedFd>) -> Result<serde_json::Value> {
    let Some(fd) = fd else {
        bail!("rrun-oci create sent no state document");
    };
    let mut text = String::new();
    std::fs::File::from(fd).read_to_string(&mut text)?;
    Ok(serde_json::from_str(&text)?)
}

/// linux.sysctl through the container's /proc/sys.
fn write_sysctls(spec: &Spec) -> Result<()> {
    let sysctl = spec
        .linux()
        .as_ref()
        .and_then(|l| l.sysctl().clone())
        .unwrap_or_default();
    for (k, v) in sysctl {
        if k.contains("..") || k.contains('/') && k.contains('.') {
            bail!("config.json: linux.sysctl {k:?} is not a sysctl name");
        }
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        std::fs::write(&path, v.as_bytes())
            .with_context(|| format!("config.json: linux.sysctl {k}"))?;
    }
    Ok(())
}

/// A pty from the container's devpts, as the controlling terminal of this new session and
/// its stdio; returns the master for the console socket.
fn take_terminal(p: &oci_spec::runtime::Process) -> Result<OwnedFd> {
    let (master, slave) = rrun::rootfs::open_pty()?;
    if let Some(b) = p.console_size() {
        let ws = rustix::termios::Winsize {
            ws_row: b.height() as u16,
            ws_col: b.width() as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let _ = rustix::termios::tcsetwinsize(&slave, ws);
    }
    rrun::tty::become_session_leader_on(&slave)?;
    Ok(master)
}

/// Blocks until `start`: opening the fifo for writing waits for its reader.
fn wait_for_start(fifo: &OwnedFd) -> Result<()> {
    let path = format!("/proc/self/fd/{}", fifo.as_raw_fd());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .context("open the exec fifo (is /proc mounted in the container?)")?;
    f.write_all(b"0").context("write the exec fifo")?;
    Ok(())
}
