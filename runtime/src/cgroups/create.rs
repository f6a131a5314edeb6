//! Owns: making a container's cgroup: `rbox-<name>` in every hierarchy [`super::placement`]
//! chose, the limits written, the device allowlist attached, and nothing left behind when a
//! step fails. Kernel interface: cgroupfs (mkdir, the controllers' files), bpf(2) through
//! devices.rs.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use super::detect::{self, Hierarchy, Version};
use super::limits::{check_limits, check_name, Limits};
use super::parse::format_cpu_list;
use super::placement::{place, Place};
use super::{cpu, cpuset, devices, memory, pids, v2, Cgroup, CgroupError, Dir};

impl Cgroup {
    /// Creates `rbox-<name>` beneath rrun's own cgroup in every hierarchy needed and sets the
    /// limits (the device allowlist included). Fails if it exists already; a failure half-way
    /// removes what it created.
    pub fn create(name: &str, limits: &Limits) -> Result<Cgroup, CgroupError> {
        check_name(name)?;
        check_limits(limits)?;
        let at = |h: &Hierarchy| h.own.join(format!("rbox-{name}"));
        Cgroup::create_with(&detect::detect()?, &at, false, limits)
    }

    /// [`Cgroup::create`] in the given hierarchies (tests hand in a broken one to force a failure
    /// half-way).
    #[cfg(test)]
    pub(super) fn create_in(
        hs: &[Hierarchy],
        name: &str,
        limits: &Limits,
    ) -> Result<Cgroup, CgroupError> {
        let at = |h: &Hierarchy| h.own.join(format!("rbox-{name}"));
        Cgroup::create_with(hs, &at, false, limits)
    }

    /// Creates the cgroup in the hierarchies `hs`: `at` gives the directory in each hierarchy; with `join_existing` an existing directory
    /// is used as it is (and its missing parents are made), as runc does with cgroupsPath.
    pub(super) fn create_with(
        hs: &[Hierarchy],
        at: &dyn Fn(&Hierarchy) -> PathBuf,
        join_existing: bool,
        limits: &Limits,
    ) -> Result<Cgroup, CgroupError> {
        let places = place(hs, limits)?;
        let cpuset = match (
            &limits.cpuset_cpus,
            places.iter().find(|p| p.controllers.contains(&"cpuset")),
        ) {
            (Some(list), Some(p)) => Some(cpuset::check(
                list,
                &cpuset::allowed(p.h.version, &p.h.mount, &p.h.own)?,
                &p.h.own,
            )?),
            // Joined without a limit (every_controller): a v1 cpuset cgroup starts empty and
            // refuses tasks, so it gets every cpu its parent has.
            (None, Some(p)) => Some(format_cpu_list(&cpuset::allowed(
                p.h.version,
                &p.h.mount,
                &p.h.own,
            )?)),
            _ => None,
        };
        for p in places.iter().filter(|p| p.h.version == Version::V2) {
            v2::enable(&p.h.mount, &p.h.own, &p.controllers)?;
        }
        let mut cg = Cgroup {
            dirs: Vec::new(),
            paths: Vec::new(),
        };
        let built = cg
            .build(at, join_existing, limits, cpuset.as_deref(), &places)
            .and_then(|()| match limits.devices {
                true => cg.restrict_devices(hs, at, join_existing),
                false => Ok(()),
            });
        match built {
            Ok(()) => {
                tracing::debug!(paths = ?cg.paths, "cgroup created");
                Ok(cg)
            }
            Err(e) => {
                for d in cg.dirs.iter().rev() {
                    let _ = std::fs::remove_dir(&d.path);
                }
                Err(e)
            }
        }
    }

    /// mkdir in every place (recording each one made, for the caller's rollback), then the limits.
    fn build(
        &mut self,
        at: &dyn Fn(&Hierarchy) -> PathBuf,
        join_existing: bool,
        limits: &Limits,
        cpuset: Option<&str>,
        places: &[Place],
    ) -> Result<(), CgroupError> {
        for p in places {
            self.mkdir(p.h, &at(p.h), join_existing)?;
        }
        for (p, d) in places.iter().zip(&self.dirs) {
            for &c in &p.controllers {
                // A controller joined without its limit (every_controller) is left unlimited.
                match (c, limits) {
                    (
                        "memory",
                        Limits {
                            memory: Some(m), ..
                        },
                    ) => memory::apply(d.version, &d.path, *m)?,
                    ("cpu", Limits { cpus: Some(n), .. }) => cpu::apply(d.version, &d.path, *n)?,
                    ("cpuset", _) => {
                        if d.version == Version::V1 {
                            cpuset::fill_empty_parents(&p.h.mount, &d.path)?;
                        }
                        cpuset::apply(d.version, &d.path, &p.h.own, cpuset.unwrap_or_default())?
                    }
                    ("pids", Limits { pids: Some(n), .. }) => pids::apply(&d.path, *n)?,
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// mkdir `path` in hierarchy `h`, recorded at once for the caller's rollback.
    fn mkdir(
        &mut self,
        h: &Hierarchy,
        path: &std::path::Path,
        join_existing: bool,
    ) -> Result<PathBuf, CgroupError> {
        let path = path.to_path_buf();
        let existed = join_existing && path.is_dir();
        let made = match join_existing {
            true => std::fs::create_dir_all(&path),
            false => std::fs::create_dir(&path),
        };
        match made {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(CgroupError::Exists { path })
            }
            Err(source) => return Err(CgroupError::Mkdir { path, source }),
        }
        self.paths.push(path.clone());
        self.dirs.push(Dir {
            version: h.version,
            controllers: h.controllers.clone(),
            path: path.clone(),
        });
        // 0755 whatever rrun's caller's umask (mkdir(2) applies it): the container reads its
        // own cgroup's files at /sys/fs/cgroup as any of its users, as under Docker. A folder
        // joined (rrun-oci's cgroupsPath, made by another) keeps its mode.
        if !existed {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).map_err(
                |source| CgroupError::Mkdir {
                    path: path.clone(),
                    source,
                },
            )?;
        }
        Ok(path)
    }

    /// Allows only the default devices: the BPF program on the v2 directory, else (no v2
    /// hierarchy, or the kernel refused the program) the v1 devices hierarchy; an error naming
    /// both reasons when neither can be had.
    fn restrict_devices(
        &mut self,
        hs: &[Hierarchy],
        at: &dyn Fn(&Hierarchy) -> PathBuf,
        join_existing: bool,
    ) -> Result<(), CgroupError> {
        let v2 = self.dirs.iter().find(|d| d.version == Version::V2);
        let v2_refused = match v2 {
            Some(d) => match devices::attach_program(&d.path, &devices::DEFAULT) {
                Ok(()) => return Ok(()),
                Err(e) => e.to_string(),
            },
            None => "no writable cgroup v2 hierarchy is mounted".to_string(),
        };
        let Some(h) = hs
            .iter()
            .find(|h| h.writable && h.version == Version::V1 && h.has("devices"))
        else {
            return Err(CgroupError::NoDeviceControl { v2: v2_refused });
        };
        tracing::debug!(reason = %v2_refused, "device filter: using the v1 devices controller");
        let path = at(h);
        let path = match self.dirs.iter().find(|d| d.path == path) {
            Some(d) => d.path.clone(),
            None => self.mkdir(h, &path, join_existing)?,
        };
        devices::apply_v1(&path, &devices::DEFAULT)
    }
}
