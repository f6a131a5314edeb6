//! Resolution of what a user names (an id, an id prefix of at least 12 hex digits, NAME[:TAG])
//! to a stored image, and of an image to what a runtime mounts: its ordered lowerdirs, their
//! [`LayerMode`] and its verified config. No kernel interface of its own (files.rs reads).

use std::path::PathBuf;

use oci_spec::image::ImageConfiguration;

use crate::digest::Digest;
use crate::error::StoreError;
use crate::layers::LayerMode;
use crate::layout::Store;
use crate::reference::{hex_prefix, is_short_prefix};
use crate::tags::normalize_tag;

/// An image resolved to what a runtime needs.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// `sha256:<64 hex>`
    pub id: String,
    pub config: ImageConfiguration,
    /// The layers' hex DiffIDs, bottom first (`rootfs.diff_ids` order).
    pub layers: Vec<String>,
    /// The layers' `rootfs` folders, bottom first.
    pub lowerdirs: Vec<PathBuf>,
    /// How every one of its layers was extracted (an image never mixes the two).
    pub mode: LayerMode,
}

impl ResolvedImage {
    /// The ImageID's hex part.
    pub fn hex(&self) -> &str {
        self.id.trim_start_matches("sha256:")
    }
}

impl Store {
    /// Resolves an image reference (see [`Store::resolve_image_hex`]) to its id, config,
    /// layers, lowerdirs and layer mode. The config's bytes must hash to the image id (else
    /// [`StoreError::ConfigMismatch`]: nothing runs a config changed behind the store's back).
    /// An image whose layers were extracted in both modes is refused
    /// ([`StoreError::MixedLayerModes`]). A runtime calls it under [`Store::lock_shared`] and
    /// takes its hold ([`Store::hold`]) before it lets the lock go.
    pub fn resolve_image(&self, reference: &str) -> Result<ResolvedImage, StoreError> {
        let hex = self.resolve_image_hex(reference)?;
        let config = self.verified_config(&hex)?;
        let mut lowerdirs = Vec::new();
        let mut layers = Vec::new();
        for d in config.rootfs().diff_ids() {
            let lhex = Digest::parse_sha256(d).ok_or_else(|| StoreError::Corrupt {
                path: self.config_path(&hex),
                reason: format!("bad diff_id {d:?}"),
            })?;
            if !self.has_layer(&lhex) {
                return Err(StoreError::Corrupt {
                    path: self.image_dir(&hex),
                    reason: format!(
                        "layer sha256:{lhex} is missing (re-add it with `rbuild layer add`)"
                    ),
                });
            }
            lowerdirs.push(self.layer_dir(&lhex).join("rootfs"));
            layers.push(lhex);
        }
        let mode = self.common_mode(&format!("image sha256:{hex}"), &layers)?;
        Ok(ResolvedImage {
            id: format!("sha256:{hex}"),
            config,
            layers,
            lowerdirs,
            mode,
        })
    }

    /// Resolves an image reference to the hex ImageID of a stored image. A tag is looked up
    /// first, then an id prefix (as Docker does), so no tag, even one written by an older
    /// rbuild that would be refused today, can make a name stand for another image's id. A
    /// reference starting with `sha256:` is an id only (one of fewer than 12 digits is
    /// [`StoreError::InvalidReference`]). When tags.json is damaged, a reference that reads as
    /// an id prefix is still resolved as one (a name gets [`StoreError::TagsDamaged`]). A bare
    /// reference of fewer than 12 hex digits that no tag has is [`StoreError::ShortPrefix`].
    pub fn resolve_image_hex(&self, reference: &str) -> Result<String, StoreError> {
        let r = reference.trim();
        if r.starts_with("sha256:") {
            let prefix =
                hex_prefix(r).ok_or_else(|| StoreError::InvalidReference(r.to_string()))?;
            return self.image_by_prefix(r, &prefix);
        }
        match self.lookup_tag(r) {
            Ok(Some((key, hex))) => {
                if !self.has_image(&hex) {
                    return Err(StoreError::Corrupt {
                        path: self.tags_path(),
                        reason: format!(
                            "tag {key} points at missing image sha256:{hex} (`rbuild image rm {key}` drops the tag)"
                        ),
                    });
                }
                return Ok(hex);
            }
            Ok(None) => {}
            Err(e @ StoreError::TagsDamaged { .. }) if hex_prefix(r).is_none() => return Err(e),
            Err(e @ StoreError::TagsDamaged { .. }) => {
                tracing::warn!("{e}: {r} is looked up as an id prefix only");
            }
            Err(e) => return Err(e),
        }
        if let Some(prefix) = hex_prefix(r) {
            return self.image_by_prefix(r, &prefix);
        }
        if is_short_prefix(r) {
            return Err(StoreError::ShortPrefix(r.to_string()));
        }
        normalize_tag(r)?; // a malformed reference is told why
        Err(StoreError::ImageNotFound(r.to_string()))
    }

    /// The one stored image whose hex id starts with `prefix`.
    fn image_by_prefix(&self, r: &str, prefix: &str) -> Result<String, StoreError> {
        let ids = self.image_ids()?;
        let mut hits = ids.iter().filter(|id| id.starts_with(prefix));
        match (hits.next(), hits.next()) {
            (Some(id), None) => Ok(id.clone()),
            (None, _) => Err(StoreError::ImageNotFound(r.to_string())),
            (Some(_), Some(_)) => Err(StoreError::AmbiguousImage(r.to_string())),
        }
    }
}
