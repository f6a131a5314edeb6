//! Owns: finding a container's cgroup again, from the directories a caller recorded (or, in
//! tests, by name), refusing anything that is not an `rbox-*` directory on a cgroup filesystem.
//! Kernel interface: cgroupfs, read through /proc/self/mountinfo and /proc/self/cgroup (detect.rs),
//! or reached by openat2(2) without links and checked with fstatfs(2) (`rrun exec`).

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
            let mount = detect::mount_of(&mounts, path).filter(|_| named_ours(path));
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

    /// Moves process `pid` into the cgroup directories recorded earlier, as `rrun exec` joins
    /// a container: each must be an `rbox-*` directory, reached without a symbolic link
    /// (openat2(2) RESOLVE_NO_SYMLINKS), whose filesystem is cgroupfs (fstatfs(2) on the
    /// directory opened first, then its cgroup.procs opened beneath that descriptor); those
    /// already gone are skipped. Unlike [`Cgroup::from_paths`] it reads no mount table:
    /// writing cgroup.procs needs neither the hierarchy's version nor its controllers.
    pub fn join_recorded(paths: &[PathBuf], pid: i32) -> Result<(), CgroupError> {
        use rustix::fs::{Mode, OFlags};
        let pid = pid.to_string();
        for path in paths {
            let not_ours = || CgroupError::NotOurs { path: path.clone() };
            if !named_ours(path) {
                return Err(not_ours());
            }
            // No link on the way (openat2(2) RESOLVE_NO_SYMLINKS, magic ones included): the
            // name was checked, so the directory reached must be the one it names. Recorded
            // paths are mount points from the mount table and the cgroups below, never links.
            let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
            let resolve = rustix::fs::ResolveFlags::NO_SYMLINKS;
            let dir =
                match rustix::fs::openat2(rustix::fs::CWD, path, flags, Mode::empty(), resolve) {
                    Ok(d) => d,
                    Err(rustix::io::Errno::NOENT) => continue,
                    Err(rustix::io::Errno::LOOP) => return Err(not_ours()),
                    Err(e) => {
                        return Err(CgroupError::Read {
                            path: path.clone(),
                            source: e.into(),
                        })
                    }
                };
            let on_cgroupfs = rustix::fs::fstatfs(&dir).is_ok_and(|s| {
                s.f_type == crate::sys::CGROUP2_SUPER_MAGIC
                    || s.f_type == crate::sys::CGROUP_SUPER_MAGIC
            });
            if !on_cgroupfs {
                return Err(not_ours());
            }
            let fail = |e: rustix::io::Errno| CgroupError::Write {
                path: path.join("cgroup.procs"),
                data: pid.clone(),
                source: e.into(),
            };
            // A directory removed between the open and the write (the container is being
            // removed) is gone too: ENOENT from the open, ENODEV from the write.
            let procs = match rustix::fs::openat(
                &dir,
                "cgroup.procs",
                OFlags::WRONLY | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Err(rustix::io::Errno::NOENT) => continue,
                r => r.map_err(fail)?,
            };
            match rustix::io::write(&procs, pid.as_bytes()) {
                Err(rustix::io::Errno::NODEV | rustix::io::Errno::NOENT) => continue,
                Ok(n) if n != pid.len() => return Err(fail(rustix::io::Errno::IO)),
                r => r.map(drop).map_err(fail)?,
            }
        }
        Ok(())
    }
}

/// Whether `path` is named as rrun names a container's cgroup: absolute, without `..`, its
/// last component `rbox-<valid name>`.
fn named_ours(path: &std::path::Path) -> bool {
    path.is_absolute()
        && !path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        && path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
            n.strip_prefix("rbox-")
                .is_some_and(|s| check_name(s).is_ok())
        })
}
