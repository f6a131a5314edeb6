//! Why an extraction stops, with the member it concerns, and the tar crate's errors made
//! short and printable. No kernel interface.

use std::io;

use rustix::io::Errno;

/// Why an extraction stopped. Every variant names the member; the store is left untouched.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("member {0} escapes the layer root; refused")]
    Escape(String),
    #[error("member {0} is written through a symlink that leaves the layer root; refused")]
    SymlinkEscape(String),
    #[error("member {0}: too many levels of symbolic links on its path (a symlink loop); refused")]
    SymlinkLoop(String),
    #[error("hardlink {member} -> {target} leaves the layer root; refused")]
    HardlinkEscape { member: String, target: String },
    #[error("hardlink {member} -> {target}: the target is not in the layer; refused")]
    HardlinkMissing { member: String, target: String },
    #[error("hardlink {member} -> {target}: the target is a directory; refused")]
    HardlinkToDir { member: String, target: String },
    #[error("member {0}: a parent is not a directory (or is a dangling symlink); refused")]
    NotADirectory(String),
    #[error("member {0}: {1}; refused")]
    Invalid(String, &'static str),
    #[error("member {member} has unsupported type {kind:?}; refused")]
    Unsupported { member: String, kind: char },
    #[error("not a valid tar archive: {0}")]
    Tar(String),
    #[error("the tar archive is truncated (it ends without its end-of-archive marker)")]
    Truncated,
    #[error("member {0}: the archive ends inside its data (truncated)")]
    TruncatedMember(String),
    #[error("the input is empty")]
    Empty,
    #[error("member {member}: a sparse file of {} GiB would take the layer's holes past the limit of {} GiB; refused", gib(*size), gib(*limit))]
    SparseLimit {
        member: String,
        size: u64,
        limit: u64,
    },
    #[error("member {member}: {op}: {source}")]
    Io {
        member: String,
        op: &'static str,
        source: io::Error,
    },
}

/// Bytes as GiB with one decimal, for messages.
fn gib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1u64 << 30) as f64)
}

/// Printable form of a member name (non-UTF-8 bytes escaped).
pub fn show(name: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(name))
}

pub(super) fn io_err<'a>(
    member: &'a [u8],
    op: &'static str,
) -> impl FnOnce(Errno) -> ExtractError + 'a {
    move |e| ExtractError::Io {
        member: show(member),
        op,
        source: e.into(),
    }
}

/// A tar-crate message made printable and short (it may quote raw header bytes).
pub(super) fn sanitize(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| {
            if c.is_control() || c == '\u{fffd}' {
                '?'
            } else {
                c
            }
        })
        .collect();
    let s = if s.contains("cksum") || s.contains("checksum") || s.contains("numeric field") {
        "a header is not a tar header (bad checksum or numeric field)".to_string()
    } else if s.contains("failed to read entire block") {
        "too short for a tar header".to_string()
    } else {
        s
    };
    s.chars().take(160).collect()
}

pub(super) fn tar_error(e: io::Error) -> ExtractError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => ExtractError::Truncated,
        _ => {
            let s = e.to_string();
            if s.contains("failed to read entire block") || s.contains("unexpected EOF") {
                ExtractError::Truncated
            } else {
                ExtractError::Tar(sanitize(&s))
            }
        }
    }
}
