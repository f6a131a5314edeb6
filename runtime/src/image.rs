//! What rrun needs from an image: its id, its layer folders (bottom first) and the parts of its
//! OCI config that shape the process, resolved through the `store` crate, and the hold that
//! keeps the image while its container exists. No kernel interface of its own (the store crate
//! reads the store and takes its lock, flock(2)).
//!
//! The protocol (see the store crate's docs): rrun takes the store lock shared, resolves the
//! image and writes its hold on it, bound to this rrun process, then lets the lock go. Once
//! the container's record is saved ([`crate::state`] writes it before anything else of the
//! container exists), [`ImageHold::keep`] makes the hold last until `rrun rm`. `rbuild image rm`,
//! `layer rm` and `gc` take the lock exclusive and refuse to remove what a hold keeps. An rrun
//! killed before the record is saved leaves a hold the store drops, since its process is gone.

use std::path::{Path, PathBuf};

use store::{Holder, Lifetime, ResolvedImage, Store};

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

/// A container's hold on its image, bound to this rrun process until [`ImageHold::keep`];
/// dropped without `keep` (the container was not made), it is released.
pub struct ImageHold {
    store: Store,
    image: ResolvedImage,
    holder: Holder,
    kept: bool,
}

impl ImageHold {
    /// Makes the hold last until the container is removed (`rrun rm`, or the removal of a
    /// container removed on exit): call it once the container's record is saved.
    pub fn keep(mut self) -> Result<()> {
        self.store
            .hold(&self.image, &self.holder, Lifetime::UntilReleased)
            .map_err(|e| Error::Image(format!("hold image {}: {e}", self.image.id)))?;
        self.kept = true;
        Ok(())
    }
}

impl ImageHold {
    /// Binds the hold to this process (the detached monitor, which outlives the rrun that
    /// resolved the image), until [`ImageHold::keep`].
    pub fn bind_to_this_process(&mut self) -> Result<()> {
        let bound = Lifetime::this_process().map_err(|e| Error::Image(e.to_string()))?;
        self.store
            .hold(&self.image, &self.holder, bound)
            .map_err(|e| Error::Image(format!("hold image {}: {e}", self.image.id)))
    }

    /// Forgets the hold in this process without releasing it: a forked child carries it on
    /// (the detached monitor).
    pub fn leave_to_child(mut self) {
        self.kept = true;
    }
}

impl Drop for ImageHold {
    fn drop(&mut self) {
        if !self.kept {
            if let Err(e) = self.store.release(&self.holder) {
                tracing::warn!("release the hold on {}: {e}", self.image.id);
            }
        }
    }
}

/// Resolves IMAGE (full id, >= 12-digit prefix, or NAME[:TAG]) in the store at `root` and
/// holds it for container `id` (see the module docs). A store that does not exist is not
/// made. An image whose layers were extracted in the other mode is refused: a root overlay
/// ignores the `user.overlay.*` whiteouts of layers added without privileges, a rootless one
/// the `trusted.overlay.*` opaque markers of layers added as root; deleted files would reappear.
pub fn resolve(
    root: &Path,
    reference: &str,
    rootless: bool,
    id: &str,
) -> Result<(Image, ImageHold)> {
    use store::LayerMode;
    let store = Store::open(root).map_err(|e| Error::Image(e.to_string()))?;
    let holder = Holder::container(id).map_err(|e| Error::Image(e.to_string()))?;
    let lock = store
        .lock_shared()
        .map_err(|e| Error::Image(e.to_string()))?;
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
    let bound = Lifetime::this_process().map_err(|e| Error::Image(e.to_string()))?;
    store
        .hold(&img, &holder, bound)
        .map_err(|e| Error::Image(format!("hold image {}: {e}", img.id)))?;
    drop(lock);
    let cfg = img.config.config().clone().unwrap_or_default();
    let image = Image {
        id: img.id.clone(),
        lowerdirs: img.lowerdirs.clone(),
        entrypoint: cfg.entrypoint().clone().unwrap_or_default(),
        cmd: cfg.cmd().clone().unwrap_or_default(),
        env: cfg.env().clone().unwrap_or_default(),
        workdir: cfg.working_dir().clone().filter(|w| !w.is_empty()),
        user: cfg.user().clone().filter(|u| !u.is_empty()),
    };
    let hold = ImageHold {
        store,
        image: img,
        holder,
        kept: false,
    };
    Ok((image, hold))
}

/// Releases container `id`'s hold on its image, whatever the image (its record may be gone or
/// damaged). Nothing to release in a store that does not exist.
pub fn release(root: &Path, id: &str) -> Result<()> {
    let Ok(store) = Store::open_read(root) else {
        return Ok(());
    };
    let holder = Holder::container(id).map_err(|e| Error::Image(e.to_string()))?;
    store
        .release(&holder)
        .map(drop)
        .map_err(|e| Error::Image(format!("release the hold of container {id}: {e}")))
}

/// Releases the holds of containers whose folder is gone (an rrun killed between removing a
/// container and releasing its hold, an older rrun that knew nothing of holds): what
/// `containers_dir` does not hold, nothing holds. Holds bound to a live process (a container
/// being made) are left alone. Returns how many were released.
pub fn release_orphan_holds(root: &Path, containers_dir: &Path) -> usize {
    let Ok(store) = Store::open_read(root) else {
        return 0;
    };
    let Ok(holds) = store.holds() else { return 0 };
    let mut n = 0;
    for h in holds {
        let Some(id) = h.holder.container_id() else {
            continue;
        };
        if h.until_released() && !containers_dir.join(id).exists() {
            if let Ok(k) = store.release(&h.holder) {
                n += k;
            }
        }
    }
    n
}

/// Makes sure a store of the previous format has been migrated (its containers' holds
/// written) before rrun removes any container from it; a missing store is left missing.
pub fn migrate(root: &Path) -> Result<()> {
    match Store::open(root) {
        Ok(_) | Err(store::StoreError::NoStore(_)) => Ok(()),
        Err(e) => Err(Error::Image(e.to_string())),
    }
}

/// The store's folder of containers.
pub fn containers_dir(root: &Path) -> PathBuf {
    store::layout::containers_dir(root)
}

/// The default store: /var/lib/rbox as root, else $XDG_DATA_HOME/rbox (~/.local/share/rbox).
pub fn default_root() -> PathBuf {
    store::default_root()
}
