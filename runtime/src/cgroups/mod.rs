//! Owns: a container's cgroup, `rbox-<name>` beneath the cgroup rrun runs in, in each hierarchy it
//! needs (v1, v2 or hybrid): limits, joining, OOM detection, killing the whole tree, removal.
//! Kernel interface: cgroupfs, see cgroups(7), Documentation/admin-guide/cgroup-v1/ and cgroup-v2.rst.
//!
//! Where each directory goes is placement.rs's choice; what a container may ask for, limits.rs's.
//!
//! Device access (see devices.rs) is restricted in every container rrun makes as root: a BPF
//! device program attached to its v2 directory wherever a v2 hierarchy is usable (hybrid
//! machines included: the kernel runs the programs of a task's unified-hierarchy cgroup whether
//! or not any controller is enabled there), else, or if the kernel refuses the program, a
//! directory in the v1 `devices` hierarchy set to the same allowlist. Not both: either one
//! alone refuses the access (the kernel asks each that exists), and the second would only add
//! start-up work (a directory, twelve writes and a move through cgroup.procs, ~0.1-0.2 ms).
//!
//! A container without limits thus costs one mkdir and loading one small BPF program (about
//! 0.1 ms) on a hybrid or v2 machine. The directories are named `rbox-<name>` (create.rs);
//! [`Cgroup::from_paths`] finds them again from the [`Cgroup::paths`] a caller recorded
//! (needed when `rrun rm` runs from another cgroup than the `rrun` that created the
//! container), [`Cgroup::remove`] deletes them.

mod bpf;
mod cpu;
mod cpuset;
mod create;
mod delegation;
mod detect;
mod devices;
mod error;
mod freezer;
mod fs;
mod inside;
mod limits;
mod memory;
mod oci;
mod parse;
mod pids;
mod placement;
mod remove;
mod reopen;
mod update;
mod v1;
mod v2;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use detect::Version;

pub use delegation::check_delegated;
pub use error::CgroupError;
pub use inside::InsideMount;
pub use limits::Limits;
pub use memory::MIN_MEMORY;
pub use parse::{parse_cpus, parse_size};
pub use placement::{candidate_paths, check_cpuset};
pub use update::Update;

/// One directory of a container's cgroup, in one hierarchy.
#[derive(Debug, Clone)]
struct Dir {
    version: Version,
    /// v1: the hierarchy's controllers; v2: empty.
    controllers: Vec<String>,
    path: PathBuf,
}

impl Dir {
    fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// A container's cgroup: its directories in every hierarchy it lives in. Dropping the handle
/// leaves the cgroup alone (a detached container outlives the rrun that made it); [`remove`]
/// deletes it.
///
/// [`remove`]: Cgroup::remove
#[derive(Debug)]
pub struct Cgroup {
    dirs: Vec<Dir>,
    paths: Vec<PathBuf>,
}

impl Cgroup {
    /// Moves process `pid` (all its threads) into the cgroup in every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<(), CgroupError> {
        let s = pid.to_string();
        for d in &self.dirs {
            fs::write(&d.path, "cgroup.procs", &s)?;
        }
        Ok(())
    }

    /// Whether the OOM killer has killed a task of this cgroup (v1 memory.oom_control
    /// `oom_kill`, v2 memory.events `oom_kill`). False without a memory limit.
    pub fn oom_killed(&self) -> bool {
        self.dirs
            .iter()
            .filter(|d| d.version == Version::V2 || d.has("memory"))
            .any(|d| memory::oom_kills(d.version, &d.path).unwrap_or(0) > 0)
    }

    /// SIGKILLs every task and waits (up to 5 s) until none is left: cgroup.kill on v2, else
    /// freeze (v2 cgroup.freeze or the v1 freezer) + SIGKILL each task + thaw, repeated.
    pub fn kill_all(&self) -> Result<(), CgroupError> {
        freezer::kill_all(&self.dirs, true)
    }

    /// Host pids of every task in the cgroup (and below it), ascending.
    pub fn pids(&self) -> Vec<i32> {
        freezer::tasks(&self.dirs)
    }

    /// The cgroup's directories, one per hierarchy (for inspect, debugging and state files).
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }
}
