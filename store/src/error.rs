//! The one error type of store operations. Messages are lowercase, name the object and, where
//! one exists, the fix. No kernel interface.

use std::io;
use std::path::PathBuf;

use crate::reference::TagProblem;

/// Errors of store operations.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("no store at {}: nothing was ever added there (`rbuild layer add` makes one; --root or RBOX_ROOT chooses the store)", .0.display())]
    NoStore(PathBuf),
    #[error("{path}: the store has format {found}, newer than this release knows ({known}): use the rbox release that wrote it")]
    NewerFormat {
        path: PathBuf,
        found: u64,
        known: u64,
    },
    #[error("image {0:?} not found (see `rbuild image ls`)")]
    ImageNotFound(String),
    #[error("image {0:?} not found: no tag has that name, and an id prefix needs at least 12 hex digits (see `rbuild image ls`)")]
    ShortPrefix(String),
    #[error("image prefix {0:?} is ambiguous: give more digits")]
    AmbiguousImage(String),
    #[error("layer {0:?} not found (see `rbuild layer ls`)")]
    LayerNotFound(String),
    #[error("layer prefix {0:?} is ambiguous: give more digits")]
    AmbiguousLayer(String),
    #[error("{0:?} is not a valid reference: use sha256:<64 hex>, a hex prefix of at least 12 digits, or NAME[:TAG]")]
    InvalidReference(String),
    #[error("{tag:?} is not a valid tag: {why}")]
    InvalidTag { tag: String, why: TagProblem },
    #[error("{0:?} is not a valid holder name: use 1 to 128 letters, digits, _ . and -, starting with a letter or digit")]
    InvalidHolder(String),
    #[error("image {image}: its config.json does not match its id (it hashes to sha256:{got}): the store was modified; see `rbuild fsck`, then remove the image and create it again")]
    ConfigMismatch { image: String, got: String },
    #[error("{path}: corrupt store entry: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path}: damaged ({reason}): `rbuild fsck --repair` rebuilds it from the images it can verify")]
    TagsDamaged { path: PathBuf, reason: String },
    #[error("image {image} is used by {by}: {fix}")]
    ImageInUse {
        image: String,
        by: String,
        fix: String,
    },
    #[error("layer {layer} is used by image {image}: remove the image first (`rbuild image rm`)")]
    LayerInUse { layer: String, image: String },
    #[error("layer {layer} is used by {by} (through image {image}): {fix}")]
    LayerHeld {
        layer: String,
        image: String,
        by: String,
        fix: String,
    },
    #[error("the store is busy: {path} stayed locked for {secs} s by another rbuild or rrun; try again when it has finished")]
    Busy { path: PathBuf, secs: u64 },
    #[error("{image} mixes layers extracted as root ({root}) and without privileges ({rootless}): overlayfs reads the whiteouts of one kind only; use layers added in one mode (all as root, or all rootless)")]
    MixedLayerModes {
        image: String,
        root: String,
        rootless: String,
    },
}

impl StoreError {
    /// Wraps an I/O error with the path it concerns: `.map_err(StoreError::io(&path))`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { path, source }
    }
}
