//! Images in and out of the store in the formats other tools read: OCI image layouts
//! (image-spec image-layout.md), docker-archive (`docker save`), and what the registry client
//! shares with them (manifests, indexes, platforms, blob checks). No kernel interface of its
//! own beyond files (see each module).
//!
//! - [`manifest`]: parsing manifests and indexes, picking a platform;
//! - [`source`]: where blobs come from (a layout folder, a tar archive) and their checks;
//! - [`load`]: an image (config bytes + layer blobs) into the store, shared with `pull`;
//! - [`import`]: what a path holds, loaded; [`layout`] and [`archive`]: reading an OCI
//!   layout / a docker-archive;
//! - [`stream`]: a stored layer's tar stream given back (and checked against its DiffID);
//! - [`export`] and [`save`]: writing an OCI layout / a docker-archive.

pub mod archive;
pub mod export;
pub mod import;
pub mod layout;
pub mod load;
pub mod manifest;
pub mod save;
pub mod source;
pub mod stream;

use std::io::{self, Read};
use std::path::PathBuf;

use crate::import::AddError;
use store::StoreError;

/// Media types (image-spec media-types.md; Docker's image manifest v2, schema 2).
pub mod media {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// What a registry is asked for, best first.
    pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";
}

/// Largest manifest, index or `index.json` read (containers/image's limit, 4 MiB).
pub const MAX_MANIFEST: u64 = 4 << 20;
/// Largest image config read (containers/image's limit, 4 MiB).
pub const MAX_CONFIG: u64 = 4 << 20;
/// The annotation naming an image in a layout's `index.json` (image-spec annotations.md).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("{0}")]
    Msg(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Add(#[from] AddError),
}

impl OciError {
    pub fn msg(m: impl Into<String>) -> OciError {
        OciError::Msg(m.into())
    }

    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> OciError {
        let path = path.into();
        move |source| OciError::Io { path, source }
    }
}

/// Reads all of `r` when it holds at most `max` bytes; `what` names it in the error.
pub fn read_limited(r: impl Read, max: u64, what: &str) -> Result<Vec<u8>, OciError> {
    let mut buf = Vec::new();
    r.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| OciError::msg(format!("reading {what}: {e}")))?;
    if buf.len() as u64 > max {
        return Err(OciError::msg(format!(
            "{what} is larger than {max} bytes: refused"
        )));
    }
    Ok(buf)
}

/// The hex of a `sha256:<64 hex>` digest, else one line naming `what` and the digest.
pub fn sha256_hex(digest: &str, what: &str) -> Result<String, OciError> {
    store::digest::Digest::parse_sha256(digest).ok_or_else(|| {
        OciError::msg(format!(
            "{what} has digest {digest:?}: only sha256:<64 hex> digests are supported"
        ))
    })
}

/// Checks that `bytes` are the blob `digest` (`sha256:<hex>`) of `size` bytes (when known).
pub fn check_blob(bytes: &[u8], digest: &str, size: Option<u64>) -> Result<(), OciError> {
    use sha2::Digest as _;
    let got = store::digest::hex(&sha2::Sha256::digest(bytes));
    if format!("sha256:{got}") != digest {
        return Err(OciError::msg(format!(
            "blob {digest} is corrupt: its bytes hash to sha256:{got}; nothing stored"
        )));
    }
    if let Some(s) = size.filter(|s| *s != bytes.len() as u64) {
        return Err(OciError::msg(format!(
            "blob {digest} has {} bytes, its descriptor says {s}; nothing stored",
            bytes.len()
        )));
    }
    Ok(())
}

/// A reader that must give exactly `want` bytes: more, or an end before, is an error naming
/// the blob (a descriptor's size is part of what is verified).
pub struct Exact<R> {
    inner: R,
    want: u64,
    got: u64,
    digest: String,
}

impl<R: Read> Exact<R> {
    pub fn new(inner: R, want: u64, digest: &str) -> Exact<R> {
        Exact {
            inner,
            want,
            got: 0,
            digest: digest.to_string(),
        }
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // one byte beyond the size is asked for, to see whether there is more
        let room = (self.want - self.got).saturating_add(1);
        let cap = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..cap])?;
        self.got += n as u64;
        if self.got > self.want {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "blob {} is longer than the {} bytes its descriptor says",
                    self.digest, self.want
                ),
            ));
        }
        if n == 0 && self.got < self.want {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "blob {} ends after {} of its {} bytes (truncated)",
                    self.digest, self.got, self.want
                ),
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_sizes_are_enforced() {
        let mut out = Vec::new();
        assert!(Exact::new(&b"abcd"[..], 4, "d")
            .read_to_end(&mut out)
            .is_ok());
        let e = Exact::new(&b"abcd"[..], 3, "d")
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(e.to_string().contains("longer"), "{e}");
        let e = Exact::new(&b"ab"[..], 3, "d")
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        assert!(read_limited(&b"12345"[..], 4, "x").is_err());
        assert_eq!(read_limited(&b"1234"[..], 4, "x").unwrap(), b"1234");
    }
}
