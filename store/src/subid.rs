//! Subordinate id ranges from /etc/subuid and /etc/subgid: the one parser rbuild (the owners it
//! keeps in stored layers) and rrun (the ranges it maps them with) share.
//! No kernel interface (plain files; format in subuid(5) and subgid(5), used by newuidmap(1)).
//!
//! Semantics, as shadow-utils' newuidmap/newgidmap apply them: each line is
//! `OWNER:START:COUNT`, where OWNER is a login name or a numeric uid; a line belongs to a user
//! when OWNER equals the user's name, or equals the user's uid written in decimal. A user may
//! have several lines (several ranges); they are returned in file order. Lines that do not
//! parse, a COUNT of 0 and ranges running past the last id (START + COUNT > 2^32) are skipped,
//! as are blank lines and lines starting with `#`.

use std::path::Path;

/// /etc/subuid
pub const SUBUID: &str = "/etc/subuid";
/// /etc/subgid
pub const SUBGID: &str = "/etc/subgid";

/// A subordinate id range: ids `start .. start + count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubRange {
    pub start: u32,
    pub count: u32,
}

/// Whom to look up: a login name, a uid, or both (lines naming either match).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner<'a> {
    pub name: Option<&'a str>,
    pub uid: Option<u32>,
}

impl<'a> Owner<'a> {
    /// A user known by name and uid (what newuidmap matches for the calling user).
    pub fn user(name: Option<&'a str>, uid: u32) -> Owner<'a> {
        Owner {
            name,
            uid: Some(uid),
        }
    }

    /// An owner known by name only (e.g. rrun's `rbox` entry, which need not be an account).
    pub fn name(name: &'a str) -> Owner<'a> {
        Owner {
            name: Some(name),
            uid: None,
        }
    }

    fn matches(&self, field: &str) -> bool {
        if self.name == Some(field) {
            return true;
        }
        match self.uid {
            Some(uid) => {
                !field.is_empty()
                    && field.bytes().all(|b| b.is_ascii_digit())
                    && field.parse() == Ok(uid)
            }
            None => false,
        }
    }
}

/// Every valid line of a subuid/subgid file as (OWNER, range), in file order.
pub fn entries(text: &str) -> Vec<(&str, SubRange)> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') {
                return None;
            }
            let mut f = l.split(':');
            let (who, start, count) = (f.next()?, f.next()?, f.next()?);
            if f.next().is_some() {
                return None;
            }
            let start: u32 = start.trim().parse().ok()?;
            let count: u32 = count.trim().parse().ok()?;
            (count > 0 && u64::from(start) + u64::from(count) <= 1 << 32)
                .then_some((who.trim(), SubRange { start, count }))
        })
        .collect()
}

/// Every range of `owner` in the text of a subuid/subgid file, in file order.
pub fn ranges(text: &str, owner: &Owner) -> Vec<SubRange> {
    entries(text)
        .into_iter()
        .filter(|(who, _)| owner.matches(who))
        .map(|(_, r)| r)
        .collect()
}

impl SubRange {
    /// True when the two ranges share an id.
    pub fn overlaps(&self, other: &SubRange) -> bool {
        let end = |r: &SubRange| u64::from(r.start) + u64::from(r.count);
        u64::from(self.start) < end(other) && u64::from(other.start) < end(self)
    }

    /// "START-LAST" (inclusive).
    pub fn describe(&self) -> String {
        format!(
            "{}-{}",
            self.start,
            u64::from(self.start) + u64::from(self.count) - 1
        )
    }
}

/// The first range of `owner` in the text of a subuid/subgid file.
pub fn first(text: &str, owner: &Owner) -> Option<SubRange> {
    ranges(text, owner).into_iter().next()
}

/// The ranges of `owner` in the file at `path` (empty if the file is missing or unreadable).
pub fn read(path: &Path, owner: &Owner) -> Vec<SubRange> {
    std::fs::read_to_string(path)
        .map(|t| ranges(&t, owner))
        .unwrap_or_default()
}

/// The login name of `uid` from /etc/passwd (no NSS: the files newuidmap's own lookups see on
/// a system without directory services).
pub fn user_name(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    let want = uid.to_string();
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 2 && f[2] == want).then(|| f[0].to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str =
        "alice:100000:65536\n1001:165536:65536\nbob:231072:0\n# carol:1:1\nalice:300000:10\n\
                     dave:4294967295:2\nerin:x:5\n0100:500:5\n";

    #[test]
    fn lines_match_by_name_or_by_uid() {
        let alice = Owner::user(Some("alice"), 1000);
        assert_eq!(
            first(T, &alice),
            Some(SubRange {
                start: 100000,
                count: 65536
            })
        );
        // a user whose entry is written as a uid
        assert_eq!(
            first(T, &Owner::user(Some("carol"), 1001)),
            Some(SubRange {
                start: 165536,
                count: 65536
            })
        );
        // names compare as strings; a uid matches numeric owners only, never a name
        assert_eq!(
            first(T, &Owner::name("1001")),
            Some(SubRange {
                start: 165536,
                count: 65536
            })
        );
        assert_eq!(first(T, &Owner::user(None, 1000)), None);
        // "0100" is the uid 100 written with a leading zero: still uid 100
        assert_eq!(
            first(T, &Owner::user(None, 100)),
            Some(SubRange {
                start: 500,
                count: 5
            })
        );
    }

    #[test]
    fn every_range_of_a_user_in_file_order_and_bad_lines_skipped() {
        let alice = Owner::user(Some("alice"), 1000);
        assert_eq!(
            ranges(T, &alice),
            vec![
                SubRange {
                    start: 100000,
                    count: 65536
                },
                SubRange {
                    start: 300000,
                    count: 10
                }
            ]
        );
        assert_eq!(ranges(T, &Owner::name("bob")), vec![], "a count of 0");
        assert_eq!(ranges(T, &Owner::name("carol")), vec![], "a comment");
        assert_eq!(ranges(T, &Owner::name("dave")), vec![], "past the last id");
        assert_eq!(ranges(T, &Owner::name("erin")), vec![], "not a number");
        assert_eq!(ranges("", &Owner::user(Some("root"), 0)), vec![]);
        assert_eq!(entries(T).len(), 4, "bob, carol, dave and erin skipped");
    }

    #[test]
    fn ranges_overlap_when_they_share_an_id() {
        let r = |start, count| SubRange { start, count };
        assert!(r(100000, 65536).overlaps(&r(165535, 1)));
        assert!(!r(100000, 65536).overlaps(&r(165536, 65536)));
        assert!(r(0, u32::MAX).overlaps(&r(4294967294, 1)));
        assert_eq!(r(100000, 65536).describe(), "100000-165535");
    }
}
