//! User-namespace id maps: choosing the host range for `--userns remap|host` and rootless runs,
//! and writing /proc/PID/{uid_map,gid_map,setgroups}. Kernel doc: user_namespaces(7), subuid(5).
//!
//! `--userns host` (identity map) creates no user namespace at all, as Docker's
//! `--userns=host`: container root is host root, confined by Docker's default capability set
//! ([`crate::caps`]) and read-only/masked kernel paths ([`crate::masks`]). Its map still
//! describes which ids exist (every id but 4294967295, which means "unchanged" to the kernel).

use std::path::Path;

use rustix::thread::UnshareFlags;
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
    /// Written by the setuid helpers newuidmap(1)/newgidmap(1) (rootless with subordinate
    /// ids), which check the ranges against /etc/subuid and /etc/subgid.
    #[serde(default)]
    pub helper: bool,
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
            helper: false,
        }
    }

    /// `--userns remap`: container 0..N maps to the `rbox` subordinate range, else the default.
    /// A range (the `rbox` one, or the default where there is none) sharing ids with another
    /// owner's subordinate range is refused: that user's rootless containers would share host
    /// ids with root's (and, through newuidmap, could signal, trace and write as root's).
    pub fn remap() -> Result<IdMaps> {
        // the store's parser (the one rbuild and rrun share): the first `rbox:START:COUNT` line.
        let first = |file: &str| -> Result<(u32, u32)> {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            let (r, default) = match subid::first(&text, &subid::Owner::name(REMAP_USER)) {
                Some(r) => (r, false),
                None => (
                    subid::SubRange {
                        start: DEFAULT_REMAP_START,
                        count: DEFAULT_REMAP_COUNT,
                    },
                    true,
                ),
            };
            check_own_range(file, &text, r, default)?;
            Ok((r.start, r.count))
        };
        let (uid, gid) = (first(subid::SUBUID)?, first(subid::SUBGID)?);
        Ok(IdMaps {
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
            helper: false,
        })
    }

    /// Rootless: container root is the calling user (`uid`, `gid`, login `name`); when
    /// /etc/subuid and /etc/subgid give the user ranges and newuidmap/newgidmap exist, the
    /// first range of each maps to container ids 1..=COUNT (as rbuild maps them when it
    /// extracts layers, so an image's owners are kept). Otherwise only the user is mapped and
    /// the second value is a one-line note saying why.
    pub fn rootless(uid: u32, gid: u32, name: Option<&str>) -> (IdMaps, Option<String>) {
        let owner = subid::Owner::user(name, uid);
        let read = |f: &str| subid::read(Path::new(f), &owner).first().copied();
        let who = name.map_or_else(|| uid.to_string(), str::to_string);
        let (u, g) = match (read(subid::SUBUID), read(subid::SUBGID)) {
            (Some(u), Some(g)) => (u, g),
            (u, _) => {
                let file = if u.is_none() {
                    subid::SUBUID
                } else {
                    subid::SUBGID
                };
                return (IdMaps::single(uid, gid), Some(format!(
                    "note: {file} has no entry for {who} (e.g. {who}:START:65536): only your own id is mapped, files of other owners show as nobody"
                )));
            }
        };
        if helper_tool("newuidmap").is_none() || helper_tool("newgidmap").is_none() {
            return (
                IdMaps::single(uid, gid),
                Some("note: newuidmap/newgidmap not found (Debian package uidmap): only your own id is mapped, files of other owners show as nobody".into()),
            );
        }
        let map = |id: u32, r: subid::SubRange| {
            vec![
                IdRange {
                    inside: 0,
                    outside: id,
                    count: 1,
                },
                IdRange {
                    inside: 1,
                    outside: r.start,
                    count: r.count,
                },
            ]
        };
        let maps = IdMaps {
            uid: map(uid, u),
            gid: map(gid, g),
            deny_setgroups: false,
            helper: true,
        };
        (maps, None)
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
            helper: false,
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
    pub fn clone_flag(&self) -> UnshareFlags {
        if self.own_userns() {
            UnshareFlags::NEWUSER
        } else {
            UnshareFlags::empty()
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
        if self.helper {
            return self.write_with_helpers(pid);
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

impl IdMaps {
    /// newuidmap PID INSIDE OUTSIDE COUNT... then newgidmap the same way.
    fn write_with_helpers(&self, pid: i32) -> Result<()> {
        for (tool, ranges) in [("newuidmap", &self.uid), ("newgidmap", &self.gid)] {
            let path = helper_tool(tool).ok_or_else(|| {
                crate::error::user(format!("{tool} not found: install Debian's uidmap package"))
            })?;
            let mut args = vec![pid.to_string()];
            for r in ranges {
                args.extend([r.inside, r.outside, r.count].map(|n| n.to_string()));
            }
            let out = std::process::Command::new(&path)
                .args(&args)
                .stdin(std::process::Stdio::null())
                .output()
                .ctx(|| format!("run {}", path.display()))?;
            if !out.status.success() {
                let why = String::from_utf8_lossy(&out.stderr);
                return Err(crate::error::user(format!(
                    "{tool} {} failed ({}): check your entries in {} and {}",
                    args.join(" "),
                    why.trim().replace('\n', "; "),
                    subid::SUBUID,
                    subid::SUBGID
                )));
            }
        }
        Ok(())
    }
}

/// The path of the setuid helper `name` (newuidmap, newgidmap): on PATH, else in /usr/bin.
fn helper_tool(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .chain([std::path::PathBuf::from("/usr/bin")])
        .filter(|d| d.is_absolute())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Refuses the range `r` root's containers get from `file` (whose text is `text`): the `rbox`
/// one, or the `default` one where `file` has none, when it shares ids with another owner's
/// range: one line naming both and the fix.
fn check_own_range(file: &str, text: &str, r: subid::SubRange, default: bool) -> Result<()> {
    let clash = subid::entries(text)
        .into_iter()
        .find(|(who, o)| *who != REMAP_USER && o.overlaps(&r));
    let Some((who, o)) = clash else {
        return Ok(());
    };
    let what = if default {
        format!(
            "{file} has no {REMAP_USER} entry, and root's default remap range {}",
            r.describe()
        )
    } else {
        format!("the {REMAP_USER} range {} in {file}", r.describe())
    };
    Err(crate::error::user(format!(
        "{what} overlaps {who}'s subordinate range {}: root's containers would share host ids with that user's; give {REMAP_USER} a range beyond every other (./setup.sh does, through tools/rbox-subids)",
        o.describe()
    )))
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
            helper: false,
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
            helper: false,
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
    fn an_rbox_range_overlapping_another_owners_is_refused() {
        let r = subid::SubRange {
            start: 100000,
            count: 65536,
        };
        let text = "rbox:100000:65536\nalice:165536:65536\n";
        assert!(check_own_range("/etc/subuid", text, r, false).is_ok());
        let text = "alice:165535:10\nrbox:100000:65536\n";
        let e = check_own_range("/etc/subuid", text, r, false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("rbox range 100000-165535 in /etc/subuid overlaps alice's")
                && e.contains("165535-165544"),
            "{e}"
        );
    }

    #[test]
    fn the_default_range_overlapping_a_users_is_refused() {
        let r = subid::SubRange {
            start: DEFAULT_REMAP_START,
            count: DEFAULT_REMAP_COUNT,
        };
        // useradd's first range on Debian (SUB_UID_MIN 100000) is the default one
        let text = "alice:100000:65536\n";
        let e = check_own_range("/etc/subgid", text, r, true)
            .unwrap_err()
            .to_string();
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(
            e.contains("/etc/subgid has no rbox entry, and root's default remap range 100000-165535 overlaps alice's subordinate range 100000-165535")
                && e.contains("tools/rbox-subids"),
            "{e}"
        );
        assert!(check_own_range("/etc/subgid", "alice:165536:65536\n", r, true).is_ok());
        assert!(check_own_range("/etc/subgid", "", r, true).is_ok());
    }

    #[test]
    fn host_map_is_the_identity() {
        let m = IdMaps::host();
        assert!(m.is_identity());
        assert_eq!(m.host_uid(4242), Some(4242));
        assert_eq!(render(&m.uid), "0 0 4294967295\n");
    }
}
