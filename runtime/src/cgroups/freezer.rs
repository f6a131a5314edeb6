//! Owns: killing every task of a container's cgroup so that a forking tree cannot outrun it:
//! cgroup.kill where the kernel has it, else freeze + SIGKILL each task + thaw, until empty.
//! Kernel interface: v2 cgroup.kill / cgroup.freeze (cgroup-v2.rst "Core Interface Files"), v1
//! freezer.state (cgroup-v1/freezer-subsystem.rst), kill(2).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use super::detect::Version;
use super::{fs, v1, v2, CgroupError, Dir};

/// How long kill_all waits for the tasks to be gone before it reports them.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// How long one freeze may take before killing goes ahead anyway.
const FREEZE_WAIT: Duration = Duration::from_millis(500);

enum Freezer<'a> {
    V2(&'a Path),
    V1(&'a Path),
    None,
}

impl Freezer<'_> {
    fn set(&self, on: bool) -> Result<(), CgroupError> {
        match self {
            Freezer::V2(d) => v2::freeze(d, on, FREEZE_WAIT),
            Freezer::V1(d) => v1::freeze(d, on, FREEZE_WAIT),
            Freezer::None => Ok(()),
        }
    }
}

/// SIGKILLs every task in `dirs` (and their child cgroups) and waits until they are gone.
/// `use_cgroup_kill` false skips cgroup.kill (tests use it to drive the freezer path on a kernel
/// that has both).
pub fn kill_all(dirs: &[Dir], use_cgroup_kill: bool) -> Result<(), CgroupError> {
    if dirs.is_empty() {
        return Ok(());
    }
    let start = Instant::now();
    let v2dir = dirs.iter().find(|d| d.version == Version::V2);
    if let Some(d) = v2dir.filter(|_| use_cgroup_kill) {
        if v2::kill(&d.path)? {
            return wait_empty(dirs, start);
        }
    }
    let freezer = match (
        v2dir,
        dirs.iter()
            .find(|d| d.version == Version::V1 && d.has("freezer")),
    ) {
        (Some(d), _) if v2::can_freeze(&d.path) => Freezer::V2(&d.path),
        (_, Some(d)) => Freezer::V1(&d.path),
        _ => Freezer::None,
    };
    while start.elapsed() < KILL_WAIT {
        freezer.set(true)?;
        let pids = tasks(dirs);
        let mut result = Ok(());
        for &pid in &pids {
            if let Err(e) = sigkill(pid) {
                result = Err(CgroupError::Kill {
                    pid,
                    path: dirs[0].path.clone(),
                    source: e,
                });
                break;
            }
        }
        // Thaw even if a kill failed: a frozen container must not be left behind.
        freezer.set(false)?;
        result?;
        if pids.is_empty() || wait_gone(dirs, Duration::from_millis(200)) {
            break;
        }
    }
    wait_empty(dirs, start)
}

/// Every pid in `dirs` and the cgroups below them, once each.
pub fn tasks(dirs: &[Dir]) -> Vec<i32> {
    let set: BTreeSet<i32> = dirs
        .iter()
        .flat_map(|d| fs::procs_recursive(&d.path))
        .collect();
    set.into_iter().collect()
}

fn sigkill(pid: i32) -> Result<(), std::io::Error> {
    let Some(p) = rustix::process::Pid::from_raw(pid) else {
        return Ok(());
    };
    match rustix::process::kill_process(p, rustix::process::Signal::KILL) {
        Ok(()) => Ok(()),
        // Gone already (exited between listing and killing).
        Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Polls until no task is left or `wait` passes; true when empty.
fn wait_gone(dirs: &[Dir], wait: Duration) -> bool {
    let until = Instant::now() + wait;
    let mut nap = Duration::from_micros(200);
    loop {
        if tasks(dirs).is_empty() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(10));
    }
}

fn wait_empty(dirs: &[Dir], start: Instant) -> Result<(), CgroupError> {
    if wait_gone(dirs, KILL_WAIT.saturating_sub(start.elapsed())) {
        return Ok(());
    }
    Err(CgroupError::KillTimeout {
        path: dirs[0].path.clone(),
        pids: tasks(dirs),
        waited_ms: start.elapsed().as_millis() as u64,
    })
}
