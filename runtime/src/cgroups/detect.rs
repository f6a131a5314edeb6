//! Owns: finding the cgroup hierarchies this process belongs to and the directory of its own
//! cgroup in each (v1, v2, or both on a hybrid machine); never assumes /sys/fs/cgroup.
//! Kernel interface: /proc/self/mountinfo (proc(5)) and /proc/self/cgroup (cgroups(7)).

use std::path::{Path, PathBuf};

use super::CgroupError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// One hierarchy this process is a member of, reachable through a mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub version: Version,
    /// v1: the controllers of the hierarchy as /proc/self/cgroup names them ("cpu", "cpuacct",
    /// "name=systemd"); v2: empty (its controllers are listed in cgroup.controllers).
    pub controllers: Vec<String>,
    /// Where the hierarchy is mounted.
    pub mount: PathBuf,
    /// The directory of this process's own cgroup in it.
    pub own: PathBuf,
    /// False when mounted read-only (nothing can be created there).
    pub writable: bool,
}

impl Hierarchy {
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// A cgroup or cgroup2 line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub version: Version,
    /// The cgroup path (in the mounter's view) the mount shows at its top.
    pub root: String,
    pub point: PathBuf,
    /// False for a read-only mount ("ro" among the per-mount options).
    pub writable: bool,
    /// Super options: for v1 these include the controllers ("rw,cpu,cpuacct").
    pub options: Vec<String>,
}

/// A line of /proc/self/cgroup: "hierarchy-ID:controller-list:cgroup-path".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub id: u32,
    pub controllers: Vec<String>,
    pub path: String,
}

/// The hierarchies of the calling process.
pub fn detect() -> Result<Vec<Hierarchy>, CgroupError> {
    let mountinfo = read("/proc/self/mountinfo")?;
    let cgroup = read("/proc/self/cgroup")?;
    let found = match_hierarchies(&parse_mountinfo(&mountinfo), &parse_proc_cgroup(&cgroup));
    if found.is_empty() {
        return Err(CgroupError::NoHierarchy);
    }
    Ok(found)
}

/// Every cgroup mount of the calling process's mount namespace.
pub fn mounts() -> Result<Vec<Mount>, CgroupError> {
    Ok(parse_mountinfo(&read("/proc/self/mountinfo")?))
}

fn read(path: &str) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.into(),
        source,
    })
}

/// cgroup and cgroup2 mounts from mountinfo text ("36 35 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory").
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 6 || r.len() < 3 {
            continue;
        }
        let version = match r[0] {
            "cgroup" => Version::V1,
            "cgroup2" => Version::V2,
            _ => continue,
        };
        out.push(Mount {
            version,
            root: unescape(l[3]),
            point: PathBuf::from(unescape(l[4])),
            writable: !l[5].split(',').any(|o| o == "ro"),
            options: r[2].split(',').map(str::to_string).collect(),
        });
    }
    out
}

/// mountinfo escapes space, tab, newline and backslash as \ooo octal.
fn unescape(s: &str) -> String {
    crate::sys::procfs::unescape_mountinfo(s)
        .to_string_lossy()
        .into_owned()
}

pub fn parse_proc_cgroup(text: &str) -> Vec<Membership> {
    text.lines()
        .filter_map(|line| {
            let mut it = line.splitn(3, ':');
            let id = it.next()?.parse().ok()?;
            let ctrl = it.next()?;
            let path = it.next()?.to_string();
            let controllers = ctrl
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            Some(Membership {
                id,
                controllers,
                path,
            })
        })
        .collect()
}

/// Pairs each membership with a mount showing its cgroup, and turns the cgroup path into a
/// directory. A membership whose cgroup lies outside every mount's root (e.g. "/.." seen from
/// inside a cgroup namespace) is left out: there is no directory through which to reach it.
pub fn match_hierarchies(mounts: &[Mount], members: &[Membership]) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for m in members {
        let v2 = m.id == 0 && m.controllers.is_empty();
        let found = mounts.iter().find_map(|mnt| {
            let fits = if v2 {
                mnt.version == Version::V2
            } else {
                mnt.version == Version::V1 && m.controllers.iter().all(|c| mnt.options.contains(c))
            };
            if !fits {
                return None;
            }
            let rel = beneath(&mnt.root, &m.path)?;
            Some(Hierarchy {
                version: mnt.version,
                controllers: if v2 {
                    Vec::new()
                } else {
                    m.controllers.clone()
                },
                mount: mnt.point.clone(),
                own: if rel.is_empty() {
                    mnt.point.clone()
                } else {
                    mnt.point.join(rel)
                },
                writable: mnt.writable,
            })
        });
        if let Some(h) = found {
            if !out.iter().any(|o| o.mount == h.mount) {
                out.push(h);
            }
        }
    }
    out
}

/// `path` relative to `root` when it lies at or beneath it (component-wise), without leading '/'.
fn beneath<'a>(root: &str, path: &'a str) -> Option<&'a str> {
    if path.split('/').any(|c| c == "..") || !path.starts_with('/') {
        return None;
    }
    let root = root.trim_end_matches('/');
    let rest = path.strip_prefix(root)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    Some(rest.trim_start_matches('/'))
}

/// True when `path` is a directory strictly beneath one of the cgroup mounts; returns that mount.
pub fn mount_of<'a>(mounts: &'a [Mount], path: &Path) -> Option<&'a Mount> {
    mounts
        .iter()
        .filter(|m| path.starts_with(&m.point) && path != m.point)
        .max_by_key(|m| m.point.as_os_str().len())
}

#[cfg(test)]
mod unit {
    use super::*;

    // This machine (Debian 12 VM, hybrid): v1 controllers, an empty v2 at /sys/fs/cgroup/unified,
    // the process in a nested memory cgroup.
    const HYBRID_MOUNTINFO: &str = "\
23 1 0:21 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
6:freezer:/
4:memory:/process_api/5770469b
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
";

    #[test]
    fn hybrid_machine_yields_v1_controllers_and_the_unified_v2() {
        let h = match_hierarchies(
            &parse_mountinfo(HYBRID_MOUNTINFO),
            &parse_proc_cgroup(HYBRID_CGROUP),
        );
        assert_eq!(h.len(), 8);
        let mem = h.iter().find(|h| h.has("memory")).unwrap();
        assert_eq!(mem.version, Version::V1);
        assert_eq!(
            mem.own,
            Path::new("/sys/fs/cgroup/memory/process_api/5770469b")
        );
        let v2 = h.iter().find(|h| h.version == Version::V2).unwrap();
        assert_eq!(v2.own, Path::new("/sys/fs/cgroup/unified"));
        assert!(h.iter().any(|h| h.has("name=systemd")));
        assert_eq!(
            h.iter().find(|h| h.has("cpu")).unwrap().mount,
            Path::new("/sys/fs/cgroup/cpu")
        );
    }

    #[test]
    fn pure_v2_machine_yields_one_hierarchy_at_the_session_scope() {
        let mi = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
        let cg = "0::/user.slice/user-0.slice/session-3.scope\n";
        let h = match_hierarchies(&parse_mountinfo(mi), &parse_proc_cgroup(cg));
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].version, Version::V2);
        assert_eq!(
            h[0].own,
            Path::new("/sys/fs/cgroup/user.slice/user-0.slice/session-3.scope")
        );
    }

    #[test]
    fn comounted_v1_controllers_match_one_mount() {
        let mi = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
        let cg = "2:cpu,cpuacct:/a/b\n";
        let h = match_hierarchies(&parse_mountinfo(mi), &parse_proc_cgroup(cg));
        assert_eq!(h.len(), 1);
        assert!(h[0].has("cpu") && h[0].has("cpuacct"));
        assert_eq!(h[0].own, Path::new("/sys/fs/cgroup/cpu,cpuacct/a/b"));
    }

    #[test]
    fn a_mount_of_a_subtree_translates_the_path_and_outside_paths_are_skipped() {
        // A container that bind-mounted only /docker/abc of the memory hierarchy.
        let mi = "50 40 0:32 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n\
                  51 40 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        let cg = "4:memory:/docker/abc/inner\n0::/..\n";
        let h = match_hierarchies(&parse_mountinfo(mi), &parse_proc_cgroup(cg));
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].own, Path::new("/sys/fs/cgroup/memory/inner"));
        assert!(!h[0].writable);
        // "/docker/abcd" is not beneath "/docker/abc".
        let cg = "4:memory:/docker/abcd\n";
        assert!(match_hierarchies(&parse_mountinfo(mi), &parse_proc_cgroup(cg)).is_empty());
    }

    #[test]
    fn mountinfo_octal_escapes_are_decoded_and_other_filesystems_ignored() {
        let mi =
            "40 31 0:37 / /mnt/cg\\040x rw - cgroup2 none rw\n41 1 0:1 / /proc rw - proc proc rw\n";
        let m = parse_mountinfo(mi);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].point, Path::new("/mnt/cg x"));
    }

    #[test]
    fn mount_of_finds_the_deepest_mount_strictly_containing_a_path() {
        let m = parse_mountinfo(HYBRID_MOUNTINFO);
        assert_eq!(
            mount_of(&m, Path::new("/sys/fs/cgroup/memory/rbox-x"))
                .unwrap()
                .point,
            Path::new("/sys/fs/cgroup/memory")
        );
        assert!(mount_of(&m, Path::new("/sys/fs/cgroup/memory")).is_none());
        assert!(mount_of(&m, Path::new("/tmp/rbox-x")).is_none());
    }
}
