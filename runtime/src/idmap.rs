//! User-namespace id maps: choosing the host range for `--userns remap|host` and rootless runs,
//! and writing /proc/PID/{uid_map,gid_map,setgroups}. Kernel doc: user_namespaces(7), subuid(5).
//!
//! `--userns host` (identity map) creates no user namespace at all, as Docker's
//! `--userns=host`: container root is host root, confined by Docker's default capability set
//! ([`crate::caps`]) and read-only/masked kernel paths ([`crate::masks`]). Its map still
//! describes which ids exist (every id but 4294967295, which means "unchanged" to the kernel).

use std::path::Path;

use serde::{Deserialize, Serialize};
use store::subid;

use crate::error::{Context, Result};

/// The host range used for `--userns remap` when /etc/subuid (/etc/subgid) has no `rbox` entry:
/// container ids 0..65535 are host ids 100000..165535 (the classic first subordinate range).
pub const DEFAULT_REMAP_START: u32 = 100_000;
pub const DEFAULT_REMAP_COUNT: u32 = 65_536;
/// The user whose /etc/subuid and /etc/subgid entries choose the remap range (matched by name:
/// it need not be an account).
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
        let all = vec![IdRange {
            inside: 0,
            outside: 0,
            count: u32::MAX,
        }];
        IdMaps {
            uid: all.clone(),
            gid: all,
            deny_setgroups: false,
        }
    }

    /// `--userns remap`: container 0..N maps to the `rbox` subordinate range, else the default.
    pub fn remap() -> IdMaps {
        // the store's parser (the one rbuild and rrun share): the first `rbox:START:COUNT` line.
        let first = |file: &str| {
            subid::read(Path::new(file), &subid::Owner::name(REMAP_USER))
                .first()
                .map_or((DEFAULT_REMAP_START, DEFAULT_REMAP_COUNT), |r| {
                    (r.start, r.count)
                })
        };
        let (uid, gid) = (first(subid::SUBUID), first(subid::SUBGID));
        IdMaps {
            uid: vec![IdRange {
                inside: 0,
                outside: uid.0,
                count: uid.1,
            }],
            gid: vec![IdRange {
                inside: 0,
                outside: gid.0,
                count: gid.1,
            }],
            deny_setgroups: false,
        }
    }

    /// Rootless: container root is the calling user; nothing else is mapped.
    pub fn single(uid: u32, gid: u32) -> IdMaps {
        IdMaps {
            uid: vec![IdRange {
                inside: 0,
                outside: uid,
                count: 1,
            }],
            gid: vec![IdRange {
                inside: 0,
                outside: gid,
                count: 1,
            }],
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
        self.uid.iter().all(|r| r.inside == r.outside)
            && self.gid.iter().all(|r| r.inside == r.outside)
    }

    /// Whether the container gets a user namespace of its own: always but for `--userns host`.
    pub fn own_userns(&self) -> bool {
        !self.is_identity()
    }

    /// The clone(2) flag for the container's user namespace (none under `--userns host`).
    pub fn clone_flag(&self) -> i32 {
        if self.own_userns() {
            libc::CLONE_NEWUSER
        } else {
            0
        }
    }

    /// Refuses ids the container's user namespace does not map (and 4294967295, "-1" to
    /// setresuid, never mapped): one line naming the id and the mapped range.
    pub fn check_mapped(&self, uid: u32, gid: u32) -> Result<()> {
        for (kind, id, ranges) in [("uid", uid, &self.uid), ("gid", gid, &self.gid)] {
            if map_one(ranges, id).is_none() {
                return Err(crate::error::user(format!(
                    "{kind} {id} is not mapped in the container's user namespace (container {kind}s {}): use one in that range",
                    describe_ranges(ranges)
                )));
            }
        }
        Ok(())
    }

    /// Writes the maps of the user namespace of process `pid` (which waits meanwhile); nothing
    /// under `--userns host`, which has no user namespace of its own.
    pub fn write(&self, pid: i32) -> Result<()> {
        if !self.own_userns() && !has_own_userns(pid) {
            return Ok(());
        }
        if self.deny_setgroups {
            let p = format!("/proc/{pid}/setgroups");
            std::fs::write(&p, b"deny").ctx(|| format!("write {p}"))?;
        }
        for (file, ranges) in [("uid_map", &self.uid), ("gid_map", &self.gid)] {
            let p = format!("/proc/{pid}/{file}");
            std::fs::write(&p, render(ranges))
                .ctx(|| format!("write {p} ({})", render(ranges).trim()))?;
        }
        Ok(())
    }
}

/// True when process `pid` is in another user namespace than rrun.
fn has_own_userns(pid: i32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let ino = |p: String| std::fs::metadata(p).map(|m| m.ino()).ok();
    ino(format!("/proc/{pid}/ns/user")) != ino("/proc/self/ns/user".into())
}

fn map_one(ranges: &[IdRange], id: u32) -> Option<u32> {
    ranges.iter().find_map(|r| {
        let off = id.checked_sub(r.inside)?;
        (off < r.count).then(|| r.outside.wrapping_add(off))
    })
}

/// "0-65535" (ranges as container ids, comma-separated).
fn describe_ranges(ranges: &[IdRange]) -> String {
    let v: Vec<String> = ranges
        .iter()
        .filter(|r| r.count > 0)
        .map(|r| {
            let last = r.inside as u64 + r.count as u64 - 1;
            if r.count == 1 {
                r.inside.to_string()
            } else {
                format!("{}-{last}", r.inside)
            }
        })
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// The text the kernel expects in uid_map/gid_map.
pub fn render(ranges: &[IdRange]) -> String {
    ranges
        .iter()
        .map(|r| format!("{} {} {}\n", r.inside, r.outside, r.count))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remapped_ids_translate_within_range_only() {
        let m = IdMaps {
            uid: vec![IdRange {
                inside: 0,
                outside: 100000,
                count: 65536,
            }],
            gid: vec![],
            deny_setgroups: false,
        };
        assert_eq!(m.host_uid(0), Some(100000));
        assert_eq!(m.host_uid(1000), Some(101000));
        assert_eq!(m.host_uid(65536), None);
        assert_eq!(m.host_gid(0), None);
        assert_eq!(render(&m.uid), "0 100000 65536\n");
    }

    #[test]
    fn unmapped_and_minus_one_ids_are_refused_naming_the_range() {
        let m = IdMaps {
            uid: vec![IdRange {
                inside: 0,
                outside: 100000,
                count: 65536,
            }],
            gid: vec![IdRange {
                inside: 0,
                outside: 100000,
                count: 65536,
            }],
            deny_setgroups: false,
        };
        assert!(m.check_mapped(65535, 0).is_ok());
        let e = m.check_mapped(65536, 0).unwrap_err().to_string();
        assert!(e.contains("uid 65536") && e.contains("0-65535"), "{e}");
        let e = m.check_mapped(0, u32::MAX).unwrap_err().to_string();
        assert!(e.contains("gid 4294967295"), "{e}");
        let h = IdMaps::host();
        assert!(h.check_mapped(4294967294, 4294967294).is_ok());
        let e = h.check_mapped(u32::MAX, 0).unwrap_err().to_string();
        assert!(e.contains("0-4294967294"), "{e}");
        assert!(IdMaps::single(1000, 1000)
            .check_mapped(1, 0)
            .unwrap_err()
            .to_string()
            .contains("uids 0)"));
    }

    #[test]
    fn host_map_is_the_identity() {
        let m = IdMaps::host();
        assert!(m.is_identity());
        assert_eq!(m.host_uid(4242), Some(4242));
        assert_eq!(render(&m.uid), "0 0 4294967295\n");
    }
}
