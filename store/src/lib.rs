//! The rbox store: a content-addressed store of overlayfs lowerdirs and the OCI images made of
//! them, shared by rbuild (which fills it) and rrun (which runs from it). This crate owns the
//! store's layout, its locks, the resolution of an image to its ordered lowerdirs and config,
//! and the holds that say which image is in use. It knows nothing of HTTP, decompression or
//! tar (rbuild's), nor of containers (rrun's), but for the one migration of the first format.
//!
//! # Layout (format 2)
//!
//! ```text
//! <root>/                    mode 0700 (see open.rs)
//!   format.json              {"format":2}                          migrate.rs
//!   layers/<DiffID hex>/     rootfs/ (a lowerdir) and layer.json   layers.rs
//!   images/<ImageID hex>/    config.json, the OCI image config     images.rs
//!   tags.json, tags.lock     NAME:TAG -> sha256:<ImageID>           tags.rs
//!   holds/<image>.<holder>   who uses which image                   holds.rs
//!   blobs/                   received-blob digest -> DiffID (rbuild's import index)
//!   containers/              rrun's records (never read here, but by migrate.rs)
//!   tmp/                     staging: `<kind>-<pid>-<nonce>`        layout.rs
//!   store.lock               the store lock (below)
//! ```
//!
//! A layer's id is its DiffID, an image's id the sha256 of its canonical config: the same inputs
//! give the same ids in any store. Everything is written to `tmp/` and renamed into place, so
//! a crash never leaves half an entry under its final name.
//!
//! # Store lock: the protocol between rbuild and rrun
//!
//! `<root>/store.lock` is flock(2)ed:
//! - **shared** by rrun from before it resolves an image ([`Store::resolve_image`]) until its
//!   hold on that image is written ([`Store::hold`]); by `rbuild image create` while it checks
//!   its layers and writes the image ([`Store::lock_shared`]);
//! - **exclusive** by `rbuild image rm`, `layer rm` and `gc` around their check-then-remove,
//!   and by a migration ([`Store::lock_exclusive`]; they give up with one line after
//!   [`LOCK_WAIT`]).
//!
//! So a removal either finishes before rrun resolves (rrun then reports the image missing), or
//! starts after the hold is written (the removal then refuses); it never runs between rrun's
//! resolve and its mounts. Other commands (`layer add`, `image tag`, `fsck`, listings) take no
//! store lock: they never remove a layer or an image (`tags.json` has its own lock).
//!
//! # Holds
//!
//! A client records that a holder uses an image, and releases the hold when done (see
//! [`holds`]): rrun holds a container's image, bound to its own process until the container's
//! record is saved, then until `rrun rm`. `image rm` refuses a held image, `layer rm` and `gc`
//! keep the layers of held images; a hold whose process is gone is dropped by the store.
//!
//! # Migration
//!
//! A store of the first format (no `format.json`) is migrated once, atomically, by the first
//! writer of this release: its containers' states become holds (see [`migrate`]).

pub mod digest;
pub mod error;
pub mod files;
pub mod holds;
pub mod images;
pub mod layers;
pub mod layout;
pub mod lock;
pub mod migrate;
mod open;
pub mod process;
pub mod reference;
pub mod remove;
pub mod repair;
pub mod resolve;
pub mod subid;
pub mod tags;

#[cfg(test)]
mod tests;

pub use error::StoreError;
pub use holds::{Hold, Holder, Lifetime};
pub use images::DEFAULT_PATH;
pub use layers::{IdMap, LayerMeta, LayerMode};
pub use layout::{default_root, Store};
pub use lock::{StoreLock, LOCK_WAIT};
pub use remove::remove_tree;
pub use resolve::ResolvedImage;
pub use tags::normalize_tag;
