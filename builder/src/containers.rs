//! What the store knows of rrun's containers: which image each one uses. This is the only code
//! in rbuild (and the one rrun reuses) that reads `containers/<id>/state.json`; rrun owns that
//! format, so only its `"image"` field is read, anything else in the file is tolerated, and
//! nothing read from it is ever used to build a path. Kernel interfaces: openat(2) with
//! O_NOFOLLOW|O_NONBLOCK and fstat(2) (a FIFO or a symlink planted as state.json is skipped,
//! never waited on or followed), getdents64(2).

use std::fs;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags};

use crate::digest::is_hex;
use crate::store::StoreError;

/// The file rrun keeps in each container's folder.
pub const STATE_FILE: &str = "state.json";

/// A state file larger than this is not rrun's (its states are a few KiB): skipped unread.
const MAX_STATE: u64 = 1 << 20;

/// The image a container's state.json names: its `"image"` field when that is
/// `sha256:<64 lowercase hex>`, else None (missing, another type, malformed, not JSON at all).
/// Every other field is ignored, whatever it holds. rrun can use it to validate what it reads.
pub fn image_of(state_json: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Partial {
        #[serde(default)]
        image: Option<serde_json::Value>,
    }
    let p: Partial = serde_json::from_slice(state_json).ok()?;
    let s = p.image?.as_str()?.to_string();
    let hex = s.strip_prefix("sha256:")?;
    (hex.len() == 64 && is_hex(hex)).then_some(s)
}

/// Containers (their folder names, sorted) in `containers_dir` whose state.json names `image`
/// (`sha256:<hex>`). Folders without a readable regular state.json are not counted; a missing
/// `containers_dir` has none. Take the store lock ([`crate::store::Store::lock_exclusive`])
/// around this check and the removal it guards.
pub fn using_image(containers_dir: &Path, image: &str) -> Result<Vec<String>, StoreError> {
    let rd = match fs::read_dir(containers_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(StoreError::Io {
                path: containers_dir.to_path_buf(),
                source: e,
            })
        }
    };
    let dir = rustix::fs::open(
        containers_dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| StoreError::Io {
        path: containers_dir.to_path_buf(),
        source: e.into(),
    })?;
    let mut users = Vec::new();
    for e in rd {
        let e = e.map_err(StoreError::io(containers_dir))?;
        if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let name = e.file_name();
        let bytes = match read_state(
            &dir,
            std::os::unix::ffi::OsStrExt::as_bytes(name.as_os_str()),
        ) {
            Some(b) => b,
            None => continue,
        };
        if image_of(&bytes).as_deref() == Some(image) {
            users.push(printable(&name.to_string_lossy()));
        }
    }
    users.sort();
    Ok(users)
}

/// `<dir>/<name>/state.json` if `name` is a directory (not a symlink) holding a regular
/// state.json of sane size; None otherwise (or on any error: a half-made folder is no user).
fn read_state(dir: &OwnedFd, name: &[u8]) -> Option<Vec<u8>> {
    let flags = OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let cdir = rustix::fs::openat(
        dir,
        name,
        flags | OFlags::PATH | OFlags::DIRECTORY,
        Mode::empty(),
    )
    .ok()?;
    let fd = rustix::fs::openat(
        &cdir,
        STATE_FILE,
        flags | OFlags::RDONLY | OFlags::NONBLOCK,
        Mode::empty(),
    )
    .ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile || st.st_size as u64 > MAX_STATE
    {
        return None;
    }
    let mut bytes = Vec::new();
    fs::File::from(fd)
        .take(MAX_STATE)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(bytes)
}

/// A folder name fit for a one-line message (control characters escaped).
fn printable(s: &str) -> String {
    if s.chars().any(char::is_control) {
        format!("{s:?}")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::image_of;

    #[test]
    fn only_a_well_formed_image_field_is_read() {
        let id = format!("sha256:{}", "a".repeat(64));
        let ok = format!(
            r#"{{"id":"x","image":"{id}","anything":{{"nested":[1,2]}},"pid":"not a number"}}"#
        );
        assert_eq!(image_of(ok.as_bytes()), Some(id.clone()));
        assert_eq!(image_of(br#"{"image":"sha256:../../etc"}"#), None);
        assert_eq!(image_of(br#"{"image":42}"#), None);
        assert_eq!(image_of(br#"{"id":"x"}"#), None);
        assert_eq!(image_of(br#"[1,2,3]"#), None);
        assert_eq!(image_of(b"\xff\xfe not json"), None);
        assert_eq!(
            image_of(format!(r#"{{"image":"{}"}}"#, id.to_uppercase()).as_bytes()),
            None
        );
    }
}
