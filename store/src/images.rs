//! Images: `images/<ImageID hex>/config.json`, an OCI image config whose sha256 is the
//! ImageID (OCI image-spec, config.md), written once and renamed into place.
//! Kernel interfaces: rename(2)/renameat2(2) RENAME_NOREPLACE for atomic publication.

use std::fs;
use std::os::unix::fs::DirBuilderExt;

use oci_spec::image::ImageConfiguration;
use rustix::fs::{RenameFlags, CWD};
use rustix::io::Errno;
use sha2::Digest as _;

use crate::digest::Digest;
use crate::error::StoreError;
use crate::layout::Store;

/// The `PATH=...` environment entry an image config gets when it sets no PATH, and the one a
/// container gets when neither its image nor its command line sets one (Docker's default).
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Store {
    /// Hex ImageIDs of the stored images, sorted.
    pub fn image_ids(&self) -> Result<Vec<String>, StoreError> {
        Self::list_ids(&self.images_dir())
    }

    /// True when image `hex` has a config.json of any kind (reading it says what is wrong with
    /// one that is not a regular file).
    pub fn has_image(&self, hex: &str) -> bool {
        fs::symlink_metadata(self.config_path(hex)).is_ok()
    }

    /// The stored config bytes of an image.
    pub fn image_config_bytes(&self, hex: &str) -> Result<Vec<u8>, StoreError> {
        let p = self.config_path(hex);
        crate::files::read_store_file(&p).map_err(StoreError::io(&p))
    }

    /// The stored config bytes of image `hex`, once they are known to hash to `hex` (else
    /// [`StoreError::ConfigMismatch`]).
    pub fn verified_config_bytes(&self, hex: &str) -> Result<Vec<u8>, StoreError> {
        let bytes = self.image_config_bytes(hex)?;
        let got = crate::digest::hex(&sha2::Sha256::digest(&bytes));
        if got != hex {
            return Err(StoreError::ConfigMismatch {
                image: format!("sha256:{hex}"),
                got,
            });
        }
        Ok(bytes)
    }

    /// The config of image `hex`, parsed only once its bytes are known to hash to `hex`.
    pub fn verified_config(&self, hex: &str) -> Result<ImageConfiguration, StoreError> {
        let bytes = self.verified_config_bytes(hex)?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            path: self.config_path(hex),
            reason: e.to_string(),
        })
    }

    /// The config of image `hex` as stored, NOT checked against its id: for listings and fsck
    /// only; anything that acts on a config or hands it on uses [`Store::verified_config`].
    pub fn image_config(&self, hex: &str) -> Result<ImageConfiguration, StoreError> {
        let bytes = self.image_config_bytes(hex)?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            path: self.config_path(hex),
            reason: e.to_string(),
        })
    }

    /// The hex DiffIDs an image config lists (`rootfs.diff_ids`, bottom first); entries that
    /// are not `sha256:<64 hex>` are left out.
    pub fn diff_ids(config: &ImageConfiguration) -> Vec<String> {
        config
            .rootfs()
            .diff_ids()
            .iter()
            .filter_map(|d| Digest::parse_sha256(d))
            .collect()
    }

    /// Writes `images/<id>/config.json` through a staging folder; an existing image is kept once
    /// its config is known to hash to `id` (a tampered one is refused, never handed out as new).
    /// The caller holds the store lock shared, so that no removal runs meanwhile.
    pub fn put_image_config(&self, bytes: &[u8], id: &str) -> Result<(), StoreError> {
        let dest = self.image_dir(id);
        if self.config_path(id).is_file() {
            return self.verified_config_bytes(id).map(drop);
        }
        let stage = self.staging_path("image");
        let res = (|| {
            fs::DirBuilder::new()
                .mode(0o755)
                .create(&stage)
                .map_err(StoreError::io(&stage))?;
            let cfg = stage.join("config.json");
            fs::write(&cfg, bytes).map_err(StoreError::io(&cfg))?;
            match rustix::fs::renameat_with(CWD, &stage, CWD, &dest, RenameFlags::NOREPLACE) {
                Ok(()) => Ok(()),
                Err(Errno::EXIST | Errno::NOTEMPTY) => Ok(()),
                Err(e) => Err(StoreError::Io {
                    path: dest.clone(),
                    source: e.into(),
                }),
            }
        })();
        let _ = crate::remove::remove_tree(&stage);
        res
    }

    /// Images (hex, sorted) whose rootfs lists the layer `hex`. A config that does not hash to
    /// its id is refused ([`StoreError::ConfigMismatch`]): it cannot tell which layers are used.
    pub fn images_using_layer(&self, hex: &str) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for id in self.image_ids()? {
            let cfg = self.verified_config(&id)?;
            if Self::diff_ids(&cfg).iter().any(|d| d == hex) {
                out.push(id);
            }
        }
        Ok(out)
    }
}
