//! What rrun needs from an image: its id, its layer folders (bottom first) and the parts of its
//! OCI config that shape the process, resolved under the store lock that rbuild's removals
//! respect. No kernel interface of its own: reads the rbuild store (COMMON store contract) through
//! the `rbuild` library, flock(2) through its store lock.
//!
//! The protocol (rbuild::store): rrun holds the store lock shared from before it resolves the
//! image until the new container's state.json names the image ([`crate::state`] writes it
//! before anything else of the container exists). `rbuild image rm`, `layer rm` and `gc` take
//! it exclusively and refuse to remove an image a container's state names, so the layers stay
//! while the container exists.

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

/// The store lock, shared, held until the container's state names its image (see the module
/// docs); dropping it lets rbuild's removals proceed.
pub struct StoreLock {
    _lock: rbuild::store::StoreLock,
}

/// Resolves IMAGE (full id, >= 12-digit prefix, or NAME[:TAG]) in the store at `root` under
/// the store lock, which the caller keeps until the container's state is saved. An image
/// whose layers were extracted in the other mode is refused: a root overlay ignores the
/// `user.overlay.*` whiteouts of layers added without privileges, a rootless one the
/// `trusted.overlay.*` opaque markers of layers added as root; deleted files would reappear.
pub fn resolve(root: &Path, reference: &str, rootless: bool) -> Result<(Image, StoreLock)> {
    use rbuild::store::{LayerMode, Store};
    let store = Store::open(root)
        .map_err(|e| Error::Image(format!("open the image store {}: {e}", root.display())))?;
    let lock = StoreLock {
        _lock: store
            .lock_shared()
            .map_err(|e| Error::Image(e.to_string()))?,
    };
    let img = store
        .resolve_image(reference)
        .map_err(|e| Error::Image(e.to_string()))?;
    match (img.mode, rootless) {
        (LayerMode::Rootless, false) => {
            return Err(Error::Image(format!(
                "image {reference} was added without privileges (rootless rbuild): a root overlay would ignore its whiteouts; add its layers again with rbuild as root, or run it with rrun as that user"
            )))
        }
        (LayerMode::Root, true) => {
            return Err(Error::Image(format!(
                "image {reference} was added as root: an overlay without privileges cannot read its opaque directories; add its layers again with rbuild as this user"
            )))
        }
        _ => {}
    }
    let cfg = img.config.config().clone().unwrap_or_default();
    let image = Image {
        id: img.id,
        lowerdirs: img.lowerdirs,
        entrypoint: cfg.entrypoint().clone().unwrap_or_default(),
        cmd: cfg.cmd().clone().unwrap_or_default(),
        env: cfg.env().clone().unwrap_or_default(),
        workdir: cfg.working_dir().clone().filter(|w| !w.is_empty()),
        user: cfg.user().clone().filter(|u| !u.is_empty()),
    };
    Ok((image, lock))
}

/// The store's folder of containers.
pub fn containers_dir(root: &Path) -> PathBuf {
    root.join("containers")
}

/// The default store: /var/lib/rbox as root, else $XDG_DATA_HOME/rbox (~/.local/share/rbox).
pub fn default_root() -> PathBuf {
    rbuild::store::default_root()
}
