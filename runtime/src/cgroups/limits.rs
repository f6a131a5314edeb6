//! Owns: what a container's cgroup may be asked for ([`Limits`]) and the checks of a cgroup name
//! and of limits built in code (not only through the parsers) before any of them is used.
//! No kernel interface: the online CPU count comes from [`super::parse::online_cpus`].

use super::memory::MIN_MEMORY;
use super::{parse, CgroupError};

/// Limits from the CLI. memory: bytes; cpus: fraction of CPUs (0.5 = half a CPU);
/// cpuset_cpus: a list like "0-1,3"; pids: max tasks; devices: allow only Docker's default
/// device list (set for every container rrun makes as root; see devices.rs); every_controller:
/// join the v1 hierarchy of each controller above even without its limit (as runc does), so
/// that [`super::Cgroup::update`] can set one later.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    pub cpuset_cpus: Option<String>,
    pub pids: Option<u64>,
    pub devices: bool,
    pub every_controller: bool,
}

/// A name is one path component under our control: `[A-Za-z0-9][A-Za-z0-9_.-]{0,127}`.
pub(super) fn check_name(name: &str) -> Result<(), CgroupError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(CgroupError::InvalidName(name.to_string()))
    }
}

/// Limits built in code (not only through the parsers) are checked again before use.
pub(super) fn check_limits(l: &Limits) -> Result<(), CgroupError> {
    if let Some(m) = l.memory {
        if m < MIN_MEMORY {
            return Err(CgroupError::InvalidLimit(format!(
                "memory limit of {m} bytes is below the minimum of 6m"
            )));
        }
    }
    if let Some(c) = l.cpus {
        let online = parse::online_cpus();
        if !(c.is_finite() && c >= 0.01 && c <= online as f64) {
            return Err(CgroupError::InvalidLimit(format!(
                "cpus {c} is outside 0.01 to {online} (the online cpus)"
            )));
        }
    }
    if l.pids == Some(0) {
        return Err(CgroupError::InvalidLimit(
            "pids limit must be at least 1".into(),
        ));
    }
    if let Some(list) = &l.cpuset_cpus {
        parse::parse_cpuset(list)?;
    }
    Ok(())
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn names_are_single_safe_path_components() {
        for ok in ["abc", "0123abcdef", "web.1_a-b"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "..",
            ".hidden",
            "a/b",
            "-x",
            "a b",
            "ä",
            &"x".repeat(129),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_built_in_code_are_checked() {
        let e = |l: Limits| check_limits(&l).unwrap_err().to_string();
        assert_eq!(
            e(Limits {
                memory: Some(1 << 20),
                ..Limits::default()
            }),
            "invalid limit: memory limit of 1048576 bytes is below the minimum of 6m"
        );
        assert!(e(Limits {
            cpus: Some(f64::NAN),
            ..Limits::default()
        })
        .contains("outside 0.01"));
        assert!(e(Limits {
            cpus: Some(0.0),
            ..Limits::default()
        })
        .contains("outside 0.01"));
        assert_eq!(
            e(Limits {
                pids: Some(0),
                ..Limits::default()
            }),
            "invalid limit: pids limit must be at least 1"
        );
        assert!(e(Limits {
            cpuset_cpus: Some("1-0".into()),
            ..Limits::default()
        })
        .starts_with("invalid cpuset"));
        assert!(check_limits(&Limits {
            memory: Some(MIN_MEMORY),
            pids: Some(1),
            ..Limits::default()
        })
        .is_ok());
    }
}
