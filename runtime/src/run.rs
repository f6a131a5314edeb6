//! `rrun --image IMAGE [--] COMMAND`: turning the command line and the image into a container
//! config and running it in the foreground (or handing it to a detached monitor); the end is
//! [`crate::finish`]'s. Kernel interfaces: see container.rs and supervise.rs.

use std::os::fd::AsFd;
use std::path::Path;

use netd_proto::ClientError;

use crate::cgroups;
use crate::cli::RunArgs;
use crate::container;
use crate::error::{user, Error, Result};
use crate::idmap::IdMaps;
use crate::net::{self, NetOptions};
use crate::security::Security;
use crate::spec::{self, ContainerConfig, LimitsConfig, NetMode, ProcessConfig, Volume};
use crate::state::{self, Containers, State};
use crate::supervise::{self, Io};
use crate::tmpfs::Tmpfs;
use crate::{detach, finish, image, memfd, sys, tty};

/// Builds the initial state (status "created") of a new container from the command line:
/// every check that needs no image first, then the image, resolved and held for the new
/// container (the hold is returned: see image.rs), and the notes for stderr, to be printed
/// once the container exists (so that a refusal, even netd's, stays one line).
pub fn plan(root: &Path, a: &RunArgs) -> Result<(State, image::ImageHold, Vec<String>)> {
    let reference = image_reference(a)?;
    tty::check_interactive(a.interactive, a.tty)?;
    let root_caller = rustix::process::geteuid().is_root();
    let mut notes = Vec::new();
    let (net, net_opts) = network(root, a, root_caller, &mut notes)?;
    if let Some(n) = &a.name {
        state::check_name(n)?;
    }
    let (idmaps, note) = id_maps(a.userns.as_deref(), root_caller)?;
    notes.extend(note);
    let limits = limits(a)?;
    if !root_caller {
        rootless_limits(&limits)?;
    }
    let (volumes, tmpfs) = mount_paths(a)?;
    let ulimits = crate::rlimits::from_flags(&a.ulimit)?;
    let security = Security::from_flags(&a.cap_add, &a.cap_drop, a.privileged, &a.security_opt)?;
    let id = state::new_id()?;
    let (img, hold) = image::resolve(root, reference, !root_caller, &id)?;
    let hostname = match (&a.hostname, &net) {
        (Some(h), _) => h.clone(),
        // Docker and Podman: a container on the host's network has the host's name.
        (None, NetMode::Host) => host_name().unwrap_or_else(|| id[..12].to_string()),
        (None, _) => id[..12].to_string(),
    };
    spec::check_hostname(&hostname)?;
    let process = process(&img, a, &hostname)?;
    let me = std::process::id() as i32;
    let created_at_ns = crate::clock::now_ns();
    let st = State {
        name: a.name.clone().unwrap_or_else(|| id[..12].to_string()),
        image: img.id.clone(),
        image_ref: reference.to_string(),
        created: created_at_ns / 1_000_000_000,
        created_at_ns,
        started_at_ns: 0,
        finished_at_ns: 0,
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
            net_opts,
            userns: a.userns.clone().unwrap_or_else(|| "remap".into()),
            idmaps,
            rootless: !root_caller,
            read_only: a.read_only,
            volumes,
            tmpfs,
            limits,
            process,
            security,
            ulimits,
            lowerdirs: img.lowerdirs,
        },
        id,
    };
    Ok((st, hold, notes))
}

/// Prints the notes of [`plan`], one line each.
fn print_notes(notes: &[String]) {
    for n in notes {
        eprintln!("rrun: {}", crate::error::one_line(n));
    }
}

/// `rrun run [OPTIONS] IMAGE [COMMAND [ARG...]]` as the `--image` form: the first word after
/// the options is IMAGE (an option after it belongs to the command, as in `docker run`).
pub fn docker_order(mut a: RunArgs) -> Result<RunArgs> {
    if a.image.is_some() {
        return Ok(a);
    }
    let Some(first) = a.command.first() else {
        return Err(user(
            "rrun run needs an IMAGE: rrun run [OPTIONS] IMAGE [COMMAND [ARG...]]",
        ));
    };
    if first.as_encoded_bytes().starts_with(b"-") {
        return Err(user(format!(
            "unknown option {} (see `rrun run --help`)",
            first.to_string_lossy()
        )));
    }
    let image = first.to_str().map(str::to_string).ok_or_else(|| {
        user(format!(
            "bad IMAGE {:?}: use sha256:<id>, an id prefix or NAME[:TAG]",
            first.to_string_lossy()
        ))
    })?;
    a.command.remove(0);
    a.image = Some(image);
    Ok(a)
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

/// The host's own hostname (uname(2)), when it is one a container may have.
fn host_name() -> Option<String> {
    let uts = rustix::system::uname();
    let name = uts.nodename().to_str().ok()?;
    spec::check_hostname(name).ok().map(|()| name.to_string())
}

/// --net, -p, --network-alias, --dns and --add-host (see net/options.rs); without --net,
/// [`default_mode`] (its note, if any, goes to `notes`).
fn network(
    root: &Path,
    a: &RunArgs,
    root_caller: bool,
    notes: &mut Vec<String>,
) -> Result<(NetMode, NetOptions)> {
    let net = match &a.net {
        Some(n) => NetMode::parse(n)?,
        None => default_mode(root_caller, a, notes),
    };
    let netd = net::attach::network_of(&net).is_some();
    if !a.publish.is_empty() && !netd && !net.user_mode() {
        return Err(user(format!(
            "-p needs a network of netd's (--net bridge or a user network), --net pasta or --net slirp4netns, not --net {}",
            net.name()
        )));
    }
    if net == NetMode::Pasta && rustix::process::geteuid().is_root() {
        // pasta drops root's capabilities before it opens the container's namespaces, which
        // are not open to it then (Podman runs it as root only for rootless containers).
        return Err(user(
            "--net pasta is for rootless containers: as root use --net bridge or --net slirp4netns",
        ));
    }
    if !a.network_alias.is_empty() && !matches!(net, NetMode::Network(_)) {
        return Err(user("--network-alias needs a user network (--net NETWORK)"));
    }
    let mut opts = NetOptions {
        ports: a
            .publish
            .iter()
            .map(|p| net::options::parse_publish(p))
            .collect::<Result<_>>()?,
        aliases: a.network_alias.clone(),
        dns: a
            .dns
            .iter()
            .map(|d| {
                d.parse()
                    .map_err(|_| user(format!("bad --dns {d:?}: use an IP address")))
            })
            .collect::<Result<_>>()?,
        add_hosts: a
            .add_host
            .iter()
            .map(|h| net::options::parse_add_host(h))
            .collect::<Result<_>>()?,
        join: None,
    };
    for al in &opts.aliases {
        net::options::check_alias(al)?;
    }
    // (user-mode networks try each host port themselves: see net/hostports.rs)
    if !root_caller && netd {
        unprivileged_ports(&a.publish, &opts.ports)?;
    }
    if let NetMode::Container(name) = &net {
        if !rustix::process::geteuid().is_root() {
            return Err(user(format!(
                "--net container:{name} needs root (rrun enters that container's namespace for the clone)"
            )));
        }
        let (fd, _) = net::join::open_target(root, name)?;
        opts.join = Some(std::sync::Arc::new(fd));
    }
    Ok((net, opts))
}

/// Without --net: bridge, Docker's default. A user whom netd does not serve (no netd, or its
/// socket not open to that user) gets `--net pasta` instead where pasta can start, as Podman's
/// rootless default since v5, and otherwise none with a note saying so: a rootless run must
/// work without netd. Not when --network-alias asks for netd (nor -p without pasta): its
/// refusal is the answer then.
fn default_mode(root_caller: bool, args: &RunArgs, notes: &mut Vec<String>) -> NetMode {
    if root_caller || !args.network_alias.is_empty() {
        return NetMode::Bridge;
    }
    let why = match net::access::probe() {
        Ok(()) => return NetMode::Bridge,
        Err(ClientError::NotRunning { path }) => {
            format!("netd is not running (no listener at {})", path.display())
        }
        Err(ClientError::NoPermission { path }) => {
            format!("netd's socket {} is not open to you", path.display())
        }
        // Something else is wrong with netd: the attach will say what.
        Err(_) => return NetMode::Bridge,
    };
    if net::usernet::pasta_usable() {
        return NetMode::Pasta;
    }
    if !args.publish.is_empty() {
        return NetMode::Bridge;
    }
    notes.push(format!(
        "note: the container has no network but loopback (--net none): {why}, and pasta cannot start (`--net pasta` says why); `--net bridge` says how to reach netd, `--net none` hides this note"
    ));
    NetMode::None
}

/// Host ports below 1024 are root's to publish (netd refuses them to anyone else, see
/// netd/src/auth.rs): refused here before anything is made, naming the -p that asked.
fn unprivileged_ports(specs: &[String], ports: &[netd_proto::PortRequest]) -> Result<()> {
    for (spec, p) in specs.iter().zip(ports) {
        if p.host_port != 0 && p.host_port < 1024 {
            return Err(user(format!(
                "-p {spec}: host port {} is below 1024, and only root may publish those: use a host port from 1024 up (e.g. -p {}:{}), or give none and netd picks one",
                p.host_port,
                u32::from(p.host_port) + 8000,
                p.port
            )));
        }
    }
    Ok(())
}

/// The user namespace's maps: remap (default as root) or host; rootless maps the caller to root
/// and its subordinate ranges, if any, to the other ids (else a one-line note for stderr).
fn id_maps(userns: Option<&str>, root_caller: bool) -> Result<(IdMaps, Option<String>)> {
    let maps = match (userns, root_caller) {
        (None | Some("remap"), true) => IdMaps::remap()?,
        (Some("host"), true) => IdMaps::host(),
        (None | Some("remap") | Some("host"), false) => {
            let (uid, gid) = (
                rustix::process::geteuid().as_raw(),
                rustix::process::getegid().as_raw(),
            );
            let name = store::subid::user_name(uid);
            return Ok(IdMaps::rootless(uid, gid, name.as_deref()));
        }
        (Some(o), _) => return Err(user(format!("bad --userns {o:?}: use remap or host"))),
    };
    Ok((maps, None))
}

/// Rootless limits need a delegated cgroup: refused in one line naming what is missing.
fn rootless_limits(l: &LimitsConfig) -> Result<()> {
    let mut needs = Vec::new();
    if l.memory.is_some() {
        needs.push(("--memory", "memory"));
    }
    if l.cpus.is_some() {
        needs.push(("--cpus", "cpu"));
    }
    if l.cpuset_cpus.is_some() {
        needs.push(("--cpuset-cpus", "cpuset"));
    }
    if l.pids.is_some() {
        needs.push(("--pids-limit", "pids"));
    }
    cgroups::check_delegated(&needs).map_err(user)
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
        pids: pids_limit(a.pids_limit)?,
    })
}

/// `--pids-limit N`: N tasks at most; 0 and -1 mean unlimited (Docker's and Podman's values).
fn pids_limit(n: Option<i64>) -> Result<Option<u64>> {
    match n {
        None | Some(0) | Some(-1) => Ok(None),
        Some(n) if n > 0 => Ok(Some(n as u64)),
        Some(n) => Err(user(format!(
            "bad --pids-limit {n}: use a number of tasks, or 0 or -1 for no limit"
        ))),
    }
}

/// The volumes and --tmpfs mounts, and a check of the -w path inside the container.
fn mount_paths(a: &RunArgs) -> Result<(Vec<Volume>, Vec<Tmpfs>)> {
    let volumes = a
        .volumes
        .iter()
        .map(|v| Volume::parse(v))
        .collect::<Result<Vec<_>>>()?;
    let mut tmpfs = Vec::with_capacity(a.tmpfs.len());
    for arg in &a.tmpfs {
        let t = Tmpfs::parse(arg)?;
        spec::check_container_path(&t.path)?;
        spec::check_mount_target(&t.path, &format!("--tmpfs {}", t.path))?;
        tmpfs.push(t);
    }
    if let Some(w) = &a.workdir {
        spec::check_container_path(w)?;
    }
    Ok((volumes, tmpfs))
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
    let (st, hold, notes) = plan(root, a)?;
    tracing::debug!(us = crate::elapsed_us(), "planned");
    let containers = Containers::open(root)?;
    let rinit = memfd::find_rinit()?;
    if a.detach {
        let code = detach::start(&containers, st, hold, &rinit)?;
        print_notes(&notes);
        return Ok(code);
    }
    run_foreground(&containers, st, hold, &rinit, &notes)
}

fn run_foreground(
    containers: &Containers,
    st: State,
    hold: image::ImageHold,
    rinit: &Path,
    notes: &[String],
) -> Result<i32> {
    let _old = sys::signal::block_signals(&supervise::HANDLED);
    let sigfd = sys::signal::signalfd(&supervise::HANDLED).map_err(|e| Error::Sys {
        what: "signalfd".into(),
        source: e,
    })?;
    let tty_mode = st.config.process.tty;
    let stdin_on = st.config.process.stdin;
    // A kept container keeps a log of its output, as Docker does (`rrun logs`): with -t a copy
    // of what the pty relay shows, else its stdout and stderr come through pipes rrun relays to
    // its own stdout and stderr (as Docker and Podman relay them), copying both to the log.
    let keep_log = !st.auto_remove;
    let pipes = match keep_log && !tty_mode {
        true => Some([output_pipe()?, output_pipe()?]),
        false => None,
    };
    let mut log = None;
    let (readers, writers) = match pipes {
        Some([(r1, w1), (r2, w2)]) => (Some([r1, r2]), Some([w1, w2])),
        None => (None, None),
    };
    let c = container::create_with(
        containers,
        st,
        hold,
        rinit,
        |dir| {
            if keep_log {
                log = Some(detach::create_log(dir)?);
            }
            Ok(())
        },
        writers,
    )?;
    print_notes(notes);
    let _raw = if tty_mode && stdin_on {
        Some(tty::RawMode::enter(rustix::stdio::stdin()))
    } else {
        None
    };
    let io = Io {
        master: c.master.as_ref().map(|m| m.as_fd()),
        stdin: (tty_mode && stdin_on).then(rustix::stdio::stdin),
        stdout: rustix::stdio::stdout(),
        pipes: readers.as_ref().map(|[o, e]| [o.as_fd(), e.as_fd()]),
        log: log.as_ref().map(|l| l.as_fd()),
    };
    let status = supervise::wait(c.pid, c.pidfd.as_fd(), &sigfd, &io);
    drop(_raw);
    let status = status?;
    tracing::debug!(us = crate::elapsed_us(), "container exited");
    let code = finish::finish(containers, c, status);
    tracing::debug!(us = crate::elapsed_us(), "cleaned up");
    Ok(code)
}

/// A pipe (read end, write end), both close-on-exec, for the container's stdout or stderr.
fn output_pipe() -> Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| Error::Sys {
        what: "pipe for the container's output".into(),
        source: e.into(),
    })
}
