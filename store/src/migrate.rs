//! The store's format, and the one migration from the previous one. This module holds the only
//! code of the store that reads a file of another program (rrun's `state.json`), and reads it
//! once per store. Kernel interfaces: openat(2) O_NOFOLLOW|O_NONBLOCK and fstat(2) (a FIFO or
//! a symlink planted as state.json is skipped, never waited on or followed), getdents64(2),
//! flock(2) (the store lock, exclusive), rename(2).
//!
//! # Formats
//!
//! - **1**, the first release (up to commit f731b8b): no format marker and no `holds/`. rbuild
//!   learnt which images containers use by reading `containers/<id>/state.json`'s `"image"`
//!   field, a file of rrun's.
//! - **2** (this one): `format.json` says `{"format":2}`; which image is in use is recorded in
//!   `holds/` (see [`crate::holds`]).
//!
//! # Migration from format 1
//!
//! The first time a release that knows format 2 opens a store of format 1 for writing
//! ([`crate::Store::open`] or [`crate::Store::create`]), it takes the store lock exclusive, checks
//! again (another process may have migrated meanwhile), turns every container's state.json into
//! a hold of [`Holder::container`]`(folder name)` on its image, and then writes the marker,
//! durably. Under the lock no removal runs before every hold is in place, and each hold
//! appears whole (see files.rs); a migration cut short has no marker and is done again in full
//! by the next writer (a hold written twice is the same hold). Once the marker is there, no
//! state.json is ever read again: containers made by this release take their holds themselves.
//!
//! What is read of a state.json, and nothing else: `"image"` (`sha256:<64 lowercase hex>`,
//! else the folder holds no image), and for the containers removed on exit
//! (`"auto_remove": true`) their rrun's `"owner_pid"` and `"owner_start"`: such a hold lasts
//! while that rrun runs (it removes the container when it ends, knowing nothing of holds). A
//! kept container's hold lasts until `rrun rm`. Nothing read is used to build a path: the
//! holder is the folder's name, checked as a holder name.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::StoreError;
use crate::files::{read_store_file, read_store_file_at, write_atomic, Durability};
use crate::holds::{Holder, Lifetime};
use crate::layout::Store;
use crate::process::ProcessId;

/// The format this release writes and reads.
pub const FORMAT: u64 = 2;

/// The file rrun kept in each container's folder in format 1.
const LEGACY_STATE: &str = "state.json";

#[derive(Serialize, Deserialize)]
struct Marker {
    format: u64,
}

/// The format the store says it has; None without a marker (format 1). A marker that cannot
/// be read is taken as missing: migrating again is harmless (see the module docs).
pub fn format_of(store: &Store) -> Result<Option<u64>, StoreError> {
    let p = store.format_path();
    match read_store_file(&p) {
        Ok(b) => match serde_json::from_slice::<Marker>(&b) {
            Ok(m) => Ok(Some(m.format)),
            Err(e) => {
                tracing::warn!("{}: unreadable ({e}): migrating again", p.display());
                Ok(None)
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            tracing::warn!("{}: {e}: migrating again", p.display());
            Ok(None)
        }
        Err(e) => Err(StoreError::Io { path: p, source: e }),
    }
}

/// Refuses a store of a newer format; migrates one of an older format (see the module docs).
pub(crate) fn ensure_current(store: &Store) -> Result<(), StoreError> {
    let check = |f: Option<u64>| match f {
        Some(f) if f == FORMAT => Ok(true),
        Some(f) if f > FORMAT => Err(StoreError::NewerFormat {
            path: store.format_path(),
            found: f,
            known: FORMAT,
        }),
        _ => Ok(false),
    };
    if check(format_of(store)?)? {
        return Ok(());
    }
    let _lock = store.lock_exclusive()?;
    if check(format_of(store)?)? {
        return Ok(()); // another process migrated while this one waited
    }
    let n = holds_from_format_1(store)?;
    write_atomic(
        &store.tmp_dir(),
        &store.format_path(),
        format!("{{\"format\":{FORMAT}}}\n").as_bytes(),
        Durability::Synced,
    )?;
    if n > 0 {
        tracing::info!(
            "store {}: format {FORMAT}: {n} container(s) now hold their image",
            store.root().display()
        );
    }
    Ok(())
}

/// What is read of a format-1 state.json (see the module docs); every other field is
/// ignored, whatever it holds.
#[derive(Deserialize)]
struct LegacyState {
    #[serde(default)]
    image: Option<serde_json::Value>,
    #[serde(default)]
    auto_remove: Option<serde_json::Value>,
    #[serde(default)]
    owner_pid: Option<serde_json::Value>,
    #[serde(default)]
    owner_start: Option<serde_json::Value>,
}

/// The image a format-1 state.json names, and how long its container holds it.
fn read_legacy(state_json: &[u8]) -> Option<(String, Lifetime)> {
    let s: LegacyState = serde_json::from_slice(state_json).ok()?;
    let hex = Digest::parse_sha256(s.image?.as_str()?)?;
    let owner = || -> Option<ProcessId> {
        let pid = u32::try_from(s.owner_pid.as_ref()?.as_u64()?).ok()?;
        let start = s.owner_start.as_ref()?.as_u64()?;
        // the boot is this one's: state.json did not record it, and a reboot ended its rrun
        let boot = ProcessId::current().map(|p| p.boot).unwrap_or_default();
        (pid > 0).then_some(ProcessId { pid, start, boot })
    };
    let lifetime = match s.auto_remove.as_ref().and_then(|v| v.as_bool()) {
        Some(true) => match owner() {
            Some(p) => Lifetime::WhileProcessRuns(p),
            None => Lifetime::UntilReleased,
        },
        _ => Lifetime::UntilReleased,
    };
    Some((hex, lifetime))
}

/// Writes a hold for every container of a format-1 store whose state names a stored image;
/// returns how many. Folders without a readable, regular state.json hold nothing.
fn holds_from_format_1(store: &Store) -> Result<usize, StoreError> {
    let dir = store.containers_dir();
    let rd = match fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => {
            return Err(StoreError::Io {
                path: dir,
                source: e,
            })
        }
    };
    let dirfd = crate::files::open_dir_path(rustix::fs::CWD, &dir).map_err(StoreError::io(&dir))?;
    let mut n = 0;
    for e in rd {
        let e = e.map_err(StoreError::io(&dir))?;
        let name = e.file_name();
        let Some(holder) = name.to_str().and_then(|n| Holder::container(n).ok()) else {
            continue;
        };
        let Ok(cdir) = crate::files::open_dir_path(&dirfd, name.as_bytes()) else {
            continue; // not a directory, or a symlink: no container
        };
        let Ok(bytes) = read_store_file_at(std::os::fd::AsFd::as_fd(&cdir), LEGACY_STATE) else {
            continue;
        };
        let Some((hex, lifetime)) = read_legacy(&bytes) else {
            continue;
        };
        if !store.has_image(&hex) {
            continue;
        }
        let layers = store
            .image_config(&hex)
            .map(|c| Store::diff_ids(&c))
            .unwrap_or_default();
        store.hold_layers(&hex, &layers, &holder, lifetime)?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_image_and_the_owner_of_a_legacy_state_are_read() {
        let hex = "a".repeat(64);
        let id = format!("sha256:{hex}");
        let kept = format!(
            r#"{{"id":"x","image":"{id}","anything":{{"nested":[1,2]}},"pid":"not a number"}}"#
        );
        assert_eq!(
            read_legacy(kept.as_bytes()),
            Some((hex.clone(), Lifetime::UntilReleased))
        );
        let me = ProcessId::current().unwrap();
        let auto = format!(
            r#"{{"image":"{id}","auto_remove":true,"owner_pid":{},"owner_start":{}}}"#,
            me.pid, me.start
        );
        assert_eq!(
            read_legacy(auto.as_bytes()),
            Some((hex.clone(), Lifetime::WhileProcessRuns(me)))
        );
        let odd_owner = format!(r#"{{"image":"{id}","auto_remove":true,"owner_pid":-3}}"#);
        assert_eq!(
            read_legacy(odd_owner.as_bytes()),
            Some((hex, Lifetime::UntilReleased)),
            "an owner it cannot read: held until released"
        );
        assert_eq!(read_legacy(br#"{"image":"sha256:../../etc"}"#), None);
        assert_eq!(read_legacy(br#"{"image":42}"#), None);
        assert_eq!(read_legacy(br#"{"id":"x"}"#), None);
        assert_eq!(read_legacy(br#"[1,2,3]"#), None);
        assert_eq!(read_legacy(b"\xff\xfe not json"), None);
        assert_eq!(
            read_legacy(format!(r#"{{"image":"{}"}}"#, id.to_uppercase()).as_bytes()),
            None
        );
    }
}
