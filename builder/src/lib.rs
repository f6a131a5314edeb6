//! rbuild: imports root-filesystem tarballs (file, directory or http(s) URL) into a
//! content-addressed store of overlayfs lowerdirs and composes them into OCI images.
//!
//! The store API that rrun uses lives in [`store`]; the binary is a thin CLI over this library.

pub mod digest;
pub mod dirtar;
pub mod download;
pub mod extract;
pub mod guard;
pub mod image;
pub mod import;
pub mod lock;
pub mod maint;
pub mod pipeline;
pub mod store;
pub mod tree;
pub mod userns;
pub mod util;
