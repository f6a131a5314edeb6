//! The lifecycle subcommands: ps, stop, kill, rm, logs, inspect. They work from state.json and
//! signal a container's init through a pidfd taken after checking its start time (no pid reuse).
//! Kernel docs: pidfd_open(2), pidfd_send_signal(2), signal(7).

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::error::{user, Error, Result};
use crate::state::{alive, Containers, State, Status};
use crate::sys;

/// `rrun ps [-a]`.
pub fn ps(root: &Path, all: bool) -> Result<i32> {
    let containers = Containers::open(root)?;
    let mut out = String::from("CONTAINER ID   NAME                 IMAGE          STATUS                  COMMAND\n");
    for s in containers.list() {
        let status = s.status();
        if !all && status != Status::Running {
            continue;
        }
        let st = match (status, s.exit_code) {
            (Status::Exited, Some(c)) => format!("exited ({c})"),
            (st, _) => st.as_str().to_string(),
        };
        let img = s.image.trim_start_matches("sha256:");
        let cmd = s.config.process.args.join(" ");
        out.push_str(&format!("{:<14} {:<20} {:<14} {:<23} {}\n", &s.id[..12.min(s.id.len())], s.name, &img[..12.min(img.len())], st, cmd));
    }
    std::io::stdout().write_all(out.as_bytes()).map_err(|e| Error::Sys { what: "write to stdout".into(), source: e })?;
    Ok(0)
}

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
        "status": status.as_str(),
        "pid": if running { s.pid } else { 0 },
        "exit_code": if running { None } else { s.exit_code },
        "oom_killed": s.oom_killed,
        "created": s.created,
        "upper_dir": if s.upper_in_memory { None } else { Some(dir.join("upper")) },
        "upper_in_memory": s.upper_in_memory,
        "network": {"mode": s.config.net.name(), "ip": null, "gateway": null},
        "ports": [],
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
        "cgroup_paths": s.cgroup_paths,
        "log_path": dir.join(crate::detach::LOG_FILE),
    });
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
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
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "TERM" => libc::SIGTERM,
        "ALRM" => libc::SIGALRM,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "WINCH" => libc::SIGWINCH,
        "PIPE" => libc::SIGPIPE,
        _ => return Err(user(format!("bad signal {s:?}: use a name like TERM or KILL, or a number"))),
    };
    Ok(n)
}

/// Sends `sig` to the container's init if it is still the process we started.
fn signal(s: &State, sig: i32) -> Result<bool> {
    let Ok(fd) = sys::pidfd_open(s.pid) else { return Ok(false) };
    if !alive(s.pid, s.pid_start) {
        return Ok(false);
    }
    match sys::pidfd_send_signal(std::os::fd::AsFd::as_fd(&fd), sig) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(false),
        Err(e) => Err(Error::Sys { what: format!("signal container {}", s.name), source: e }),
    }
}

fn wait_dead(s: &State, limit: Duration) -> bool {
    let start = Instant::now();
    while alive(s.pid, s.pid_start) {
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
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
    let _ = containers.update(&s.id, |n| n.finished = true);
}

/// Kills every process of a container: through its cgroup, and its init directly.
fn kill_everything(s: &State) -> Result<()> {
    if !s.cgroup_paths.is_empty() {
        if let Ok(cg) = crate::cgroups::Cgroup::from_paths(&s.cgroup_paths) {
            cg.kill_all()?;
        }
    }
    signal(s, libc::SIGKILL)?;
    if !wait_dead(s, Duration::from_secs(10)) {
        return Err(user(format!("container {} did not die after SIGKILL", s.name)));
    }
    Ok(())
}

/// `rrun stop [-t SECS] NAME...`.
pub fn stop(root: &Path, time: u64, names: &[String]) -> Result<i32> {
    let containers = Containers::open(root)?;
    let mut code = 0;
    for n in names {
        let r = (|| -> Result<()> {
            let s = containers.find(n)?;
            if s.status() != Status::Running {
                return Ok(());
            }
            signal(&s, libc::SIGTERM)?;
            if !wait_dead(&s, Duration::from_secs(time)) {
                kill_everything(&s)?;
            }
            settle(&containers, &s);
            Ok(())
        })();
        if let Err(e) = r {
            eprintln!("rrun: {e}");
            code = 1;
        }
    }
    Ok(code)
}

/// `rrun kill [-s SIG] NAME...`.
pub fn kill(root: &Path, sig: &str, names: &[String]) -> Result<i32> {
    let sig = parse_signal(sig)?;
    let containers = Containers::open(root)?;
    let mut code = 0;
    for n in names {
        let r = containers.find(n).and_then(|s| {
            if s.status() != Status::Running || !signal(&s, sig)? {
                return Err(user(format!("container {} is not running", s.name)));
            }
            Ok(())
        });
        if let Err(e) = r {
            eprintln!("rrun: {e}");
            code = 1;
        }
    }
    Ok(code)
}

/// `rrun rm [-f] NAME...`.
pub fn rm(root: &Path, force: bool, names: &[String]) -> Result<i32> {
    let containers = Containers::open(root)?;
    let mut code = 0;
    for n in names {
        let r = (|| -> Result<()> {
            let s = match containers.find(n) {
                Ok(s) => s,
                // A folder left without its state (a removal interrupted half-way): -f finishes it.
                Err(Error::NoSuchContainer(_)) if force && n.len() == 64 && n.chars().all(|c| c.is_ascii_hexdigit()) && containers.dir(n).is_dir() => {
                    return containers.remove_dir(n);
                }
                Err(e) => return Err(e),
            };
            match s.status() {
                Status::Running | Status::Created if !force => {
                    return Err(user(format!("container {} is running: stop it first or use `rrun rm -f {}`", s.name, s.name)))
                }
                Status::Running => kill_everything(&s)?,
                Status::Created => {
                    // SAFETY: kill with a pid we just verified alive by start time.
                    if alive(s.owner_pid, s.owner_start) {
                        unsafe { libc::kill(s.owner_pid, libc::SIGKILL) };
                    }
                }
                Status::Exited => {}
            }
            let _l = containers.lock(&s.id)?;
            crate::run::remove_cgroup(&s.cgroup_paths)?;
            containers.remove_dir(&s.id)
        })();
        if let Err(e) = r {
            eprintln!("rrun: {e}");
            code = 1;
        }
    }
    Ok(code)
}

/// `rrun logs [-f] NAME`: the detached container's output (stdout and stderr, in the order
/// written) on stdout; with -f keep following until the container has exited.
pub fn logs(root: &Path, follow: bool, name: &str) -> Result<i32> {
    let containers = Containers::open(root)?;
    let s = containers.find(name)?;
    let p = containers.dir(&s.id).join(crate::detach::LOG_FILE);
    let Ok(mut f) = std::fs::File::open(&p) else {
        return Err(user(format!("container {} keeps no logs (only detached containers do)", s.name)));
    };
    let mut buf = vec![0u8; 65536];
    loop {
        let running = follow && containers.load(&s.id).map(|n| n.status() == Status::Running).unwrap_or(false);
        loop {
            let n = f.read(&mut buf).map_err(|e| Error::Sys { what: format!("read {}", p.display()), source: e })?;
            if n == 0 {
                break;
            }
            crate::tty::write_all(1, &buf[..n]).map_err(|e| Error::Sys { what: "write to stdout".into(), source: e })?;
        }
        if !running {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(0)
}
