//! rbuild: imports root-filesystem tarballs (file, directory or http(s) URL) into a
//! content-addressed store of overlayfs lowerdirs and composes them into OCI images.
//!
//! The binary is a thin CLI over this library. What rrun uses:
//! - [`store`]: `Store::open`, `resolve_image` (with the layers' [`store::LayerMode`]), the
//!   store lock (`lock_shared`, the protocol is in the module docs), `containers_dir`;
//! - [`containers`]: the one reader of `state.json`'s `image` field (`image_of`, `using_image`);
//! - [`subid`]: /etc/subuid and /etc/subgid ranges (name or uid, as newuidmap reads them);
//! - [`DEFAULT_PATH`].

pub mod containers;
pub mod digest;
pub mod dirtar;
pub mod download;
pub mod extract;
pub mod guard;
pub mod image;
pub mod import;
pub mod listing;
pub mod lock;
pub mod maint;
pub mod pending;
pub mod pipeline;
pub mod store;
pub mod subid;
pub mod tree;
pub mod userns;
pub mod util;
pub mod xattr;

/// The `PATH=...` environment entry an image or container gets when its config sets no PATH
/// (Docker's default).
pub use image::DEFAULT_PATH;
