//! What rrun needs from an image: its id, its layer folders (bottom first) and the parts of its
//! OCI config that shape the process. No kernel interface: reads the rbuild store (COMMON store contract).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// An image resolved in the store.
#[derive(Debug, Clone)]
pub struct Image {
    /// `sha256:<64 hex>`.
    pub id: String,
    /// The layers' rootfs folders, bottom first.
    pub lowerdirs: Vec<PathBuf>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
}

/// Resolves IMAGE (full id, >= 12-digit prefix, or NAME[:TAG]) in the store at `root`.
pub fn resolve(root: &Path, reference: &str) -> Result<Image> {
    let store = rbuild::store::Store::open(root).map_err(|e| Error::Image(format!("open the image store {}: {e}", root.display())))?;
    let img = store.resolve_image(reference).map_err(|e| Error::Image(e.to_string()))?;
    let cfg = img.config.config().clone().unwrap_or_default();
    Ok(Image {
        id: img.id,
        lowerdirs: img.lowerdirs,
        entrypoint: cfg.entrypoint().clone().unwrap_or_default(),
        cmd: cfg.cmd().clone().unwrap_or_default(),
        env: cfg.env().clone().unwrap_or_default(),
        workdir: cfg.working_dir().clone().filter(|w| !w.is_empty()),
        user: cfg.user().clone().filter(|u| !u.is_empty()),
    })
}

/// The store's folder of containers.
pub fn containers_dir(root: &Path) -> PathBuf {
    root.join("containers")
}

/// The default store: /var/lib/rbox as root, else $XDG_DATA_HOME/rbox (~/.local/share/rbox).
pub fn default_root() -> PathBuf {
    rbuild::store::default_root()
}
