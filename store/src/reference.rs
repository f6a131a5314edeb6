//! The grammar of what users type to name things in the store: id prefixes (`sha256:<hex>` or
//! bare hex, at least 12 digits) and tags (`NAME[:TAG]`, Docker's reference grammar).
//! No kernel interface (pure functions over strings).

use crate::digest::is_hex;

/// The fewest hex digits an id prefix may have (as Docker's short ids).
pub const MIN_PREFIX: usize = 12;

/// `sha256:<hex>` or a bare hex string of 12..=64 digits (any case) -> the lowercase prefix.
pub fn hex_prefix(r: &str) -> Option<String> {
    let h = r.strip_prefix("sha256:").unwrap_or(r).to_ascii_lowercase();
    ((MIN_PREFIX..=64).contains(&h.len()) && is_hex(&h)).then_some(h)
}

/// True when `r` reads as an id prefix that is too short: 1 to 11 hex digits (any case), with
/// or without `sha256:`.
pub fn is_short_prefix(r: &str) -> bool {
    let h = r.strip_prefix("sha256:").unwrap_or(r).to_ascii_lowercase();
    (1..MIN_PREFIX).contains(&h.len()) && is_hex(&h)
}

/// NAME[:TAG] with `:latest` added when TAG is missing, as tags.json keys it. TAG is what
/// follows the last `:` unless a `/` comes after it (then the `:` was a registry port). No
/// validation: lookups find whatever tags.json holds.
pub fn tag_key(s: &str) -> String {
    match s.rfind(':') {
        Some(i) if !s[i + 1..].contains('/') => s.to_string(),
        _ => format!("{s}:latest"),
    }
}

/// Why a NAME[:TAG] is refused (the texts list exactly what the check allows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagProblem {
    EmptyName,
    NameTooLong,
    BadComponent(String),
    BadHost(String),
    BadTag(String),
    LooksLikeId,
    DigestName,
}

impl std::fmt::Display for TagProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TagProblem::EmptyName => write!(f, "the NAME is empty"),
            TagProblem::NameTooLong => write!(f, "the NAME is longer than {MAX_NAME} characters"),
            TagProblem::BadComponent(c) => write!(
                f,
                "NAME component {c:?} must be lowercase letters a-z and digits, with one . _ __ or a run of - between them (components are separated by /)"
            ),
            TagProblem::BadHost(h) => write!(
                f,
                "registry {h:?} must be letters, digits and - in dot-separated parts, with an optional :PORT"
            ),
            TagProblem::BadTag(t) => write!(
                f,
                "TAG {t:?} must be 1 to {MAX_TAG} letters, digits, _ . and -, not starting with . or -"
            ),
            TagProblem::LooksLikeId => write!(
                f,
                "a NAME of 12 to 64 hex digits would read as an image id prefix: add a letter beyond f, or a separator"
            ),
            TagProblem::DigestName => write!(
                f,
                "the NAME sha256 would read as an image id (sha256:<hex>)"
            ),
        }
    }
}

/// Longest NAME (Docker's limit) and TAG.
const MAX_NAME: usize = 255;
const MAX_TAG: usize = 128;

/// `[a-z0-9]+` runs separated by one `.`, `_`, `__` or a run of `-` (Docker's path component).
fn path_component_ok(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// A registry host: dot-separated parts of letters, digits and inner `-`, then `:PORT`.
fn host_ok(h: &str) -> bool {
    let (host, port) = match h.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (h, None),
    };
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.bytes().all(|x| x.is_ascii_alphanumeric() || x == b'-')
            && !p.starts_with('-')
            && !p.ends_with('-')
    };
    host.split('.').all(part_ok)
        && port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|x| x.is_ascii_digit()))
}

/// Validates NAME[:TAG] (Docker's reference grammar: see [`TagProblem`]) and adds `:latest`
/// when TAG is missing. NAME may start with a registry `HOST[:PORT]/` (a first component with
/// a `.` or a `:`, or `localhost`). A NAME of 12 to 64 hex digits is refused: it would read
/// as an image id prefix.
pub fn validate_tag(s: &str) -> Result<String, TagProblem> {
    let (name, tag) = match s.rfind(':') {
        Some(i) if !s[i + 1..].contains('/') => (&s[..i], &s[i + 1..]),
        _ => (s, "latest"),
    };
    let tag_ok = (1..=MAX_TAG).contains(&tag.len())
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        && !tag.starts_with(['.', '-']);
    if name.is_empty() {
        return Err(TagProblem::EmptyName);
    }
    if name.len() > MAX_NAME {
        return Err(TagProblem::NameTooLong);
    }
    let mut comps: Vec<&str> = name.split('/').collect();
    if comps.len() > 1 && (comps[0].contains(['.', ':']) || comps[0] == "localhost") {
        let host = comps.remove(0);
        if !host_ok(host) {
            return Err(TagProblem::BadHost(host.to_string()));
        }
    }
    if let Some(c) = comps.iter().find(|c| !path_component_ok(c)) {
        return Err(TagProblem::BadComponent(c.to_string()));
    }
    if !tag_ok {
        return Err(TagProblem::BadTag(tag.to_string()));
    }
    if (MIN_PREFIX..=64).contains(&name.len()) && is_hex(name) {
        return Err(TagProblem::LooksLikeId);
    }
    if name == "sha256" {
        return Err(TagProblem::DigestName);
    }
    Ok(format!("{name}:{tag}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_default_to_latest_and_keep_registry_ports() {
        assert_eq!(validate_tag("alpine").unwrap(), "alpine:latest");
        assert_eq!(validate_tag("alpine:3.15").unwrap(), "alpine:3.15");
        assert_eq!(
            validate_tag("localhost:5000/a/b").unwrap(),
            "localhost:5000/a/b:latest"
        );
        assert_eq!(
            validate_tag("localhost:5000/a:v1").unwrap(),
            "localhost:5000/a:v1"
        );
        assert!(validate_tag("").is_err());
        assert!(validate_tag("a:").is_err());
        assert!(validate_tag("a b").is_err());
        assert!(validate_tag("sha256:abc").is_err());
    }

    #[test]
    fn tags_follow_the_reference_grammar() {
        for ok in [
            "a",
            "a0",
            "my-app_x/sub__part.y/a---b:V1.0_rc-2",
            "my.app",
            "registry.example:5000/team/app:1",
            "localhost/app",
            "Registry.Example/app", // a host may have capitals, as in Docker
            "abcdef01234g",         // not hex: a name
            "abcdef01234",          // 11 hex digits: shorter than an id prefix
            "abc/abcdef012345",     // an id-like component below a name is no id
        ] {
            assert!(validate_tag(ok).is_ok(), "{ok}");
        }
        let why = |s: &str| match validate_tag(s) {
            Err(why) => why,
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(why(""), TagProblem::EmptyName);
        assert_eq!(why(":v1"), TagProblem::EmptyName);
        assert_eq!(why(&"a".repeat(256)), TagProblem::NameTooLong);
        for bad in [
            "UPPER", "a:b:c", "a/../b", ".a", "a.", "a..b", "a___b", "-a", "a b", "a/", "/a",
            "a//b", "a.-b", "é",
        ] {
            assert!(
                matches!(why(bad), TagProblem::BadComponent(_)),
                "{bad}: {:?}",
                why(bad)
            );
        }
        assert!(matches!(why("bad_host.x:99/a"), TagProblem::BadHost(_)));
        assert!(
            matches!(why("../x"), TagProblem::BadHost(_)),
            "a first part with . is a host"
        );
        assert!(matches!(why("h.x:port/a"), TagProblem::BadHost(_)));
        for bad in ["a:", "a:.x", "a:-x", "a:x!"] {
            assert!(matches!(why(bad), TagProblem::BadTag(_)), "{bad}");
        }
        assert!(matches!(
            why(&format!("a:{}", "t".repeat(129))),
            TagProblem::BadTag(_)
        ));
        assert!(validate_tag(&format!("a:{}", "t".repeat(128))).is_ok());
        for id_like in ["0123456789ab", "2a7a132d0b86:v1", &"f".repeat(64)] {
            assert_eq!(why(id_like), TagProblem::LooksLikeId, "{id_like}");
        }
        assert_eq!(why("sha256:abc"), TagProblem::DigestName);
        // the message lists what the check allows
        let msg = why("UPPER").to_string();
        assert!(
            msg.contains("lowercase letters a-z and digits, with one . _ __ or a run of -"),
            "{msg}"
        );
    }

    #[test]
    fn tag_keys_add_latest_unless_a_tag_is_given() {
        assert_eq!(tag_key("a"), "a:latest");
        assert_eq!(tag_key("a:b:c"), "a:b:c");
        assert_eq!(tag_key("h:5000/a"), "h:5000/a:latest");
        assert_eq!(tag_key("UPPER"), "UPPER:latest");
    }

    #[test]
    fn hex_prefixes_need_twelve_digits() {
        assert_eq!(
            hex_prefix("sha256:0123456789ab").as_deref(),
            Some("0123456789ab")
        );
        assert_eq!(hex_prefix("0123456789AB").as_deref(), Some("0123456789ab"));
        assert_eq!(hex_prefix("0123456789a"), None);
        assert_eq!(hex_prefix("alpine"), None);
        assert!(is_short_prefix("7b3eda33"));
        assert!(is_short_prefix("sha256:7B3E"));
        assert!(!is_short_prefix("0123456789ab"));
        assert!(!is_short_prefix("alpine"));
        assert!(!is_short_prefix(""));
        assert!(!is_short_prefix("sha256:"));
    }
}
