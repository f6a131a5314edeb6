//! Owns: a cgroup at a path an OCI bundle names (`linux.cgroupsPath`), for rrun-oci: making it
//! (absolute paths are taken from each hierarchy's mount, relative ones from the caller's own
//! cgroup, as runc's cgroupfs driver does), finding it again from recorded directories, and
//! freezing it (`pause` / `resume`). Kernel interface: cgroupfs (cgroups(7)), v2 cgroup.freeze
//! and the v1 freezer.state (through v1.rs and v2.rs).

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::detect::{self, Hierarchy, Version};
use super::limits::check_limits;
use super::{v1, v2, Cgroup, CgroupError, Dir, Limits};

/// How long a freeze may take before `pause` reports the cgroup as not frozen.
const FREEZE_WAIT: Duration = Duration::from_secs(2);

impl Cgroup {
    /// Makes (or joins, if it exists) the cgroup `path` in every hierarchy the limits need and
    /// sets them. `path`: absolute (from each hierarchy's root) or relative (from this
    /// process's own cgroup); `..` is refused. A failure half-way removes what was made.
    pub fn create_at(path: &Path, limits: &Limits) -> Result<Cgroup, CgroupError> {
        if path.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(CgroupError::InvalidName(path.display().to_string()));
        }
        check_limits(limits)?;
        let at = |h: &Hierarchy| match path.strip_prefix("/") {
            Ok(rel) => h.mount.join(rel),
            Err(_) => h.own.join(path),
        };
        Cgroup::create_with(&detect::detect()?, &at, true, limits)
    }

    /// A cgroup from directories recorded by [`Cgroup::create_at`]: each must be on a cgroup
    /// filesystem (the caller keeps the record where only root may write); those already gone
    /// are skipped.
    pub fn from_recorded(paths: &[PathBuf]) -> Result<Cgroup, CgroupError> {
        let mounts = detect::mounts()?;
        let mut cg = Cgroup {
            dirs: Vec::new(),
            paths: Vec::new(),
        };
        for path in paths {
            let clean =
                path.is_absolute() && !path.components().any(|c| matches!(c, Component::ParentDir));
            let Some(mount) = detect::mount_of(&mounts, path).filter(|_| clean) else {
                return Err(CgroupError::NotOurs { path: path.clone() });
            };
            if !path.is_dir() {
                continue;
            }
            cg.paths.push(path.clone());
            cg.dirs.push(Dir {
                version: mount.version,
                controllers: match mount.version {
                    Version::V1 => mount.options.clone(),
                    Version::V2 => Vec::new(),
                },
                path: path.clone(),
            });
        }
        Ok(cg)
    }

    /// Freezes (`on`) or thaws every task: v2 cgroup.freeze where the cgroup has it, else the v1
    /// freezer, made beside the other directories if the cgroup has none yet (its path is then
    /// added to [`Cgroup::paths`], for the caller's record).
    pub fn freeze(&mut self, on: bool) -> Result<(), CgroupError> {
        if let Some(d) = self
            .dirs
            .iter()
            .find(|d| d.version == Version::V2 && v2::can_freeze(&d.path))
        {
            return v2::freeze(&d.path, on, FREEZE_WAIT);
        }
        if let Some(d) = self
            .dirs
            .iter()
            .find(|d| d.version == Version::V1 && d.has("freezer"))
        {
            return v1::freeze(&d.path, on, FREEZE_WAIT);
        }
        Err(CgroupError::ControllerMissing {
            controller: "freezer",
            reason: "the container's cgroup has no cgroup.freeze and no v1 freezer directory"
                .into(),
        })
    }

    /// Whether the cgroup is frozen (v2 cgroup.freeze reads 1, or v1 freezer.state FROZEN).
    pub fn frozen(&self) -> bool {
        self.dirs.iter().any(|d| match d.version {
            Version::V2 => super::fs::read(&d.path, "cgroup.freeze").is_ok_and(|s| s.trim() == "1"),
            Version::V1 => {
                d.has("freezer")
                    && super::fs::read(&d.path, "freezer.state").is_ok_and(|s| s.trim() == "FROZEN")
            }
        })
    }
}
