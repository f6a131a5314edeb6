//! The end of a container's life, for the foreground rrun and the detached monitor alike: the
//! OOM report, the exit code, the cgroup emptied and removed, and the record kept or removed.
//! Kernel interfaces: cgroupfs (through [`crate::cgroups`]), waitpid(2) statuses.

use crate::container::Created;
use crate::error::{Error, Result};
use crate::state::{Containers, State};
use crate::sys;

/// After PID 1 ended: OOM report, record the exit code, remove what must go. Returns the code:
/// always the command's own status (as Docker: an OOM kill is reported beside it, in a line on
/// stderr and `oom_killed` in inspect, not in place of it; a command whose process the OOM
/// killer ended exits 137 by itself, as a shell running it does).
pub fn finish(containers: &Containers, c: Created, status: i32) -> i32 {
    let oom = c.cgroup.as_ref().is_some_and(|cg| cg.oom_killed());
    let code = sys::process::exit_code_of(status);
    if oom {
        let limit = c
            .state
            .config
            .limits
            .memory
            .map_or("none".into(), |m| m.to_string());
        let what = if code == 137 {
            format!("container {} was killed", c.state.name)
        } else {
            format!("a process of container {} was killed", c.state.name)
        };
        eprintln!("rrun: {what} by the kernel's OOM killer (memory limit {limit} bytes)");
    }
    // Nothing of the container may outlive its init (the pid namespace is gone, but a task
    // that joined with exec could remain): empty and remove the cgroup.
    if let Some(cg) = c.cgroup {
        if !cg.pids().is_empty() {
            let _ = cg.kill_all();
        }
        if let Err(e) = cg.remove() {
            eprintln!("rrun: {e}");
        }
    }
    tracing::debug!(us = crate::elapsed_us(), "cgroup removed");
    drop(c.pidfd);
    drop(c.master);
    crate::net::attach::release_nowait(&containers.dir(&c.state.id), &c.state.id);
    if let Err(e) = record_end(containers, &c.state, code, oom) {
        eprintln!("rrun: {e}");
    }
    code
}

/// Removes a container removed on exit, or records how a kept one ended. Someone may have
/// removed it meanwhile (`rrun rm -f`): then there is nothing left to do.
fn record_end(containers: &Containers, st: &State, code: i32, oom: bool) -> Result<()> {
    if !st.auto_remove {
        return containers
            .update(&st.id, |s| {
                s.finished = true;
                s.finished_at_ns = crate::clock::now_ns();
                s.exit_code = Some(code);
                s.oom_killed = oom;
            })
            .map(drop);
    }
    match containers.lock(&st.id) {
        Ok(_l) => containers.remove_dir(&st.id),
        Err(Error::NoSuchContainer(_)) => Ok(()),
        Err(e) => Err(e),
    }
}
