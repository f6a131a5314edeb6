//! Owns: which of a container's cgroup directories it sees at /sys/fs/cgroup, and under which
//! names (the layout Docker gives on each kind of host). The mounting itself is the child's
//! (crate::cgroupfs). Kernel interface: none beyond detect.rs (cgroups(7), cgroup_namespaces(7)).

use super::detect::{self, Version};
use super::Cgroup;

/// One hierarchy to show inside the container, at `/sys/fs/cgroup/<dir>` ("" for the
/// mount point itself: the cgroup v2 hierarchy of a pure v2 host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsideMount {
    pub v2: bool,
    /// v1: the controllers ("cpu", "cpuacct") and named hierarchies ("name=systemd") to mount.
    pub controllers: Vec<String>,
    /// The folder under /sys/fs/cgroup: "" (pure v2), "unified" (v2 on a hybrid host), or the
    /// v1 controllers joined by ',' ("cpu,cpuacct", "memory", "systemd").
    pub dir: String,
}

impl InsideMount {
    /// The names that link to a co-mounted v1 hierarchy ("cpu" and "cpuacct" for
    /// "cpu,cpuacct"), as on the host and in Docker's containers.
    pub fn links(&self) -> Vec<String> {
        if self.v2 || self.controllers.len() < 2 {
            return Vec::new();
        }
        self.controllers
            .iter()
            .filter(|c| !c.starts_with("name="))
            .cloned()
            .collect()
    }
}

impl Cgroup {
    /// The hierarchies this cgroup has a directory of its own in, as the container will see
    /// them: only those (a hierarchy where it shares the cgroup rrun runs in would show rrun's
    /// cgroup and its other containers). Empty when the hierarchies cannot be read.
    pub fn inside_mounts(&self) -> Vec<InsideMount> {
        let pure_v2 = detect::detect()
            .map(|hs| hs.iter().all(|h| h.version == Version::V2))
            .unwrap_or(false);
        self.dirs
            .iter()
            .map(|d| match d.version {
                Version::V2 => InsideMount {
                    v2: true,
                    controllers: Vec::new(),
                    dir: if pure_v2 {
                        String::new()
                    } else {
                        "unified".into()
                    },
                },
                Version::V1 => InsideMount {
                    v2: false,
                    controllers: d.controllers.clone(),
                    dir: d
                        .controllers
                        .iter()
                        .map(|c| c.strip_prefix("name=").unwrap_or(c))
                        .collect::<Vec<_>>()
                        .join(","),
                },
            })
            .collect()
    }
}
