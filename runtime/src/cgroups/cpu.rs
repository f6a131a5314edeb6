//! Owns: the cpu controller: CFS bandwidth, so a container gets at most N.N CPUs of time.
//! Kernel interface: v1 cpu.cfs_period_us + cpu.cfs_quota_us (scheduler/sched-bwc.rst);
//! v2 cpu.max "QUOTA PERIOD" (cgroup-v2.rst "CPU").

use std::path::Path;

use super::detect::Version;
use super::{fs, CgroupError};

/// The default CFS period, 100 ms.
pub const PERIOD_US: u64 = 100_000;
/// The kernel's smallest quota, 1 ms.
const MIN_QUOTA_US: u64 = 1_000;

/// (quota, period) in microseconds for a fraction of CPUs.
pub fn quota(cpus: f64) -> (u64, u64) {
    let q = (cpus * PERIOD_US as f64).round();
    let q = if q.is_finite() && q > 0.0 {
        q as u64
    } else {
        MIN_QUOTA_US
    };
    (q.max(MIN_QUOTA_US), PERIOD_US)
}

pub fn apply(version: Version, dir: &Path, cpus: f64) -> Result<(), CgroupError> {
    let (q, p) = quota(cpus);
    match version {
        Version::V1 => {
            fs::write(dir, "cpu.cfs_period_us", &p.to_string())?;
            fs::write(dir, "cpu.cfs_quota_us", &q.to_string())
        }
        Version::V2 => fs::write(dir, "cpu.max", &format!("{q} {p}")),
    }
}

#[cfg(test)]
mod unit {
    use super::quota;

    #[test]
    fn cpu_fractions_become_cfs_quota_per_100ms_period() {
        assert_eq!(quota(0.5), (50_000, 100_000));
        assert_eq!(quota(2.0), (200_000, 100_000));
        assert_eq!(quota(1.333), (133_300, 100_000));
        assert_eq!(quota(0.001), (1_000, 100_000));
        assert_eq!(quota(f64::NAN), (1_000, 100_000));
    }
}
