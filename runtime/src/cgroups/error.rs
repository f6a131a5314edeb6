//! Owns: the one error type of the cgroup module, each variant worded as the single line a user sees.
//! Kernel interface: none itself; carries the errno of cgroupfs reads and writes (cgroups(7)).

use std::io;
use std::path::PathBuf;

/// Everything the cgroup module can refuse or fail at. Messages are lowercase, one line, name the
/// object (a value, a path, a controller) and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("invalid size {input:?}: {reason}")]
    InvalidSize { input: String, reason: String },

    #[error("invalid cpus value {input:?}: {reason}")]
    InvalidCpus { input: String, reason: String },

    #[error("invalid cpuset {input:?}: {reason}")]
    InvalidCpuset { input: String, reason: String },

    #[error(
        "cpuset {requested} is not allowed here: the parent cgroup {parent} allows cpus {allowed}"
    )]
    CpusetNotAllowed {
        requested: String,
        allowed: String,
        parent: PathBuf,
    },

    #[error("invalid limit: {0}")]
    InvalidLimit(String),

    #[error(
        "invalid cgroup name {0:?}: use 1 to 128 letters, digits, '_', '.' or '-', starting with a letter or digit"
    )]
    InvalidName(String),

    #[error("no usable cgroup hierarchy: none of this process's cgroups (/proc/self/cgroup) is reachable through a cgroup mount in /proc/self/mountinfo; mount cgroup2 at /sys/fs/cgroup")]
    NoHierarchy,

    #[error("the {controller} controller is not available: {reason}")]
    ControllerMissing {
        controller: &'static str,
        reason: String,
    },

    #[error("cannot enable the {controller} controller in {path}: it holds processes (cgroup v2 \"no internal processes\" rule); start rrun in a cgroup of its own, e.g. `systemd-run --scope -p Delegate=yes rrun ...`")]
    InternalProcesses {
        controller: &'static str,
        path: PathBuf,
    },

    #[error("cgroup {path} already exists: a container with this name is running or was not cleaned up (rrun rm -f)")]
    Exists { path: PathBuf },

    /// Returned by `Cgroup::open`, which only the tests use.
    #[cfg(test)]
    #[error("no cgroup named rbox-{name} beneath this process's cgroups")]
    NotFound { name: String },

    #[error("{path} is not an rbox cgroup directory on a cgroup filesystem")]
    NotOurs { path: PathBuf },

    #[error("cgroup {path} still holds tasks {pids:?} {waited_ms} ms after SIGKILL; they may be stuck in the kernel (state D in /proc/PID/stat)")]
    KillTimeout {
        path: PathBuf,
        pids: Vec<i32>,
        waited_ms: u64,
    },

    #[error("cannot remove cgroup {path}: it still holds tasks {pids:?}; stop the container first (rrun rm -f)")]
    StillBusy { path: PathBuf, pids: Vec<i32> },

    #[error("cannot create cgroup {path}: {source}")]
    Mkdir { path: PathBuf, source: io::Error },

    #[error("cannot remove cgroup {path}: {source}")]
    Rmdir { path: PathBuf, source: io::Error },

    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },

    #[error("cannot write {data:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        data: String,
        source: io::Error,
    },

    #[error("cannot load the container's device filter (a cgroup BPF program): {source}{}", verifier_note(.verifier))]
    BpfLoad { source: io::Error, verifier: String },

    #[error("cannot attach the container's device filter to cgroup {path}: {source}")]
    BpfAttach { path: PathBuf, source: io::Error },

    #[error("cannot keep the container to the default device allowlist: {v2}, and no writable cgroup v1 devices hierarchy is mounted; mount cgroup2 on a kernel with CONFIG_CGROUP_BPF, or the v1 devices controller")]
    NoDeviceControl { v2: String },

    #[error("cannot send SIGKILL to pid {pid} of cgroup {path}: {source}")]
    Kill {
        pid: i32,
        path: PathBuf,
        source: io::Error,
    },
}

/// " (verifier: ...)" when the kernel's verifier said something, else nothing.
fn verifier_note(v: &str) -> String {
    if v.is_empty() {
        String::new()
    } else {
        format!(" (verifier: {v})")
    }
}
