//! User-namespace id maps: choosing the host range for `--userns remap|host` and rootless runs,
//! and writing /proc/PID/{uid_map,gid_map,setgroups}. Kernel doc: user_namespaces(7), subuid(5).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Context, Result};

/// The host range used for `--userns remap` when /etc/subuid (/etc/subgid) has no `rbox` entry:
/// container ids 0..65535 are host ids 100000..165535 (the classic first subordinate range).
pub const DEFAULT_REMAP_START: u32 = 100_000;
pub const DEFAULT_REMAP_COUNT: u32 = 65_536;
/// The user whose /etc/subuid and /etc/subgid entries choose the remap range.
pub const REMAP_USER: &str = "rbox";

/// One line of a uid_map or gid_map: `inside outside count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// The uid and gid maps of a container's user namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMaps {
    pub uid: Vec<IdRange>,
    pub gid: Vec<IdRange>,
    /// Write "deny" to /proc/PID/setgroups before gid_map (needed when an unprivileged
    /// writer maps its own gid).
    #[serde(default)]
    pub deny_setgroups: bool,
}

impl IdMaps {
    /// `--userns host`: a user namespace with the identity map, so host ids are kept.
    pub fn host() -> IdMaps {
        let all = vec![IdRange { inside: 0, outside: 0, count: u32::MAX }];
        IdMaps { uid: all.clone(), gid: all, deny_setgroups: false }
    }

    /// `--userns remap`: container 0..N maps to the `rbox` subordinate range, else the default.
    pub fn remap() -> IdMaps {
        let uid = first_subid_range(Path::new("/etc/subuid"), REMAP_USER)
            .unwrap_or((DEFAULT_REMAP_START, DEFAULT_REMAP_COUNT));
        let gid = first_subid_range(Path::new("/etc/subgid"), REMAP_USER)
            .unwrap_or((DEFAULT_REMAP_START, DEFAULT_REMAP_COUNT));
        IdMaps {
            uid: vec![IdRange { inside: 0, outside: uid.0, count: uid.1 }],
            gid: vec![IdRange { inside: 0, outside: gid.0, count: gid.1 }],
            deny_setgroups: false,
        }
    }

    /// Rootless: container root is the calling user; nothing else is mapped.
    pub fn single(uid: u32, gid: u32) -> IdMaps {
        IdMaps {
            uid: vec![IdRange { inside: 0, outside: uid, count: 1 }],
            gid: vec![IdRange { inside: 0, outside: gid, count: 1 }],
            deny_setgroups: true,
        }
    }

    /// The host uid that container uid `inside` is, if mapped.
    pub fn host_uid(&self, inside: u32) -> Option<u32> {
        map_one(&self.uid, inside)
    }

    /// The host gid that container gid `inside` is, if mapped.
    pub fn host_gid(&self, inside: u32) -> Option<u32> {
        map_one(&self.gid, inside)
    }

    /// True when the map is the identity over every id (`--userns host`).
    pub fn is_identity(&self) -> bool {
        self.uid.iter().all(|r| r.inside == r.outside) && self.gid.iter().all(|r| r.inside == r.outside)
    }

    /// Writes the maps of the user namespace of process `pid` (which waits meanwhile).
    pub fn write(&self, pid: i32) -> Result<()> {
        if self.deny_setgroups {
            let p = format!("/proc/{pid}/setgroups");
            std::fs::write(&p, b"deny").ctx(|| format!("write {p}"))?;
        }
        for (file, ranges) in [("uid_map", &self.uid), ("gid_map", &self.gid)] {
            let p = format!("/proc/{pid}/{file}");
            std::fs::write(&p, render(ranges)).ctx(|| format!("write {p} ({})", render(ranges).trim()))?;
        }
        Ok(())
    }
}

fn map_one(ranges: &[IdRange], id: u32) -> Option<u32> {
    ranges.iter().find_map(|r| {
        let off = id.checked_sub(r.inside)?;
        (off < r.count).then(|| r.outside.wrapping_add(off))
    })
}

/// The text the kernel expects in uid_map/gid_map.
pub fn render(ranges: &[IdRange]) -> String {
    ranges.iter().map(|r| format!("{} {} {}\n", r.inside, r.outside, r.count)).collect()
}

/// The first `name:start:count` (or `uid:start:count`) entry of a subuid/subgid file.
pub fn first_subid_range(file: &Path, name: &str) -> Option<(u32, u32)> {
    parse_subid(&std::fs::read_to_string(file).ok()?, name)
}

fn parse_subid(text: &str, name: &str) -> Option<(u32, u32)> {
    text.lines().find_map(|l| {
        let mut it = l.trim().split(':');
        let (who, start, count) = (it.next()?, it.next()?, it.next()?);
        if who != name {
            return None;
        }
        let (start, count) = (start.parse().ok()?, count.parse::<u32>().ok()?);
        (count > 0).then_some((start, count))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subid_entry_for_the_named_user_is_found() {
        let text = "alice:100000:65536\nrbox:200000:65536\n";
        assert_eq!(parse_subid(text, "rbox"), Some((200000, 65536)));
        assert_eq!(parse_subid(text, "bob"), None);
        assert_eq!(parse_subid("rbox:x:1\nrbox:5:0\n", "rbox"), None);
    }

    #[test]
    fn remapped_ids_translate_within_range_only() {
        let m = IdMaps { uid: vec![IdRange { inside: 0, outside: 100000, count: 65536 }], gid: vec![], deny_setgroups: false };
        assert_eq!(m.host_uid(0), Some(100000));
        assert_eq!(m.host_uid(1000), Some(101000));
        assert_eq!(m.host_uid(65536), None);
        assert_eq!(m.host_gid(0), None);
        assert_eq!(render(&m.uid), "0 100000 65536\n");
    }

    #[test]
    fn host_map_is_the_identity() {
        let m = IdMaps::host();
        assert!(m.is_identity());
        assert_eq!(m.host_uid(4242), Some(4242));
        assert_eq!(render(&m.uid), "0 0 4294967295\n");
    }
}
