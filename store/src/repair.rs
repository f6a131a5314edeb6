//! Rebuilding tags.json from what can be verified (`rbuild fsck --repair`): every tag that can
//! still be read and points at a stored image whose config hashes to its id is kept; every other
//! one is dropped and reported. Kernel interfaces: flock(2) (the tags lock), rename(2).

use std::collections::BTreeMap;
use std::io;

use crate::digest::Digest;
use crate::error::StoreError;
use crate::layout::Store;
use crate::lock::FileLock;

/// What [`Store::repair_tags`] did.
#[derive(Debug, Default)]
pub struct TagsRepair {
    /// Tags kept.
    pub kept: usize,
    /// What was dropped, one line each (`tag NAME:TAG: why`, `line N: unreadable`).
    pub dropped: Vec<String>,
    /// tags.json was written anew.
    pub rewritten: bool,
}

/// The longest tag name kept (a name longer than anything rbuild ever wrote is not a tag).
const MAX_KEY: usize = 512;

impl Store {
    /// Rebuilds tags.json under its lock from the entries that can be verified (see the module
    /// docs). A healthy file in which every tag points at a verified image is left as it is.
    pub fn repair_tags(&self) -> Result<TagsRepair, StoreError> {
        let _lock = FileLock::exclusive(&self.tags_lock_path())?;
        let p = self.tags_path();
        let mut r = TagsRepair::default();
        let (pairs, unread) = match crate::files::read_store_file(&p) {
            Ok(b) => crate::tags::salvage(&b),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(r),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                r.dropped
                    .push(format!("tags.json: {e}: nothing could be read"));
                (Vec::new(), Vec::new())
            }
            Err(e) => return Err(StoreError::Io { path: p, source: e }),
        };
        for n in unread {
            r.dropped.push(format!("line {n} of tags.json: unreadable"));
        }
        let mut tags = BTreeMap::new();
        for (key, target) in pairs {
            match self.check_tag(&key, &target) {
                Ok(()) => {
                    tags.insert(key, target);
                }
                Err(why) => r.dropped.push(format!("tag {key:?}: {why}")),
            }
        }
        r.kept = tags.len();
        if !r.dropped.is_empty() {
            self.write_tags(&tags)?;
            r.rewritten = true;
        }
        Ok(r)
    }

    /// Why the tag `key` -> `target` cannot be kept, if it cannot.
    fn check_tag(&self, key: &str, target: &str) -> Result<(), String> {
        if key.is_empty() || key.len() > MAX_KEY || key.chars().any(char::is_control) {
            return Err("not a tag name".into());
        }
        let Some(hex) = Digest::parse_sha256(target) else {
            return Err(format!("points at {target:?}, not an image id"));
        };
        if !self.has_image(&hex) {
            return Err(format!("points at missing image {target}"));
        }
        self.verified_config_bytes(&hex)
            .map(drop)
            .map_err(|e| format!("points at image {target}, which cannot be verified: {e}"))
    }
}
