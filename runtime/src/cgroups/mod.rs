//! Owns: a container's cgroup, `rbox-<name>` beneath the cgroup rrun runs in, in each hierarchy it
//! needs (v1, v2 or hybrid): limits, joining, OOM detection, killing the whole tree, removal.
//! Kernel interface: cgroupfs, see cgroups(7), Documentation/admin-guide/cgroup-v1/ and cgroup-v2.rst.
//!
//! Which hierarchies a container's cgroup lives in:
//! - the cgroup v2 hierarchy whenever one is mounted (on a hybrid machine the controller-less
//!   unified one): it gives cgroup.kill / cgroup.freeze and is where everything sits on pure v2;
//! - for each limit asked for, the v1 hierarchy carrying its controller if there is one, else
//!   v2 (the controller is then enabled in cgroup.subtree_control from the top down to rrun's
//!   own cgroup);
//! - the v1 freezer when there is no v2 hierarchy, so that [`Cgroup::kill_all`] can freeze.
//!
//! Device access (see devices.rs) is restricted in every container rrun makes as root: a BPF
//! device program attached to its v2 directory wherever a v2 hierarchy is usable (hybrid
//! machines included: the kernel runs the programs of a task's unified-hierarchy cgroup whether
//! or not any controller is enabled there), else, or if the kernel refuses the program, a
//! directory in the v1 `devices` hierarchy set to the same allowlist. Not both: either one
//! alone refuses the access (the kernel asks each that exists), and the second would only add
//! start-up work (a directory, twelve writes and a move through cgroup.procs, ~0.1-0.2 ms).
//!
//! A container without limits thus costs one mkdir and loading one small BPF program (about
//! 0.1 ms) on a hybrid or v2 machine. The directories are named `rbox-<name>`;
//! [`Cgroup::open`] finds them again beneath the caller's own cgroups,
//! [`Cgroup::from_paths`] from the [`Cgroup::paths`] a caller recorded (needed when `rrun rm`
//! runs from another cgroup than the `rrun` that created the container).

mod bpf;
mod cpu;
mod cpuset;
mod detect;
mod devices;
mod error;
mod freezer;
mod fs;
mod inside;
mod memory;
mod parse;
mod pids;
mod v1;
mod v2;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use detect::{Hierarchy, Version};

pub use error::CgroupError;
pub use inside::InsideMount;
pub use memory::MIN_MEMORY;
pub use parse::{parse_cpus, parse_size};

/// How long remove() retries a cgroup whose last tasks are still exiting.
const REMOVE_WAIT: Duration = Duration::from_secs(2);

/// Limits from the CLI. memory: bytes; cpus: fraction of CPUs (0.5 = half a CPU);
/// cpuset_cpus: a list like "0-1,3"; pids: max tasks; devices: allow only Docker's default
/// device list (set for every container rrun makes as root; see devices.rs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    pub cpuset_cpus: Option<String>,
    pub pids: Option<u64>,
    pub devices: bool,
}

/// One directory of a container's cgroup, in one hierarchy.
#[derive(Debug, Clone)]
struct Dir {
    version: Version,
    /// v1: the hierarchy's controllers; v2: empty.
    controllers: Vec<String>,
    path: PathBuf,
}

impl Dir {
    fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// A container's cgroup: its directories in every hierarchy it lives in. Dropping the handle
/// leaves the cgroup alone (a detached container outlives the rrun that made it); [`remove`]
/// deletes it.
///
/// [`remove`]: Cgroup::remove
#[derive(Debug)]
pub struct Cgroup {
    dirs: Vec<Dir>,
    paths: Vec<PathBuf>,
}

/// Where the limits go: one entry per hierarchy used, with the controllers to set there.
struct Place<'a> {
    h: &'a Hierarchy,
    controllers: Vec<&'static str>,
}

impl Cgroup {
    /// Creates `rbox-<name>` beneath rrun's own cgroup in every hierarchy needed and sets the
    /// limits (the device allowlist included). Fails if it exists already; a failure half-way
    /// removes what it created.
    pub fn create(name: &str, limits: &Limits) -> Result<Cgroup, CgroupError> {
        check_name(name)?;
        check_limits(limits)?;
        Cgroup::create_in(&detect::detect()?, name, limits)
    }

    /// [`Cgroup::create`] in the given hierarchies (tests hand in a broken one to force a failure
    /// half-way).
    fn create_in(hs: &[Hierarchy], name: &str, limits: &Limits) -> Result<Cgroup, CgroupError> {
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
            .build(name, limits, cpuset.as_deref(), &places)
            .and_then(|()| match limits.devices {
                true => cg.restrict_devices(hs, name),
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
        name: &str,
        limits: &Limits,
        cpuset: Option<&str>,
        places: &[Place],
    ) -> Result<(), CgroupError> {
        for p in places {
            self.mkdir(p.h, name)?;
        }
        for (p, d) in places.iter().zip(&self.dirs) {
            for &c in &p.controllers {
                match c {
                    "memory" => {
                        memory::apply(d.version, &d.path, limits.memory.unwrap_or(u64::MAX))?
                    }
                    "cpu" => cpu::apply(d.version, &d.path, limits.cpus.unwrap_or(1.0))?,
                    "cpuset" => {
                        cpuset::apply(d.version, &d.path, &p.h.own, cpuset.unwrap_or_default())?
                    }
                    "pids" => pids::apply(&d.path, limits.pids.unwrap_or(u64::MAX))?,
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// mkdir `rbox-<name>` in hierarchy `h`, recorded at once for the caller's rollback.
    fn mkdir(&mut self, h: &Hierarchy, name: &str) -> Result<PathBuf, CgroupError> {
        let path = h.own.join(format!("rbox-{name}"));
        match std::fs::create_dir(&path) {
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
        Ok(path)
    }

    /// Allows only the default devices: the BPF program on the v2 directory, else (no v2
    /// hierarchy, or the kernel refused the program) the v1 devices hierarchy; an error naming
    /// both reasons when neither can be had.
    fn restrict_devices(&mut self, hs: &[Hierarchy], name: &str) -> Result<(), CgroupError> {
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
        let path = h.own.join(format!("rbox-{name}"));
        let path = match self.dirs.iter().find(|d| d.path == path) {
            Some(d) => d.path.clone(),
            None => self.mkdir(h, name)?,
        };
        devices::apply_v1(&path, &devices::DEFAULT)
    }

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

    /// Moves process `pid` (all its threads) into the cgroup in every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<(), CgroupError> {
        let s = pid.to_string();
        for d in &self.dirs {
            fs::write(&d.path, "cgroup.procs", &s)?;
        }
        Ok(())
    }

    /// Whether the OOM killer has killed a task of this cgroup (v1 memory.oom_control
    /// `oom_kill`, v2 memory.events `oom_kill`). False without a memory limit.
    pub fn oom_killed(&self) -> bool {
        self.dirs
            .iter()
            .filter(|d| d.version == Version::V2 || d.has("memory"))
            .any(|d| memory::oom_kills(d.version, &d.path).unwrap_or(0) > 0)
    }

    /// SIGKILLs every task and waits (up to 5 s) until none is left: cgroup.kill on v2, else
    /// freeze (v2 cgroup.freeze or the v1 freezer) + SIGKILL each task + thaw, repeated.
    pub fn kill_all(&self) -> Result<(), CgroupError> {
        freezer::kill_all(&self.dirs, true)
    }

    /// Host pids of every task in the cgroup (and below it), ascending.
    pub fn pids(&self) -> Vec<i32> {
        freezer::tasks(&self.dirs)
    }

    /// Removes the cgroup (and any child cgroups the container made) in every hierarchy,
    /// retrying for up to 2 s while the last tasks finish exiting. Tries every directory even
    /// after a failure and reports the first one.
    pub fn remove(self) -> Result<(), CgroupError> {
        let start = Instant::now();
        let mut first = None;
        for d in &self.dirs {
            for sub in fs::tree(&d.path).iter().rev() {
                if let Err(e) = rmdir_retry(sub, start) {
                    first.get_or_insert(e);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// The cgroup's directories, one per hierarchy (for inspect, debugging and state files).
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }
}

fn rmdir_retry(path: &Path, start: Instant) -> Result<(), CgroupError> {
    let mut nap = Duration::from_micros(500);
    loop {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error()) => {
                if start.elapsed() >= REMOVE_WAIT {
                    return Err(CgroupError::StillBusy {
                        path: path.to_path_buf(),
                        pids: fs::procs_recursive(path),
                    });
                }
                std::thread::sleep(nap);
                nap = (nap * 2).min(Duration::from_millis(20));
            }
            Err(source) => {
                return Err(CgroupError::Rmdir {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// Every directory [`Cgroup::create`] may make for `name`: `rbox-<name>` beneath rrun's own
/// cgroup in each writable hierarchy it belongs to. rrun records them before creating anything,
/// so that a crash at any moment leaves paths `rrun rm` finds ([`Cgroup::from_paths`] skips
/// the ones never made). (Added by the lifecycle engineer.)
pub fn candidate_paths(name: &str) -> Result<Vec<PathBuf>, CgroupError> {
    check_name(name)?;
    Ok(detect::detect()?
        .iter()
        .filter(|h| h.writable)
        .map(|h| h.own.join(format!("rbox-{name}")))
        .collect())
}

/// Checks a `--cpuset-cpus` list against the CPUs the cgroup rrun runs in allows; returns it in
/// the kernel's canonical form ("0-1,3").
pub fn check_cpuset(list: &str) -> Result<String, CgroupError> {
    let hs = detect::detect()?;
    let limits = Limits {
        cpuset_cpus: Some(list.to_string()),
        ..Limits::default()
    };
    let places = place(&hs, &limits)?;
    let p = places
        .iter()
        .find(|p| p.controllers.contains(&"cpuset"))
        .ok_or(CgroupError::NoHierarchy)?;
    cpuset::check(
        list,
        &cpuset::allowed(p.h.version, &p.h.mount, &p.h.own)?,
        &p.h.own,
    )
}

/// A name is one path component under our control: `[A-Za-z0-9][A-Za-z0-9_.-]{0,127}`.
fn check_name(name: &str) -> Result<(), CgroupError> {
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
fn check_limits(l: &Limits) -> Result<(), CgroupError> {
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

/// Chooses the hierarchies (see the module comment) and which controllers to set in each.
fn place<'a>(hs: &'a [Hierarchy], limits: &Limits) -> Result<Vec<Place<'a>>, CgroupError> {
    let usable: Vec<&Hierarchy> = hs.iter().filter(|h| h.writable).collect();
    let v2 = usable.iter().copied().find(|h| h.version == Version::V2);
    let mut places: Vec<Place> = Vec::new();
    let mut put = |h: &'a Hierarchy, c: Option<&'static str>| {
        let i = match places.iter().position(|p| std::ptr::eq(p.h, h)) {
            Some(i) => i,
            None => {
                places.push(Place {
                    h,
                    controllers: Vec::new(),
                });
                places.len() - 1
            }
        };
        places[i].controllers.extend(c);
    };
    if let Some(h) = v2 {
        put(h, None);
    }
    let wanted = [
        ("memory", limits.memory.is_some()),
        ("cpu", limits.cpus.is_some()),
        ("cpuset", limits.cpuset_cpus.is_some()),
        ("pids", limits.pids.is_some()),
    ];
    for (c, _) in wanted.iter().filter(|w| w.1) {
        match (usable.iter().copied().find(|h| h.version == Version::V1 && h.has(c)), v2) {
            (Some(h), _) => put(h, Some(c)),
            (None, Some(h)) => put(h, Some(c)),
            (None, None) => {
                return Err(CgroupError::ControllerMissing {
                    controller: c,
                    reason: "no writable cgroup v1 hierarchy carries it and no cgroup v2 hierarchy is mounted".into(),
                })
            }
        }
    }
    if v2.is_none() {
        match usable
            .iter()
            .copied()
            .find(|h| h.version == Version::V1 && h.has("freezer"))
        {
            Some(h) => put(h, None),
            // No freezer: any real controller hierarchy still lets kill_all find the tasks.
            None => {
                if let Some(h) = usable.iter().copied().find(|h| {
                    h.version == Version::V1
                        && !h.controllers.iter().all(|c| c.starts_with("name="))
                }) {
                    put(h, None)
                }
            }
        }
    }
    if places.is_empty() {
        return Err(CgroupError::NoHierarchy);
    }
    Ok(places)
}

#[cfg(test)]
mod unit {
    use super::*;

    fn h(version: Version, controllers: &[&str], own: &str) -> Hierarchy {
        Hierarchy {
            version,
            controllers: controllers.iter().map(|s| s.to_string()).collect(),
            mount: PathBuf::from("/sys/fs/cgroup"),
            own: PathBuf::from(own),
            writable: true,
        }
    }

    fn summary(places: &[Place]) -> Vec<(String, Vec<&'static str>)> {
        places
            .iter()
            .map(|p| (p.h.own.display().to_string(), p.controllers.clone()))
            .collect()
    }

    fn hybrid() -> Vec<Hierarchy> {
        vec![
            h(Version::V1, &["name=systemd"], "/s"),
            h(Version::V1, &["pids"], "/pids"),
            h(Version::V1, &["freezer"], "/freezer"),
            h(Version::V1, &["memory"], "/memory/p"),
            h(Version::V1, &["cpuset"], "/cpuset"),
            h(Version::V1, &["cpu"], "/cpu"),
            h(Version::V2, &[], "/unified"),
        ]
    }

    #[test]
    fn hybrid_without_limits_uses_only_the_unified_hierarchy() {
        let hs = hybrid();
        assert_eq!(
            summary(&place(&hs, &Limits::default()).unwrap()),
            vec![("/unified".into(), vec![])]
        );
    }

    #[test]
    fn hybrid_limits_go_to_their_v1_controllers() {
        let hs = hybrid();
        let l = Limits {
            memory: Some(32 << 20),
            cpus: Some(0.5),
            cpuset_cpus: Some("0".into()),
            pids: Some(12),
            devices: true,
        };
        assert_eq!(
            summary(&place(&hs, &l).unwrap()),
            vec![
                ("/unified".into(), vec![]),
                ("/memory/p".into(), vec!["memory"]),
                ("/cpu".into(), vec!["cpu"]),
                ("/cpuset".into(), vec!["cpuset"]),
                ("/pids".into(), vec!["pids"]),
            ]
        );
    }

    #[test]
    fn pure_v2_puts_every_limit_in_one_cgroup() {
        let hs = vec![h(Version::V2, &[], "/scope")];
        let l = Limits {
            memory: Some(32 << 20),
            pids: Some(5),
            ..Limits::default()
        };
        assert_eq!(
            summary(&place(&hs, &l).unwrap()),
            vec![("/scope".into(), vec!["memory", "pids"])]
        );
    }

    #[test]
    fn pure_v1_uses_the_freezer_for_killing_and_refuses_missing_controllers() {
        let mut hs = hybrid();
        hs.pop();
        assert_eq!(
            summary(&place(&hs, &Limits::default()).unwrap()),
            vec![("/freezer".into(), vec![])]
        );
        let hs = vec![h(Version::V1, &["memory"], "/m")];
        let e = place(
            &hs,
            &Limits {
                pids: Some(3),
                ..Limits::default()
            },
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.starts_with("the pids controller is not available"), "{e}");
        let hs = vec![h(Version::V1, &["name=systemd"], "/s")];
        assert!(matches!(
            place(&hs, &Limits::default()),
            Err(CgroupError::NoHierarchy)
        ));
    }

    #[test]
    fn read_only_hierarchies_are_not_used() {
        let mut hs = hybrid();
        hs[6].writable = false;
        assert_eq!(
            summary(&place(&hs, &Limits::default()).unwrap()),
            vec![("/freezer".into(), vec![])]
        );
    }

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
