//! Store upkeep behind the CLI: listings, `layer rm`, `image rm` and `gc`. Removals hold the
//! store lock exclusive (see the store crate's docs) from their check to their removal, and ask
//! the store for holds (who uses which image); they never read another program's files.
//! Kernel interfaces: rename(2) into tmp/ so removals are atomic (`Store::remove_entry`).

use std::collections::{HashMap, HashSet};
use std::fs;

use store::digest::Digest;
use store::{Store, StoreError};

/// One stored layer, as `layer ls` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRow {
    /// Hex DiffID.
    pub id: String,
    /// Uncompressed bytes.
    pub size: u64,
    /// Where it was added from.
    pub source: String,
}

/// Every complete layer, sorted by id.
pub fn layer_rows(store: &Store) -> Result<Vec<LayerRow>, StoreError> {
    let mut out = Vec::new();
    for id in store.layer_ids()? {
        match store.layer_meta(&id) {
            Ok(m) => out.push(LayerRow {
                id,
                size: m.size,
                source: m.source,
            }),
            Err(_) => continue, // not a complete layer (fsck reports it)
        }
    }
    Ok(out)
}

/// One stored image, as `image ls` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRow {
    /// Hex ImageID.
    pub id: String,
    /// Its tags, `NAME:TAG`; None when tags.json cannot be read.
    pub tags: Option<Vec<String>>,
    /// Number of layers and their uncompressed bytes; None when its config cannot be read
    /// (listed, not hidden: the user learns it is there and where to look).
    pub layers: Option<(usize, u64)>,
}

/// `rbuild image ls`: its rows, and why the tags could not be shown, if they could not.
pub struct ImageListing {
    pub rows: Vec<ImageRow>,
    pub tags_error: Option<StoreError>,
}

/// Every image, sorted by id. A damaged tags.json does not hide the images: their tags are
/// unknown (None).
pub fn image_rows(store: &Store) -> Result<ImageListing, StoreError> {
    let (tags, tags_error) = match store.tags() {
        Ok(t) => (Some(t), None),
        Err(e @ StoreError::TagsDamaged { .. }) => (None, Some(e)),
        Err(e) => return Err(e),
    };
    let mut by_id: HashMap<String, Vec<String>> = HashMap::new();
    for (t, id) in tags.iter().flatten() {
        by_id.entry(id.clone()).or_default().push(t.clone());
    }
    let mut rows = Vec::new();
    for id in store.image_ids()? {
        let t = tags
            .as_ref()
            .map(|_| by_id.remove(&format!("sha256:{id}")).unwrap_or_default());
        let layers = store.image_config(&id).ok().map(|cfg| {
            let diff_ids = cfg.rootfs().diff_ids();
            let size: u64 = diff_ids
                .iter()
                .filter_map(|d| Digest::parse_sha256(d))
                .filter_map(|h| store.layer_meta(&h).ok())
                .map(|m| m.size)
                .sum();
            (diff_ids.len(), size)
        });
        rows.push(ImageRow {
            id,
            tags: t,
            layers,
        });
    }
    Ok(ImageListing { rows, tags_error })
}

/// Removes a layer unless an image uses it or a hold keeps it; returns its hex id.
pub fn remove_layer(store: &Store, reference: &str) -> Result<String, StoreError> {
    let _lock = store.lock_exclusive()?;
    let id = store.resolve_layer_hex(reference)?;
    if let Some(img) = store.images_using_layer(&id)?.into_iter().next() {
        return Err(StoreError::LayerInUse {
            layer: format!("sha256:{id}"),
            image: format!("sha256:{img}"),
        });
    }
    // the image of a hold is normally there (above); a hold keeps its layers all the same
    if let Some(h) = store.holds()?.into_iter().find(|h| h.layers.contains(&id)) {
        return Err(StoreError::LayerHeld {
            layer: format!("sha256:{id}"),
            image: format!("sha256:{}", h.image),
            by: h.by(),
            fix: h.fix(),
        });
    }
    store.remove_entry(&store.layer_dir(&id))?;
    Ok(id)
}

/// `image rm`: a tag reference removes that tag (and the image once no tag is left); an id
/// reference removes the image with all its tags. Refused while a hold is on the image (a
/// container that uses it, until `rrun rm`).
pub fn remove_image(store: &Store, reference: &str) -> Result<String, StoreError> {
    let _lock = store.lock_exclusive()?;
    // a tag first, as resolve_image_hex: an id prefix never shadows a name, nor the reverse
    let by_tag = if reference.trim().starts_with("sha256:") {
        None
    } else {
        store.lookup_tag(reference.trim())?
    };
    let id = match &by_tag {
        Some((_, hex)) => hex.clone(),
        None => store.resolve_image_hex(reference)?,
    };
    let want = format!("sha256:{id}");
    if let Some((tag, _)) = by_tag.as_ref().filter(|_| !store.image_dir(&id).exists()) {
        // a tag left pointing at an image that is gone: dropping it is all there is to do
        let tag = tag.clone();
        store.update_tags(|m| {
            m.remove(&tag);
            Ok(())
        })?;
        return Ok(format!("untagged {tag}"));
    }
    if let Some((tag, _)) = by_tag {
        let others = store
            .tags_of(&id)?
            .into_iter()
            .filter(|t| *t != tag)
            .count();
        if others > 0 {
            store.update_tags(|m| {
                m.remove(&tag);
                Ok(())
            })?;
            return Ok(format!("untagged {tag}"));
        }
    }
    if let Some(h) = store.holds_on(&id)?.into_iter().next() {
        return Err(StoreError::ImageInUse {
            image: want,
            by: h.by(),
            fix: h.fix(),
        });
    }
    store.update_tags(|m| {
        m.retain(|_, v| *v != want);
        Ok(())
    })?;
    store.remove_entry(&store.image_dir(&id))?;
    Ok(want)
}

#[derive(Debug, Default)]
pub struct GcReport {
    pub layers: Vec<String>,
    pub staging: usize,
}

/// Removes layers no image references and no hold keeps, stale staging folders and stale
/// blob-index entries.
pub fn gc(store: &Store) -> Result<GcReport, StoreError> {
    let _lock = store.lock_exclusive()?;
    let mut used: HashSet<String> = store.holds()?.into_iter().flat_map(|h| h.layers).collect();
    for img in store.image_ids()? {
        // a config changed behind the store's back cannot say which layers are in use
        let cfg = store.verified_config(&img)?;
        for d in cfg.rootfs().diff_ids() {
            if let Some(h) = Digest::parse_sha256(d) {
                used.insert(h);
            }
        }
    }
    let mut r = GcReport::default();
    for id in store.layer_ids()? {
        if !used.contains(&id) {
            store.remove_entry(&store.layer_dir(&id))?;
            r.layers.push(id);
        }
    }
    r.staging = store.clean_stale_staging()?;
    let blobs = store.blobs_dir();
    for e in fs::read_dir(&blobs).map_err(StoreError::io(&blobs))? {
        let e = e.map_err(StoreError::io(&blobs))?;
        let target = store::files::read_store_file(&e.path())
            .ok()
            .and_then(|s| Digest::parse_sha256(String::from_utf8_lossy(&s).trim()));
        if !target.map(|t| store.has_layer(&t)).unwrap_or(false) {
            let _ = fs::remove_file(e.path());
        }
    }
    Ok(r)
}
