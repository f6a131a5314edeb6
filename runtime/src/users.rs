//! Resolving `-u USER[:GROUP]` against the container's own /etc/passwd and /etc/group (read after
//! pivot_root, so they are the image's files), for the container's main process and `rrun exec`
//! alike: uid, gid, supplementary groups (as Docker: the groups listing the user by name) and
//! home. Format: passwd(5), group(5); the files are read as [`crate::inroot`] says.

use crate::error::{user, Result};
use crate::idmap::IdMaps;
use crate::inroot::Root;

/// The identity a process of the container runs with: `spec` (empty = root) resolved with the
/// container's /etc/passwd and /etc/group, refused when its uid or gid is not mapped in the
/// container's user namespace. Supplementary groups the namespace does not map are left out
/// (as are all of them where setgroups is denied, rootless).
///
/// A file rrun will not read (not a regular file, over the size cap) is an error only when
/// `spec` names a user or group that must be looked up in it; otherwise it is left out with a
/// one-line warning on stderr, as if missing: a container that replaced its /etc/passwd with a
/// FIFO can still be entered with `exec -u UID:GID`, and an image shipping one runs as root.
pub fn in_container(root: &Root, spec: &str, maps: &IdMaps) -> Result<User> {
    let (u_part, g_part) = spec.split_once(':').unwrap_or((spec, ""));
    let by_name = |s: &str| !s.is_empty() && !s.bytes().all(|c| c.is_ascii_digit());
    let mut warnings = Vec::new();
    let passwd = Table {
        path: "/etc/passwd",
        gives: "home, primary group or supplementary groups",
    };
    let group = Table {
        path: "/etc/group",
        gives: "supplementary groups",
    };
    let passwd = passwd.read(root, by_name(u_part), spec, &mut warnings)?;
    let group = group.read(root, by_name(g_part), spec, &mut warnings)?;
    let mut u = resolve(spec, passwd.as_deref(), group.as_deref())?;
    // warnings only for a process that will run: a refusal is the one line printed
    for w in warnings {
        eprintln!("rrun: warning: {w}");
    }
    maps.check_mapped(u.uid, u.gid)?;
    if maps.deny_setgroups {
        u.groups.clear();
    } else {
        u.groups.retain(|g| maps.host_gid(*g).is_some());
    }
    Ok(u)
}

/// One of the container's files `-u` is resolved with, and what it gives besides names.
struct Table {
    path: &'static str,
    gives: &'static str,
}

impl Table {
    /// Its text (None when missing). When rrun will not read it: an error naming `spec` if
    /// `needed` (a name must be looked up there), else None and a warning added to `warnings`
    /// saying what goes without the file.
    fn read(
        &self,
        root: &Root,
        needed: bool,
        spec: &str,
        warnings: &mut Vec<String>,
    ) -> Result<Option<String>> {
        match root.read_small(self.path) {
            Ok(b) => Ok(b.map(|b| String::from_utf8_lossy(&b).into_owned())),
            Err(e) if needed => Err(user(format!(
                "-u {spec}: {e}: fix the file, or use a numeric -u UID:GID"
            ))),
            Err(e) => {
                warnings.push(format!("{e}: ignored (no {} from it)", self.gives));
                Ok(None)
            }
        }
    }
}

/// A numeric id: None for a name; digits that do not fit 32 bits are an error.
fn numeric(s: &str, kind: &str) -> Result<Option<u32>> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Ok(None);
    }
    s.parse::<u32>()
        .map(Some)
        .map_err(|_| user(format!("{kind} {s} is out of range (at most 4294967294)")))
}

/// The identity the command runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: String,
}

/// Resolves `spec` (empty = root; `UID`, `NAME`, `UID:GID`, `NAME:GROUP`) with the given file
/// contents (None when the file is missing).
pub fn resolve(spec: &str, passwd: Option<&str>, group: Option<&str>) -> Result<User> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (if spec.is_empty() { "0" } else { spec }, None),
    };
    let entries = fields(passwd, 7);
    let groups_tbl = fields(group, 4);
    let (uid, pw) = find_user(u, &entries)?;
    let gid = match g {
        Some(g) => find_group(g, &groups_tbl)?,
        None => pw.and_then(|f| f[3].parse().ok()).unwrap_or(0),
    };
    let groups = match (g, pw) {
        (None, Some(f)) => supplementary_groups(f[0], &groups_tbl),
        _ => Vec::new(),
    };
    let home = pw
        .map(|f| f[5].to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| if uid == 0 { "/root".into() } else { "/".into() });
    Ok(User {
        uid,
        gid,
        groups,
        home,
    })
}

/// The lines of an /etc/passwd or /etc/group text split at ':', those with fewer than `min`
/// fields left out; a missing file has none.
fn fields(text: Option<&str>, min: usize) -> Vec<Vec<&str>> {
    text.unwrap_or("")
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= min)
        .collect()
}

/// The uid of the user part of a spec (a number, or a name of /etc/passwd) and its passwd
/// entry when there is one.
fn find_user<'e, 'a>(
    u: &str,
    entries: &'e [Vec<&'a str>],
) -> Result<(u32, Option<&'e Vec<&'a str>>)> {
    if let Some(id) = numeric(u, "uid")? {
        let pw = entries
            .iter()
            .find(|f| f[2].parse::<u32>().ok() == Some(id));
        return Ok((id, pw));
    }
    let f = entries.iter().find(|f| f[0] == u).ok_or_else(|| {
        user(format!(
            "no user {u:?} in the container's /etc/passwd: use a numeric UID"
        ))
    })?;
    let uid = f[2]
        .parse()
        .map_err(|_| user(format!("bad uid for {u:?} in the container's /etc/passwd")))?;
    Ok((uid, Some(f)))
}

/// The gid of the group part of a spec: a number, or a name of /etc/group.
fn find_group(g: &str, groups_tbl: &[Vec<&str>]) -> Result<u32> {
    if let Some(id) = numeric(g, "gid")? {
        return Ok(id);
    }
    groups_tbl
        .iter()
        .find(|f| f[0] == g)
        .and_then(|f| f[2].parse().ok())
        .ok_or_else(|| {
            user(format!(
                "no group {g:?} in the container's /etc/group: use a numeric GID"
            ))
        })
}

/// The gids of the groups of /etc/group that list user `name` as a member, each once, in file
/// order.
fn supplementary_groups(name: &str, groups_tbl: &[Vec<&str>]) -> Vec<u32> {
    let mut groups: Vec<u32> = Vec::new();
    for f in groups_tbl {
        if f[3].split(',').any(|m| m == name) {
            if let Ok(id) = f[2].parse::<u32>() {
                if !groups.contains(&id) {
                    groups.push(id);
                }
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    const PW: &str = "root:x:0:0:root:/root:/bin/ash\nbin:x:1:1:bin:/bin:/sbin/nologin\nalice:x:1000:1001::/home/alice:/bin/sh\n";
    const GR: &str = "root:x:0:root\nwheel:x:10:root,alice\nusers:x:100:\nalice:x:1001:\n";

    #[test]
    fn empty_spec_is_root_with_home() {
        let u = resolve("", Some(PW), Some(GR)).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
        // as Docker: every group listing the user, its primary group included
        assert_eq!(u.groups, vec![0, 10]);
    }

    #[test]
    fn names_and_numbers_resolve() {
        let u = resolve("alice", Some(PW), Some(GR)).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1001));
        assert_eq!(u.groups, vec![10]);
        let u = resolve("1000:1000", Some(PW), Some(GR)).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert!(u.groups.is_empty());
        let u = resolve("4242", None, None).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 0, "/"));
        assert_eq!(resolve("bin:users", Some(PW), Some(GR)).unwrap().gid, 100);
    }

    #[test]
    fn unknown_names_are_refused() {
        assert!(resolve("mallory", Some(PW), Some(GR)).is_err());
        assert!(resolve("0:nogroup", Some(PW), Some(GR)).is_err());
    }

    #[test]
    fn ids_beyond_32_bits_are_refused_as_out_of_range() {
        let e = resolve("4294967296", Some(PW), Some(GR))
            .unwrap_err()
            .to_string();
        assert!(e.contains("uid 4294967296 is out of range"), "{e}");
        assert!(resolve("0:99999999999", Some(PW), Some(GR))
            .unwrap_err()
            .to_string()
            .contains("gid"));
    }
}
