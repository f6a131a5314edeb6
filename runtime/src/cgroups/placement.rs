//! Owns: which hierarchies a container's cgroup lives in and which controllers are set in each,
//! and the checks that need them (`--cpuset-cpus`, the directories creation may make).
//! Kernel interface: none of its own; the hierarchies come from /proc (see detect.rs).
//!
//! Which hierarchies a container's cgroup lives in:
//! - the cgroup v2 hierarchy whenever one is mounted (on a hybrid machine the controller-less
//!   unified one): it gives cgroup.kill / cgroup.freeze and is where everything sits on pure v2;
//! - for each limit asked for, the v1 hierarchy carrying its controller if there is one, else
//!   v2 (the controller is then enabled in cgroup.subtree_control from the top down to rrun's
//!   own cgroup);
//! - the v1 freezer when there is no v2 hierarchy, so that [`super::Cgroup::kill_all`] can
//!   freeze.

use std::path::PathBuf;

use super::detect::{self, Hierarchy, Version};
use super::limits::{check_name, Limits};
use super::{cpuset, CgroupError};

/// Where the limits go: one entry per hierarchy used, with the controllers to set there.
pub(super) struct Place<'a> {
    pub(super) h: &'a Hierarchy,
    pub(super) controllers: Vec<&'static str>,
}

/// Every directory [`super::Cgroup::create`] may make for `name`: `rbox-<name>` beneath rrun's own
/// cgroup in each writable hierarchy it belongs to. rrun records them before creating anything,
/// so that a crash at any moment leaves paths `rrun rm` finds ([`super::Cgroup::from_paths`] skips
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

/// Chooses the hierarchies (see the module comment) and which controllers to set in each.
pub(super) fn place<'a>(
    hs: &'a [Hierarchy],
    limits: &Limits,
) -> Result<Vec<Place<'a>>, CgroupError> {
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
    let v1_of = |c: &str| {
        usable
            .iter()
            .copied()
            .find(|h| h.version == Version::V1 && h.has(c))
    };
    for (c, _) in wanted
        .iter()
        .filter(|w| w.1 || limits.every_controller && v1_of(w.0).is_some())
    {
        match (v1_of(c), v2) {
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
            every_controller: false,
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
    fn every_controller_joins_each_v1_hierarchy_but_enables_nothing_on_v2() {
        let every = Limits {
            every_controller: true,
            ..Limits::default()
        };
        let hs = hybrid();
        assert_eq!(
            summary(&place(&hs, &every).unwrap()),
            vec![
                ("/unified".into(), vec![]),
                ("/memory/p".into(), vec!["memory"]),
                ("/cpu".into(), vec!["cpu"]),
                ("/cpuset".into(), vec!["cpuset"]),
                ("/pids".into(), vec!["pids"]),
            ]
        );
        let hs = vec![h(Version::V2, &[], "/scope")];
        assert_eq!(
            summary(&place(&hs, &every).unwrap()),
            vec![("/scope".into(), vec![])]
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
}
