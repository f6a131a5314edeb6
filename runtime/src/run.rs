//! `rrun --image IMAGE [--] COMMAND`: turning the command line and the image into a container
//! config and running it in the foreground (or handing it to a detached monitor); the end is
//! [`crate::finish`]'s. Kernel interfaces: see container.rs and supervise.rs.

use std::os::fd::AsFd;
use std::path::Path;

use crate::cgroups;
use crate::cli::RunArgs;
use crate::container;
use crate::error::{user, Error, Result};
use crate::idmap::IdMaps;
use crate::security::Security;
use crate::spec::{self, ContainerConfig, LimitsConfig, NetMode, ProcessConfig, Volume};
use crate::state::{self, Containers, State};
use crate::supervise::{self, Io};
use crate::{detach, finish, image, memfd, sys, tty};

/// Builds the initial state (status "created") of a new container from the command line:
/// every check that needs no image first, then the image, resolved and held for the new
/// container (the hold is returned: see image.rs).
pub fn plan(root: &Path, a: &RunArgs) -> Result<(State, image::ImageHold)> {
    let reference = image_reference(a)?;
    tty::check_interactive(a.interactive, a.tty)?;
    let net = network(a)?;
    if let Some(n) = &a.name {
        state::check_name(n)?;
    }
    let root_caller = rustix::process::geteuid().is_root();
    let idmaps = id_maps(a.userns.as_deref(), root_caller)?;
    let limits = limits(a)?;
    let volumes = mount_paths(a)?;
    let ulimits = crate::rlimits::from_flags(&a.ulimit)?;
    let security = Security::from_flags(&a.cap_add, &a.cap_drop, a.privileged, &a.security_opt)?;
    let id = state::new_id()?;
    let (img, hold) = image::resolve(root, reference, !root_caller, &id)?;
    let hostname = a.hostname.clone().unwrap_or_else(|| id[..12].to_string());
    spec::check_hostname(&hostname)?;
    let process = process(&img, a, &hostname)?;
    let me = std::process::id() as i32;
    let st = State {
        name: a.name.clone().unwrap_or_else(|| id[..12].to_string()),
        image: img.id.clone(),
        image_ref: reference.to_string(),
        created: state::now(),
        pid: 0,
        pid_start: 0,
        owner_pid: me,
        owner_start: sys::procfs::proc_start_time(me).unwrap_or(0),
        exit_code: None,
        finished: false,
        oom_killed: false,
        detached: a.detach,
        auto_remove: a.rm || (a.name.is_none() && !a.detach),
        cgroup_paths: vec![],
        config: ContainerConfig {
            hostname,
            net,
            userns: a.userns.clone().unwrap_or_else(|| "remap".into()),
            idmaps,
            rootless: !root_caller,
            read_only: a.read_only,
            volumes,
            tmpfs: a.tmpfs.clone(),
            limits,
            process,
            security,
            ulimits,
            lowerdirs: img.lowerdirs,
        },
        id,
    };
    Ok((st, hold))
}

/// IMAGE as given; without --image, an unknown option swallowed as COMMAND is named as such.
fn image_reference(a: &RunArgs) -> Result<&str> {
    match (&a.image, a.command.first()) {
        (Some(r), _) => Ok(r.as_str()),
        (None, Some(w)) if w.as_encoded_bytes().starts_with(b"-") => Err(user(format!(
            "unknown option {} (see `rrun --help`)",
            w.to_string_lossy()
        ))),
        (None, _) => Err(user("--image IMAGE is required (see `rrun --help`)")),
    }
}

/// --net and -p: only none and host work without netd.
fn network(a: &RunArgs) -> Result<NetMode> {
    let net = NetMode::parse(&a.net)?;
    if !matches!(net, NetMode::None | NetMode::Host) {
        return Err(user(format!(
            "--net {} needs netd, which this rrun cannot use yet: use --net none or --net host",
            net.name()
        )));
    }
    if !a.publish.is_empty() {
        return Err(user(
            "-p needs a bridge network (netd): it cannot be used with --net none or --net host",
        ));
    }
    Ok(net)
}

/// The user namespace's maps: remap (default as root) or host; rootless always maps the caller.
fn id_maps(userns: Option<&str>, root_caller: bool) -> Result<IdMaps> {
    Ok(match (userns, root_caller) {
        (None | Some("remap"), true) => IdMaps::remap(),
        (Some("host"), true) => IdMaps::host(),
        (None | Some("remap") | Some("host"), false) => {
            let (uid, gid) = (
                rustix::process::geteuid().as_raw(),
                rustix::process::getegid().as_raw(),
            );
            IdMaps::single(uid, gid)
        }
        (Some(o), _) => return Err(user(format!("bad --userns {o:?}: use remap or host"))),
    })
}

fn limits(a: &RunArgs) -> Result<LimitsConfig> {
    Ok(LimitsConfig {
        memory: a.memory.as_deref().map(cgroups::parse_size).transpose()?,
        cpus: a.cpus.as_deref().map(cgroups::parse_cpus).transpose()?,
        cpuset_cpus: a
            .cpuset_cpus
            .as_deref()
            .map(cgroups::check_cpuset)
            .transpose()?,
        pids: a.pids_limit,
    })
}

/// The volumes, and checks of the --tmpfs and -w paths inside the container.
fn mount_paths(a: &RunArgs) -> Result<Vec<Volume>> {
    let volumes = a
        .volumes
        .iter()
        .map(|v| Volume::parse(v))
        .collect::<Result<Vec<_>>>()?;
    for t in &a.tmpfs {
        spec::check_container_path(t)?;
        spec::check_mount_target(t, &format!("--tmpfs {t}"))?;
    }
    if let Some(w) = &a.workdir {
        spec::check_container_path(w)?;
    }
    Ok(volumes)
}

/// The process rinit starts: the image's defaults overridden by the command line.
fn process(img: &image::Image, a: &RunArgs, hostname: &str) -> Result<ProcessConfig> {
    Ok(ProcessConfig {
        args: spec::command_line(img, &a.command)?,
        env: spec::environment(&img.env, &a.env, hostname, a.tty)?,
        cwd: a
            .workdir
            .clone()
            .or(img.workdir.clone())
            .unwrap_or_else(|| "/".into()),
        user: a.user.clone().or(img.user.clone()).unwrap_or_default(),
        tty: a.tty,
        stdin: a.interactive,
    })
}

/// `rrun ... --image IMAGE`: returns the exit code rrun should exit with.
pub fn run(root: &Path, a: &RunArgs) -> Result<i32> {
    let (st, hold) = plan(root, a)?;
    tracing::debug!(us = crate::elapsed_us(), "planned");
    let containers = Containers::open(root)?;
    let rinit = memfd::find_rinit()?;
    if a.detach {
        return detach::start(&containers, st, hold, &rinit);
    }
    run_foreground(&containers, st, hold, &rinit)
}

fn run_foreground(
    containers: &Containers,
    st: State,
    hold: image::ImageHold,
    rinit: &Path,
) -> Result<i32> {
    let _old = sys::signal::block_signals(&supervise::HANDLED);
    let sigfd = sys::signal::signalfd(&supervise::HANDLED).map_err(|e| Error::Sys {
        what: "signalfd".into(),
        source: e,
    })?;
    let tty_mode = st.config.process.tty;
    let stdin_on = st.config.process.stdin;
    let c = container::create(containers, st, hold, rinit)?;
    let _raw = if tty_mode && stdin_on {
        Some(tty::RawMode::enter(rustix::stdio::stdin()))
    } else {
        None
    };
    let io = Io {
        master: c.master.as_ref().map(|m| m.as_fd()),
        stdin: (tty_mode && stdin_on).then(rustix::stdio::stdin),
        stdout: rustix::stdio::stdout(),
    };
    let status = supervise::wait(c.pid, c.pidfd.as_fd(), &sigfd, &io);
    drop(_raw);
    let status = status?;
    tracing::debug!(us = crate::elapsed_us(), "container exited");
    let code = finish::finish(containers, c, status);
    tracing::debug!(us = crate::elapsed_us(), "cleaned up");
    Ok(code)
}
