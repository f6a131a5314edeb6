//! The subcommands on an existing container: `start` (release the exec fifo), `state`, `kill`,
//! `delete`, `ps`, `pause` / `resume` and `list`, with runc's answers: `state` of a missing
//! container fails, `delete --force` of a missing one succeeds, `delete` of a running one
//! without --force fails. Kernel interfaces: fifo(7), poll(2), pidfd_send_signal(2), kill(2),
//! and the cgroup files through the rrun library (freezer, cgroup.procs).

use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rustix::event::{PollFd, PollFlags};
use rustix::fs::{Mode, OFlags};

use crate::hooks;
use crate::state::{self, Record, Status};
use rrun::cgroups::Cgroup;

/// How long `start` waits for a created init to take the fifo.
const START_WAIT: Duration = Duration::from_secs(10);

/// `start ID`: lets the created init go on to exec the user's command, then runs poststart.
pub fn start(root: &Path, id: &str) -> Result<()> {
    let rec = Record::load(root, id)?;
    match rec.status(root) {
        Status::Created => {}
        Status::Stopped => bail!("cannot start a container that has stopped"),
        s => bail!("cannot start an already {} container", s.as_str()),
    }
    let fifo = state::dir(root, id)?.join(state::FIFO);
    let f = rustix::fs::open(
        &fifo,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("open {}", fifo.display()))?;
    let begun = Instant::now();
    loop {
        let mut fds = [PollFd::new(&f, PollFlags::IN)];
        let ts = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(n) if n > 0 => break,
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e).context("poll the exec fifo"),
        }
        if !rec.init_alive() {
            bail!("container {id}: its init exited before start");
        }
        if begun.elapsed() > START_WAIT {
            bail!("container {id}: its init did not take the exec fifo within 10 s");
        }
    }
    let mut b = [0u8; 1];
    let n = std::fs::File::from(f).read(&mut b).unwrap_or(0);
    if n != 1 {
        bail!("container {id}: its init exited before start");
    }
    std::fs::remove_file(&fifo).with_context(|| format!("remove {}", fifo.display()))?;
    let poststart = rec.hooks.as_ref().and_then(|h| h.poststart().clone());
    if let Err(e) = hooks::run("poststart", &poststart, &rec.document(root)) {
        eprintln!("rrun-oci: warning: {e:#}");
    }
    Ok(())
}

/// `state ID`: the OCI state JSON (indented, as runc prints it).
pub fn state(root: &Path, id: &str) -> Result<()> {
    let rec = Record::load(root, id)?;
    println!("{}", serde_json::to_string_pretty(&rec.document(root))?);
    Ok(())
}

/// `kill [--all] ID SIGNAL`.
pub fn kill(root: &Path, id: &str, sig: &str, all: bool) -> Result<()> {
    let rec = Record::load(root, id)?;
    let n = rrun::commands::parse_signal(sig).map_err(|e| anyhow::anyhow!("{e}"))?;
    let stopped = rec.status(root) == Status::Stopped;
    if stopped && !all {
        bail!("container {id} is not running");
    }
    // Without a cgroup (rootless, see create.rs) --all reaches the init only.
    if all && rec.cgroup_paths.is_empty() && stopped {
        return Ok(());
    }
    if all && !rec.cgroup_paths.is_empty() {
        let cg = Cgroup::from_recorded(&rec.cgroup_paths)?;
        for pid in cg.pids() {
            if let Ok(fd) = rrun::sys::process::pidfd_open(pid) {
                let _ = rrun::sys::process::pidfd_send_signal(fd.as_fd(), n);
            }
        }
        return Ok(());
    }
    let fd = rrun::sys::process::pidfd_open(rec.pid).context("open the container's init")?;
    rrun::sys::process::pidfd_send_signal(fd.as_fd(), n)
        .with_context(|| format!("send signal {n} to container {id}"))?;
    Ok(())
}

/// `delete [--force] ID`.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let rec = match Record::load(root, id) {
        Ok(r) => r,
        Err(_) if force && !state::dir(root, id)?.join(state::RECORD).exists() => {
            // A directory left by a create killed half-way still goes.
            let _ = std::fs::remove_dir_all(state::dir(root, id)?);
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let status = rec.status(root);
    if matches!(status, Status::Running | Status::Paused) && !force {
        bail!(
            "cannot delete container {id} that is not stopped: {}",
            status.as_str()
        );
    }
    let cg = Cgroup::from_recorded(&rec.cgroup_paths)?;
    if status != Status::Stopped {
        if let Ok(fd) = rrun::sys::process::pidfd_open(rec.pid) {
            let _ = rrun::sys::process::pidfd_send_signal(fd.as_fd(), 9);
        }
    }
    cg.kill_all()?;
    cg.remove()?;
    let poststop = rec.hooks.as_ref().and_then(|h| h.poststop().clone());
    if let Err(e) = hooks::run("poststop", &poststop, &rec.document(root)) {
        eprintln!("rrun-oci: warning: {e:#}");
    }
    let dir = state::dir(root, id)?;
    std::fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))
}

/// `ps [--format table|json] ID`: the host pids of the container's processes.
pub fn ps(root: &Path, id: &str, format: &str) -> Result<()> {
    let rec = Record::load(root, id)?;
    let pids = Cgroup::from_recorded(&rec.cgroup_paths)?.pids();
    match format {
        "json" => println!("{}", serde_json::to_string(&pids)?),
        "table" => {
            println!("{:>8} {:<16}", "PID", "CMD");
            for p in pids {
                let comm = rrun::sys::procfs::comm(p).unwrap_or_default();
                println!("{p:>8} {comm:<16}");
            }
        }
        f => bail!("ps --format {f:?}: use table or json"),
    }
    Ok(())
}

/// `pause ID` (`on`) / `resume ID`: freeze or thaw every process of the container.
pub fn pause(root: &Path, id: &str, on: bool) -> Result<()> {
    let mut rec = Record::load(root, id)?;
    match (rec.status(root), on) {
        // runc also pauses a created container (its init waits frozen until resume).
        (Status::Running | Status::Created, true) | (Status::Paused, false) => {}
        (s, true) => bail!("container {id} is {}, not running", s.as_str()),
        (s, false) => bail!("container {id} is {}, not paused", s.as_str()),
    }
    let mut cg = Cgroup::from_recorded(&rec.cgroup_paths)?;
    cg.freeze(on)?;
    rec.paused = on;
    rec.save(root)
}

/// `list [--format table|json] [-q]`.
pub fn list(root: &Path, format: &str, quiet: bool) -> Result<()> {
    let mut recs: Vec<Record> = match std::fs::read_dir(root) {
        Ok(rd) => rd
            .flatten()
            .filter_map(|e| Record::load(root, &e.file_name().to_string_lossy()).ok())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
        Err(e) => return Err(e).with_context(|| format!("read {}", root.display())),
    };
    recs.sort_by(|a, b| a.id.cmp(&b.id));
    if quiet {
        recs.iter().for_each(|r| println!("{}", r.id));
        return Ok(());
    }
    match format {
        "json" => {
            let docs: Vec<_> = recs.iter().map(|r| r.document(root)).collect();
            println!("{}", serde_json::to_string(&docs)?);
        }
        "table" => {
            println!(
                "{:<20} {:<8} {:<10} {:<40} {:<32} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            );
            for r in &recs {
                let d = r.document(root);
                println!(
                    "{:<20} {:<8} {:<10} {:<40} {:<32} root",
                    r.id,
                    d["pid"],
                    d["status"].as_str().unwrap_or(""),
                    r.bundle.display(),
                    r.created
                );
            }
        }
        f => bail!("list --format {f:?}: use table or json"),
    }
    Ok(())
}
