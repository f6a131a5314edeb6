//! Owns: the memory controller: the hard limit with swap turned off, and OOM-kill detection.
//! Kernel interface: v1 memory.limit_in_bytes, memory.memsw.limit_in_bytes, memory.oom_control,
//! memory.failcnt (cgroup-v1/memory.rst); v2 memory.max, memory.swap.max, memory.events
//! (cgroup-v2.rst "Memory").

use std::path::Path;

use super::detect::Version;
use super::{fs, CgroupError};

/// The smallest limit accepted (Docker's too): below it rinit and a shell cannot even start.
pub const MIN_MEMORY: u64 = 6 << 20;

/// Sets a hard limit of `bytes` on the new cgroup `dir`, with no swap on top of it.
pub fn apply(version: Version, dir: &Path, bytes: u64) -> Result<(), CgroupError> {
    let v = bytes.to_string();
    match version {
        Version::V1 => {
            // memsw (memory + swap) must stay >= the memory limit, so it is written second.
            fs::write(dir, "memory.limit_in_bytes", &v)?;
            if dir.join("memory.memsw.limit_in_bytes").exists() {
                fs::write(dir, "memory.memsw.limit_in_bytes", &v)?;
            }
        }
        Version::V2 => {
            fs::write(dir, "memory.max", &v)?;
            if dir.join("memory.swap.max").exists() {
                fs::write(dir, "memory.swap.max", "0")?;
            }
        }
    }
    Ok(())
}

/// How many tasks of `dir` (and below) the OOM killer has killed; None when the cgroup has no
/// memory controller files to tell.
pub fn oom_kills(version: Version, dir: &Path) -> Option<u64> {
    match version {
        Version::V1 => {
            let oc = fs::read(dir, "memory.oom_control").ok()?;
            match fs::keyed(&oc, "oom_kill") {
                Some(n) => Some(n),
                // Kernels before 4.13 have no oom_kill counter: hitting the limit is the best
                // sign left (it can also count reclaim that succeeded).
                None => fs::read(dir, "memory.failcnt").ok()?.trim().parse().ok(),
            }
        }
        Version::V2 => fs::keyed(&fs::read(dir, "memory.events").ok()?, "oom_kill"),
    }
}
