//! Tags: `tags.json`, one JSON object `NAME:TAG` -> `sha256:<ImageID hex>`, replaced atomically
//! under its own lock (`tags.lock`) by each writer. Kernel interfaces: flock(2), rename(2).
//!
//! A damaged tags.json (not JSON, not an object of strings, not a regular file, too big) is
//! reported as [`StoreError::TagsDamaged`] to whoever needs a tag; what does not need one (an
//! image named by its id, layers) goes on without it. `rbuild fsck --repair` rebuilds it
//! ([`crate::Store::repair_tags`]).

use std::collections::BTreeMap;
use std::io;

use crate::digest::Digest;
use crate::error::StoreError;
use crate::files::{write_atomic, Durability};
use crate::layout::Store;
use crate::lock::FileLock;
use crate::reference::{tag_key, validate_tag};

/// Validates NAME[:TAG] (Docker's reference grammar, see [`crate::reference::validate_tag`])
/// and adds `:latest` when TAG is missing.
pub fn normalize_tag(s: &str) -> Result<String, StoreError> {
    validate_tag(s).map_err(|why| StoreError::InvalidTag {
        tag: s.to_string(),
        why,
    })
}

impl Store {
    /// The tags file: `NAME:TAG` -> `sha256:<hex>`; missing or empty is no tags.
    pub fn tags(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let p = self.tags_path();
        let damaged = |reason: String| StoreError::TagsDamaged {
            path: p.clone(),
            reason,
        };
        match crate::files::read_store_file(&p) {
            Ok(b) if b.is_empty() => Ok(BTreeMap::new()),
            Ok(b) => serde_json::from_slice(&b).map_err(|e| damaged(e.to_string())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => Err(damaged(e.to_string())),
            Err(e) => Err(StoreError::Io { path: p, source: e }),
        }
    }

    /// Changes tags.json under an exclusive lock and replaces it atomically.
    pub fn update_tags<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, String>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _lock = FileLock::exclusive(&self.tags_lock_path())?;
        let mut tags = self.tags()?;
        let before = tags.clone();
        let out = f(&mut tags)?;
        if tags != before {
            self.write_tags(&tags)?;
        }
        Ok(out)
    }

    /// Writes the whole tags file (durably); the caller holds the tags lock.
    pub(crate) fn write_tags(&self, tags: &BTreeMap<String, String>) -> Result<(), StoreError> {
        let mut bytes = serde_json::to_vec_pretty(tags).map_err(|e| StoreError::Corrupt {
            path: self.tags_path(),
            reason: e.to_string(),
        })?;
        bytes.push(b'\n');
        write_atomic(
            &self.tmp_dir(),
            &self.tags_path(),
            &bytes,
            Durability::Synced,
        )
    }

    /// Points `tag` (NAME[:TAG], TAG defaults to latest) at the image `hex`.
    pub fn set_tag(&self, tag: &str, hex: &str) -> Result<String, StoreError> {
        let tag = normalize_tag(tag)?;
        self.update_tags(|t| {
            t.insert(tag.clone(), format!("sha256:{hex}"));
            Ok(())
        })?;
        Ok(tag)
    }

    /// Tags that point at the image `hex`, sorted.
    pub fn tags_of(&self, hex: &str) -> Result<Vec<String>, StoreError> {
        let want = format!("sha256:{hex}");
        Ok(self
            .tags()?
            .into_iter()
            .filter(|(_, v)| *v == want)
            .map(|(k, _)| k)
            .collect())
    }

    /// The tag `reference` names, as stored (NAME[:TAG], `:latest` added when TAG is missing;
    /// looked up as written, not validated, so an old odd tag is still found), and the hex id of
    /// the image it points at (which may be missing); None when no such tag exists.
    pub fn lookup_tag(&self, reference: &str) -> Result<Option<(String, String)>, StoreError> {
        let key = tag_key(reference);
        let tags = self.tags()?;
        let Some(id) = tags.get(&key) else {
            return Ok(None);
        };
        let hex = Digest::parse_sha256(id).ok_or_else(|| StoreError::Corrupt {
            path: self.tags_path(),
            reason: format!("tag {key} points at {id:?}"),
        })?;
        Ok(Some((key, hex)))
    }
}

/// What can be read of a damaged tags.json: its `"NAME:TAG": "sha256:..."` pairs, one per line
/// as rbuild writes it (pretty JSON), each line parsed on its own; and the lines that could
/// not be read (1-based numbers). A file that parses whole gives all its pairs.
pub(crate) fn salvage(bytes: &[u8]) -> (Vec<(String, String)>, Vec<usize>) {
    if let Ok(m) = serde_json::from_slice::<BTreeMap<String, String>>(bytes) {
        return (m.into_iter().collect(), Vec::new());
    }
    let mut pairs = Vec::new();
    let mut unread = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let t = String::from_utf8_lossy(line);
        let t = t.trim().trim_end_matches(',');
        if matches!(t, "" | "{" | "}" | "{}") {
            continue;
        }
        match serde_json::from_str::<BTreeMap<String, String>>(&format!("{{{t}}}")) {
            Ok(m) if m.len() == 1 => pairs.extend(m),
            _ => unread.push(i + 1),
        }
    }
    (pairs, unread)
}

#[cfg(test)]
mod tests {
    use super::salvage;

    #[test]
    fn salvage_keeps_the_lines_that_parse() {
        let whole = br#"{"a:1": "sha256:x"}"#;
        assert_eq!(
            salvage(whole),
            (vec![("a:1".into(), "sha256:x".into())], vec![])
        );
        let cut = b"{\n  \"a:1\": \"sha256:x\",\n  \"b:2\": \"sha2\xff\n  \"c:3\": \"sha256:z\"\n";
        let (pairs, unread) = salvage(cut);
        assert_eq!(
            pairs,
            vec![
                ("a:1".to_string(), "sha256:x".to_string()),
                ("c:3".to_string(), "sha256:z".to_string())
            ]
        );
        assert_eq!(unread, vec![3]);
        assert_eq!(salvage(b"\0\0\0"), (vec![], vec![1]));
    }
}
