//! Layers: `layers/<DiffID hex>/rootfs` (an overlayfs lowerdir, extracted once, read-only,
//! shared) and `layers/<hex>/layer.json` (what rbuild recorded when it extracted it).
//! Kernel interfaces: plain files (see files.rs for how they are read).

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::layout::Store;
use crate::reference::hex_prefix;

/// What `layers/<hex>/layer.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LayerMeta {
    pub diff_id: String,
    /// Bytes of the uncompressed tar stream.
    pub size: u64,
    pub source: String,
    /// sha256 of the bytes as received (compressed or not).
    pub blob_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob_sha512: Option<String>,
    /// `gzip`, `zstd`, `tar` or `directory`.
    #[serde(default)]
    pub compression: String,
    /// sha256 of the canonical listing of the extracted tree (rbuild's `tree.rs`); `fsck`
    /// recomputes it.
    pub tree_digest: String,
    /// Extracted without privileges: device nodes skipped, `user.overlay.*` xattrs; owners
    /// collapsed to the user unless `id_map` is set.
    #[serde(default)]
    pub rootless: bool,
    /// Extracted in a user namespace with subordinate ids: its maps (`inside:outside:count`,
    /// comma separated). A runtime maps the same ranges to show the image's owners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_map: Option<IdMap>,
    /// `sha256:` of `tar-split.zst` beside `rootfs/`: the record that gives the layer's exact
    /// tar stream back for export (rbuild's `tarsplit.rs`). Absent for layers imported before
    /// rbuild kept it, and for streams that cannot be given back (see `tar_split_lost`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tar_split: Option<String>,
    /// Why this layer's tar stream cannot be given back (a member replaced by a later one of
    /// the same name leaves no copy of the first one's bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tar_split_lost: Option<String>,
}

/// uid and gid maps of a user-namespace extraction, as in /proc/self/uid_map.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IdMap {
    pub uid: String,
    pub gid: String,
}

/// How a layer was extracted, which decides the overlayfs metadata it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerMode {
    /// As real root: owners kept, device nodes, whiteouts as 0/0 character devices and
    /// `trusted.overlay.opaque`. Needs an overlay mounted by real root (no `userxattr`).
    Root,
    /// Without privileges (`layer.json` `"rootless": true`, with or without subordinate ids):
    /// `user.overlay.*` whiteouts and opaque markers. Needs an overlay with `userxattr` (the
    /// one a user namespace mounts); a root overlay would ignore them and deleted files would
    /// reappear.
    Rootless,
}

impl LayerMode {
    pub fn of(meta: &LayerMeta) -> LayerMode {
        if meta.rootless {
            LayerMode::Rootless
        } else {
            LayerMode::Root
        }
    }
}

impl Store {
    /// Hex DiffIDs of the stored layers, sorted.
    pub fn layer_ids(&self) -> Result<Vec<String>, StoreError> {
        Self::list_ids(&self.layers_dir())
    }

    /// `<root>/layers/<hex>/tar-split.zst` (see [`LayerMeta::tar_split`]).
    pub fn tar_split_path(&self, hex: &str) -> std::path::PathBuf {
        self.layer_dir(hex).join("tar-split.zst")
    }

    pub fn has_layer(&self, hex: &str) -> bool {
        self.layer_dir(hex).join("layer.json").is_file()
    }

    pub fn layer_meta(&self, hex: &str) -> Result<LayerMeta, StoreError> {
        let p = self.layer_dir(hex).join("layer.json");
        let bytes = crate::files::read_store_file(&p).map_err(StoreError::io(&p))?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            path: p,
            reason: e.to_string(),
        })
    }

    /// The one mode all `layers` (hex DiffIDs) were extracted in; `image` names the image in
    /// the error when they differ (`image sha256:...`, `the new image`). No layers: root.
    pub fn common_mode(&self, image: &str, layers: &[String]) -> Result<LayerMode, StoreError> {
        let (mut root, mut rootless) = (None, None);
        for l in layers {
            let slot = match LayerMode::of(&self.layer_meta(l)?) {
                LayerMode::Root => &mut root,
                LayerMode::Rootless => &mut rootless,
            };
            slot.get_or_insert_with(|| format!("sha256:{l}"));
        }
        match (root, rootless) {
            (Some(root), Some(rootless)) => Err(StoreError::MixedLayerModes {
                image: image.to_string(),
                root,
                rootless,
            }),
            (None, Some(_)) => Ok(LayerMode::Rootless),
            _ => Ok(LayerMode::Root),
        }
    }

    /// Resolves a layer reference (`sha256:<64hex>` or a unique hex prefix of >= 12 digits).
    pub fn resolve_layer_hex(&self, reference: &str) -> Result<String, StoreError> {
        let r = reference.trim();
        let prefix = hex_prefix(r).ok_or_else(|| StoreError::InvalidReference(r.to_string()))?;
        let ids = self.layer_ids()?;
        let hits: Vec<&String> = ids.iter().filter(|id| id.starts_with(&prefix)).collect();
        match hits.len() {
            1 => Ok(hits[0].clone()),
            0 => Err(StoreError::LayerNotFound(r.to_string())),
            _ => Err(StoreError::AmbiguousLayer(r.to_string())),
        }
    }
}
