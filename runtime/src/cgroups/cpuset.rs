//! Owns: the cpuset controller: pinning a container to a list of CPUs the parent allows.
//! Kernel interface: v1 cpuset.cpus, cpuset.mems, cpuset.effective_cpus/_mems
//! (cgroup-v1/cpusets.rst); v2 cpuset.cpus, cpuset.cpus.effective (cgroup-v2.rst "Cpuset").

use std::collections::BTreeSet;
use std::path::Path;

use super::detect::Version;
use super::parse::{format_cpu_list, parse_cpu_list, parse_cpuset};
use super::{fs, CgroupError};

/// The CPUs a child of `parent` may use. On v2 the parent may not have cpuset enabled yet (no
/// cpuset.* files); its CPUs are then those of the nearest ancestor that does, up to `mount`,
/// else every online CPU.
pub fn allowed(
    version: Version,
    mount: &Path,
    parent: &Path,
) -> Result<BTreeSet<u32>, CgroupError> {
    let names: &[&str] = match version {
        Version::V1 => &["cpuset.effective_cpus", "cpuset.cpus"],
        Version::V2 => &["cpuset.cpus.effective"],
    };
    let mut dir = Some(parent);
    while let Some(d) = dir {
        for n in names {
            if d.join(n).exists() {
                return parse_cpu_list(fs::read(d, n)?.trim());
            }
        }
        if d == mount {
            break;
        }
        dir = d.parent();
    }
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    parse_cpu_list(online.trim())
}

/// Checks a user's cpu list against what the parent allows; returns it in canonical form.
pub fn check(
    requested: &str,
    allowed: &BTreeSet<u32>,
    parent: &Path,
) -> Result<String, CgroupError> {
    let want = parse_cpuset(requested)?;
    let outside: BTreeSet<u32> = want.difference(allowed).copied().collect();
    if !outside.is_empty() {
        return Err(CgroupError::CpusetNotAllowed {
            requested: format_cpu_list(&outside),
            allowed: format_cpu_list(allowed),
            parent: parent.to_path_buf(),
        });
    }
    Ok(format_cpu_list(&want))
}

/// Fills cpuset.cpus and cpuset.mems of each v1 cpuset cgroup between `mount` and `dir`
/// (excluding both) that has them empty, from its parent, top down: a v1 cpuset cgroup made
/// by mkdir starts empty, and a child may hold only what its parent has (cgroup-v1/cpusets.rst;
/// runc does the same for a nested cgroupsPath). Without it, writing the new cgroup's cpus
/// below such a parent fails with EACCES.
pub fn fill_empty_parents(mount: &Path, dir: &Path) -> Result<(), CgroupError> {
    let Ok(rel) = dir.strip_prefix(mount) else {
        return Ok(());
    };
    let mut parent = mount.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for c in parts.iter().take(parts.len().saturating_sub(1)) {
        let d = parent.join(c);
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if d.join(f).exists() && fs::read(&d, f)?.trim().is_empty() {
                fs::write(&d, f, fs::read(&parent, f)?.trim())?;
            }
        }
        parent = d;
    }
    Ok(())
}

/// Pins the new cgroup `dir` to `cpus` (already checked). A new v1 cpuset cgroup starts with
/// empty cpus and mems and refuses tasks until both are set, so the parent's mems are copied.
pub fn apply(version: Version, dir: &Path, parent: &Path, cpus: &str) -> Result<(), CgroupError> {
    fs::write(dir, "cpuset.cpus", cpus)?;
    if version == Version::V1 && fs::read(dir, "cpuset.mems")?.trim().is_empty() {
        let mems = if parent.join("cpuset.effective_mems").exists() {
            fs::read(parent, "cpuset.effective_mems")?
        } else {
            fs::read(parent, "cpuset.mems")?
        };
        fs::write(dir, "cpuset.mems", mems.trim())?;
    }
    Ok(())
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn a_cpuset_outside_the_parent_is_refused_naming_both_sets() {
        let allowed = parse_cpu_list("0-1").unwrap();
        assert_eq!(check("1,0", &allowed, Path::new("/p")).unwrap(), "0-1");
        let e = check("0-3", &allowed, Path::new("/sys/fs/cgroup/cpuset"))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "cpuset 2-3 is not allowed here: the parent cgroup /sys/fs/cgroup/cpuset allows cpus 0-1");
        assert!(check("x", &allowed, Path::new("/p")).is_err());
    }
}
