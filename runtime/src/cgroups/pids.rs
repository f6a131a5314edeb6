//! Owns: the pids controller: the maximum number of tasks in the cgroup.
//! Kernel interface: pids.max, the same on v1 and v2 (cgroup-v1/pids.rst, cgroup-v2.rst "PID").

use std::path::Path;

use super::{fs, CgroupError};

/// The kernel refuses pids.max above PID_MAX_LIMIT (4 Mi); no cgroup can hold more tasks anyway,
/// so larger limits are written as "max".
const PID_MAX_LIMIT: u64 = 4 * 1024 * 1024;

pub fn apply(dir: &Path, max: u64) -> Result<(), CgroupError> {
    fs::write(dir, "pids.max", &value(max))
}

pub fn value(max: u64) -> String {
    if max >= PID_MAX_LIMIT {
        "max".into()
    } else {
        max.to_string()
    }
}

#[cfg(test)]
mod unit {
    #[test]
    fn pids_limits_beyond_the_kernel_maximum_become_max() {
        assert_eq!(super::value(12), "12");
        assert_eq!(super::value(4 * 1024 * 1024), "max");
        assert_eq!(super::value(u64::MAX), "max");
    }
}
