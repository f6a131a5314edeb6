//! rbuild: imports root-filesystem tarballs (file, directory or http(s) URL) into the rbox store
//! (the `store` crate: layout, locks, resolution, holds) and composes them into OCI images;
//! moves images in and out as OCI layouts and docker-archives (`oci`) and to and from
//! registries (`registry`).
//!
//! The binary is a thin CLI over this library. Nothing here is used by rrun, which depends on
//! the store crate only (no HTTP, TLS, decompression or tar in rrun).

pub mod checksum;
pub mod dirtar;
pub mod download;
pub mod extract;
pub mod fsck;
pub mod guard;
pub mod image;
pub mod import;
pub mod listing;
pub mod maint;
pub mod oci;
pub mod pending;
pub mod pipeline;
pub mod recipe;
pub mod registry;
mod sys;
pub mod tarsplit;
pub mod tree;
pub mod userns;
pub mod xattr;
