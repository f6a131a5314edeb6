//! Owns: finding a container's cgroup again, from the directories a caller recorded (or, in
//! tests, by name), refusing anything that is not an `rbox-*` directory on a cgroup filesystem.
//! Kernel interface: cgroupfs, read through /proc/self/mountinfo and /proc/self/cgroup (detect.rs).

use std::path::PathBuf;

use super::detect::{self, Version};
use super::limits::check_name;
use super::{Cgroup, CgroupError, Dir};

impl Cgroup {
    /// The existing `rbox-<name>` directories beneath rrun's own cgroups. Only the tests find
    /// a cgroup by name: rrun finds a container's from the paths it recorded ([`Cgroup::from_paths`]).
    #[cfg(test)]
    pub fn open(name: &str) -> Result<Cgroup, CgroupError> {
        check_name(name)?;
        let mut cg = Cgroup {
            dirs: Vec::new(),
            paths: Vec::new(),
        };
        for h in detect::detect()? {
            let path = h.own.join(format!("rbox-{name}"));
            if path.is_dir() {
                cg.paths.push(path.clone());
                cg.dirs.push(Dir {
                    version: h.version,
                    controllers: h.controllers,
                    path,
                });
            }
        }
        if cg.dirs.is_empty() {
            return Err(CgroupError::NotFound {
                name: name.to_string(),
            });
        }
        Ok(cg)
    }

    /// A cgroup from directories recorded earlier (see [`Cgroup::paths`]). Each must be an
    /// existing `rbox-*` directory on a cgroup filesystem; those already gone are skipped, so a
    /// half-removed cgroup can still be finished off. Refuses anything else, so a tampered state
    /// file cannot make rrun remove or kill other cgroups.
    pub fn from_paths(paths: &[PathBuf]) -> Result<Cgroup, CgroupError> {
        let mounts = detect::mounts()?;
        let mut cg = Cgroup {
            dirs: Vec::new(),
            paths: Vec::new(),
        };
        for path in paths {
            let ours = path.is_absolute()
                && !path
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
                && path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.strip_prefix("rbox-")
                        .is_some_and(|s| check_name(s).is_ok())
                });
            let mount = detect::mount_of(&mounts, path).filter(|_| ours);
            let Some(mount) = mount else {
                return Err(CgroupError::NotOurs { path: path.clone() });
            };
            if !path.is_dir() {
                continue;
            }
            let controllers = match mount.version {
                Version::V1 => mount.options.clone(),
                Version::V2 => Vec::new(),
            };
            cg.paths.push(path.clone());
            cg.dirs.push(Dir {
                version: mount.version,
                controllers,
                path: path.clone(),
            });
        }
        Ok(cg)
    }
}
