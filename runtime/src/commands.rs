//! The lifecycle subcommands: stop, kill, rm, logs, inspect (ps is in ps.rs). They work from state.json and
//! signal a container's init through a pidfd taken after checking its start time (no pid reuse).
//! Kernel docs: pidfd_open(2), pidfd_send_signal(2), signal(7).

use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::process::Signal;
use serde_json::json;

use crate::cgroups::Cgroup;
use crate::error::{one_line, user, Error, Result};
use crate::state::{init_alive, Containers, Entry, State, Status};
use crate::{sys, upper};

/// `rrun inspect NAME`.
pub fn inspect(root: &Path, name: &str) -> Result<i32> {
    let containers = Containers::open(root)?;
    let s = containers.find(name)?;
    let status = s.status();
    let running = status == Status::Running;
    let dir = containers.dir(&s.id);
    let v = json!({
        "id": s.id,
        "name": s.name,
        "image": s.image,
        "image_ref": s.image_ref,
        "status": status.as_str(),
        "pid": if running { s.pid } else { 0 },
        "exit_code": if running { None } else { s.exit_code },
        "oom_killed": s.oom_killed,
        "orphaned": s.orphaned(),
        "created": crate::clock::rfc3339(s.created_ns()),
        "started_at": (s.started_at_ns > 0).then(|| crate::clock::rfc3339(s.started_at_ns)),
        "finished_at": (s.finished_at_ns > 0).then(|| crate::clock::rfc3339(s.finished_at_ns)),
        "upper_dir": upper::upper_dir(&dir, &s.id, s.upper_place()),
        "network": crate::net::record::NetRecord::load(&dir).inspect_network(&s.config.net.name()),
        "ports": crate::net::record::NetRecord::load(&dir).inspect_ports(),
        "hostname": s.config.hostname,
        "command": s.config.process.args,
        "env": s.config.process.env,
        "workdir": s.config.process.cwd,
        "user": s.config.process.user,
        "tty": s.config.process.tty,
        "userns": {"mode": s.config.userns, "uid_map": s.config.idmaps.uid, "gid_map": s.config.idmaps.gid},
        "volumes": s.config.volumes,
        "tmpfs": s.config.tmpfs,
        "read_only": s.config.read_only,
        "limits": s.config.limits,
        // the cgroups that exist: the record also names every one creation may have made
        "cgroup_paths": s.cgroup_paths.iter().filter(|p| p.is_dir()).collect::<Vec<_>>(),
        "log_path": dir.join(crate::detach::LOG_FILE),
    });
    let text = serde_json::to_string_pretty(&v).map_err(|source| Error::Json {
        what: "serialize inspect".into(),
        source,
    })?;
    crate::output::line(&text)?;
    Ok(0)
}

/// Parses a signal name (KILL, SIGKILL, kill) or number.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let n = match name {
        "HUP" => Signal::HUP,
        "INT" => Signal::INT,
        "QUIT" => Signal::QUIT,
        "KILL" => Signal::KILL,
        "USR1" => Signal::USR1,
        "USR2" => Signal::USR2,
        "TERM" => Signal::TERM,
        "ALRM" => Signal::ALARM,
        "CONT" => Signal::CONT,
        "STOP" => Signal::STOP,
        "WINCH" => Signal::WINCH,
        "PIPE" => Signal::PIPE,
        _ => {
            return Err(user(format!(
                "bad signal {s:?}: use a name like TERM or KILL, or a number"
            )))
        }
    };
    Ok(n.as_raw())
}

/// Sends `sig` to the container's init if it is still the process we started (checked after
/// taking the pidfd, so the pid cannot be reused in between).
fn signal(s: &State, sig: i32) -> Result<bool> {
    let Ok(fd) = sys::process::pidfd_open(s.pid) else {
        return Ok(false);
    };
    if !init_alive(s.pid, s.pid_start) {
        return Ok(false);
    }
    match sys::process::pidfd_send_signal(fd.as_fd(), sig) {
        Ok(()) => Ok(true),
        Err(e) if Errno::from_io_error(&e) == Some(Errno::SRCH) => Ok(false),
        Err(e) => Err(Error::Sys {
            what: format!("signal container {}", s.name),
            source: e,
        }),
    }
}

/// Waits up to `limit` for the container's init to exit (its pidfd becomes readable then,
/// whoever reaps it and however late).
fn wait_dead(s: &State, limit: Duration) -> bool {
    let Ok(fd) = sys::process::pidfd_open(s.pid) else {
        return true;
    };
    if !init_alive(s.pid, s.pid_start) {
        return true;
    }
    let start = Instant::now();
    loop {
        let left = limit.saturating_sub(start.elapsed());
        // poll(2)'s resolution: whole milliseconds, as many as an int holds
        let ms = left.as_millis().min(i32::MAX as u128) as i64;
        let timeout = Timespec {
            tv_sec: ms / 1000,
            tv_nsec: ms % 1000 * 1_000_000,
        };
        let mut p = [PollFd::new(&fd, PollFlags::IN)];
        match rustix::event::poll(&mut p, Some(&timeout)) {
            Ok(n) if n > 0 => return true,
            Ok(_) => return false,
            Err(_) if start.elapsed() >= limit => return false,
            Err(_) => {}
        }
    }
}

/// After the init died: give its owner (monitor or foreground rrun) a moment to record the
/// exit code; if there is no owner, mark it exited ourselves.
fn settle(containers: &Containers, s: &State) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        match containers.load(&s.id) {
            Ok(n) if n.finished => return,
            Err(_) => return,
            Ok(n) if !n.owner_alive() => break,
            Ok(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    let _ = containers.update(&s.id, |n| {
        n.finished = true;
        if n.finished_at_ns == 0 {
            // its owner died: the init's end, seen just now, is the best time there is
            n.finished_at_ns = crate::clock::now_ns();
        }
    });
}

/// Kills every process of a container: its rrun if it is still creating it, the tasks in its
/// cgroup, and its init directly.
fn kill_everything(s: &State) -> Result<()> {
    if s.pid == 0 {
        kill_owner(s)?;
    }
    if !s.cgroup_paths.is_empty() {
        let cg = Cgroup::from_paths(&s.cgroup_paths)?;
        if !cg.pids().is_empty() {
            cg.kill_all()?;
        }
    }
    signal(s, Signal::KILL.as_raw())?;
    if !wait_dead(s, Duration::from_secs(10)) {
        return Err(user(format!(
            "container {} did not die after SIGKILL: see `ps` for pid {}",
            s.name, s.pid
        )));
    }
    Ok(())
}

/// Kills the rrun still creating a container and waits until it is gone, so that it makes
/// nothing more (a cgroup directory, a process) after `rm -f` removed what it had made.
fn kill_owner(s: &State) -> Result<()> {
    let Ok(fd) = sys::process::pidfd_open(s.owner_pid) else {
        return Ok(());
    };
    if !s.owner_alive() {
        return Ok(());
    }
    match sys::process::pidfd_send_signal(fd.as_fd(), Signal::KILL.as_raw()) {
        Err(e) if Errno::from_io_error(&e) != Some(Errno::SRCH) => {
            return Err(Error::Sys {
                what: format!(
                    "kill rrun {} that creates container {}",
                    s.owner_pid, s.name
                ),
                source: e,
            })
        }
        _ => {}
    }
    // a pidfd becomes readable when its process has exited
    let mut p = [PollFd::new(&fd, PollFlags::IN)];
    let five_seconds = Timespec {
        tv_sec: 5,
        tv_nsec: 0,
    };
    let _ = rustix::event::poll(&mut p, Some(&five_seconds));
    Ok(())
}

/// Runs `f` for each name and prints the name, as given, once it was acted on (Docker's
/// habit, for scripts); a failure prints one line and makes the exit code 125 (rrun failed),
/// the other names are still handled. A closed stdout ends the loop quietly (141).
fn each(names: &[String], mut f: impl FnMut(&str) -> Result<()>) -> i32 {
    let mut code = 0;
    for n in names {
        match f(n).and_then(|()| crate::output::line(n)) {
            Ok(()) => {}
            Err(e) if crate::output::is_closed_stdout(&e) => return crate::output::BROKEN_PIPE,
            Err(e) => {
                eprintln!("rrun: {}", one_line(&e.to_string()));
                code = 125;
            }
        }
    }
    code
}

/// `rrun stop [-t SECS] NAME...`.
pub fn stop(root: &Path, time: u64, names: &[String]) -> Result<i32> {
    let containers = Containers::open(root)?;
    Ok(each(names, |n| {
        let s = containers.find(n)?;
        if s.status() != Status::Running {
            return Ok(());
        }
        signal(&s, Signal::TERM.as_raw())?;
        if !wait_dead(&s, Duration::from_secs(time)) {
            kill_everything(&s)?;
        }
        settle(&containers, &s);
        remove_if_orphan(&containers, &s);
        Ok(())
    }))
}

/// A container removed on exit whose rrun died (SIGKILL) goes once stopped, as its rrun would
/// have removed it (and as Docker removes a stopped `--rm` container): its folder, and its
/// network at netd.
fn remove_if_orphan(containers: &Containers, s: &State) {
    if !s.auto_remove || s.owner_alive() {
        return;
    }
    let Ok(_l) = containers.lock(&s.id) else {
        return;
    };
    match containers.load_locked(&s.id) {
        Ok(now) if now.status() == Status::Exited && !now.owner_alive() => {
            if let Err(e) = containers.destroy(&now) {
                eprintln!("rrun: warning: removing container {}: {e}", now.name);
            }
        }
        _ => {}
    }
}

/// `rrun kill [-s SIG] NAME...`.
pub fn kill(root: &Path, sig: &str, names: &[String]) -> Result<i32> {
    let sig = parse_signal(sig)?;
    let containers = Containers::open(root)?;
    Ok(each(names, |n| {
        let s = containers.find(n)?;
        if s.status() != Status::Running || !signal(&s, sig)? {
            return Err(user(format!(
                "container {} is not running: see `rrun ps -a`",
                s.name
            )));
        }
        Ok(())
    }))
}

/// `rrun rm [-f] NAME...`: under the container's lock (a second rm of the same container
/// waits, then finds it gone), kill what runs (-f), remove cgroup, upper dir and folder.
pub fn rm(root: &Path, force: bool, names: &[String]) -> Result<i32> {
    // a store of the previous format gets its containers' holds first, so the holds of the
    // containers removed here are released, not written after them
    crate::image::migrate(root)?;
    let containers = Containers::open(root)?;
    Ok(each(names, |n| {
        let found = match containers.find(n) {
            Ok(s) => s,
            Err(Error::NoSuchContainer(_))
                if n.len() >= 12 && n.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                return rm_corrupt(&containers, n, force)
            }
            Err(e) => return Err(e),
        };
        if !force {
            wait_if_ending(&containers, &found);
        }
        let gone = || Error::NoSuchContainer(n.to_string());
        let _l = containers.lock(&found.id).map_err(|e| {
            if matches!(e, Error::NoSuchContainer(_)) {
                gone()
            } else {
                e
            }
        })?;
        let s = containers.load_locked(&found.id).map_err(|e| {
            if matches!(e, Error::NoSuchContainer(_)) {
                gone()
            } else {
                e
            }
        })?;
        match s.status() {
            Status::Running | Status::Created if !force => {
                return Err(user(format!(
                    "container {} is {}: stop it first or use `rrun rm -f {}`",
                    s.name,
                    s.status().as_str(),
                    s.name
                )))
            }
            Status::Running | Status::Created => kill_everything(&s)?,
            Status::Exited => {}
        }
        containers.destroy(&s)
    }))
}

/// How long `rm` waits for a container whose command has ended to finish exiting.
const ENDING_WAIT: Duration = Duration::from_secs(2);
/// How long `rm` watches a running container for its end to begin (a command that just wrote
/// its last line may not have reached exit(2) yet) before it calls it running.
const ENDING_GRACE: Duration = Duration::from_millis(100);

/// When the container's init is on its way out (its command has ended: its children are
/// exiting or gone, or it is exiting itself), now or within [`ENDING_GRACE`], waits for its end
/// and for its owner to record it, so that `rm` right after the command ended removes the
/// container instead of calling it running.
fn wait_if_ending(containers: &Containers, s: &State) {
    if s.status() != Status::Running {
        return;
    }
    let start = Instant::now();
    loop {
        if !init_alive(s.pid, s.pid_start) || sys::procfs::ending(s.pid) {
            break;
        }
        if start.elapsed() >= ENDING_GRACE {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if wait_dead(s, ENDING_WAIT) {
        settle(containers, s);
    }
}

/// `rm` of a folder named like an id (given in full or by a unique prefix of at least 12
/// digits) whose state is missing or refused: only the folder (and its upper dir in rrun's
/// tmpfs, named by the same id) is removed, nothing a file names. A folder whose state is
/// missing because an rrun was killed while making or removing it goes without -f (see
/// [`Containers::is_abandoned`]); a damaged state needs -f.
fn rm_corrupt(containers: &Containers, key: &str, force: bool) -> Result<()> {
    let _all = match containers.lock_all() {
        // a store without a containers folder has no container at all
        Err(Error::Sys { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NoSuchContainer(key.to_string()))
        }
        other => other?,
    };
    let bad: Vec<(String, String)> = containers
        .entries()
        .into_iter()
        .filter_map(|e| match e {
            Entry::Corrupt { id, why } if id.starts_with(key) => Some((id, why)),
            _ => None,
        })
        .collect();
    let (id, why) = match bad.as_slice() {
        [(id, why)] => (id.as_str(), why.as_str()),
        [] => return Err(Error::NoSuchContainer(key.to_string())),
        _ => {
            return Err(user(format!(
                "container id prefix {key} is ambiguous: give more digits"
            )))
        }
    };
    if !force && !containers.is_abandoned(id) {
        return Err(user(format!(
            "container {id} has a bad record ({why}): remove its folder with `rrun rm -f {id}`"
        )));
    }
    let _l = containers.lock(id)?;
    containers.remove_dir(id)
}

/// `rrun logs [-f] NAME`: the detached container's output (stdout and stderr, in the order
/// written) on stdout; with -f keep following until the container has exited.
pub fn logs(root: &Path, follow: bool, name: &str) -> Result<i32> {
    let containers = Containers::open(root)?;
    let s = containers.find(name)?;
    let p = containers.dir(&s.id).join(crate::detach::LOG_FILE);
    let Ok(mut f) = std::fs::File::open(&p) else {
        return Err(user(format!(
            "container {} keeps no logs (containers removed on exit keep none)",
            s.name
        )));
    };
    let mut buf = vec![0u8; 65536];
    loop {
        let running = follow
            && containers
                .load(&s.id)
                .map(|n| n.status() == Status::Running)
                .unwrap_or(false);
        loop {
            let n = f.read(&mut buf).map_err(|e| Error::Sys {
                what: format!("read {}", p.display()),
                source: e,
            })?;
            if n == 0 {
                break;
            }
            crate::output::write(&buf[..n])?;
        }
        if !running {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(0)
}
