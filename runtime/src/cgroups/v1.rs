//! Owns: what only the v1 hierarchies have: the v1 freezer's freezer.state.
//! Kernel interface: per-controller cgroup v1 mounts, freezer.state
//! (Documentation/admin-guide/cgroup-v1/cgroups.rst, cgroup-v1/freezer-subsystem.rst).

use std::path::Path;
use std::time::{Duration, Instant};

use super::{fs, CgroupError};

/// FROZEN (true) or THAWED (false). Freezing waits until the state reads FROZEN (not FREEZING),
/// or until `wait` has passed.
pub fn freeze(dir: &Path, on: bool, wait: Duration) -> Result<(), CgroupError> {
    fs::write(dir, "freezer.state", if on { "FROZEN" } else { "THAWED" })?;
    if on {
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if fs::read(dir, "freezer.state")?.trim() == "FROZEN" {
                break;
            }
            // Writing FROZEN again retries tasks that were busy in the kernel.
            fs::write(dir, "freezer.state", "FROZEN")?;
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Ok(())
}
