//! Store upkeep behind the CLI: listings, `layer rm`, `image rm`, `gc` and `fsck`. Removals
//! hold the store lock exclusive (see store.rs) from their check to their removal.
//! Kernel interfaces: rename(2) into tmp/ so removals are atomic, /proc/<pid> to tell stale
//! staging folders (proc(5)); digests are recomputed from the files themselves.

use std::collections::HashMap;
use std::fs;

use sha2::{Digest as _, Sha256};

use crate::digest::{hex, Digest};
use crate::store::{Store, StoreError};

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
    /// Its tags, `NAME:TAG`.
    pub tags: Vec<String>,
    /// Number of layers and their uncompressed bytes; None when its config cannot be read
    /// (listed, not hidden: the user learns it is there and where to look).
    pub layers: Option<(usize, u64)>,
}

/// Every image, sorted by id.
pub fn image_rows(store: &Store) -> Result<Vec<ImageRow>, StoreError> {
    let tags = store.tags()?;
    let mut by_id: HashMap<String, Vec<String>> = HashMap::new();
    for (t, id) in &tags {
        by_id.entry(id.clone()).or_default().push(t.clone());
    }
    let mut out = Vec::new();
    for id in store.image_ids()? {
        let tags = by_id.remove(&format!("sha256:{id}")).unwrap_or_default();
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
        out.push(ImageRow { id, tags, layers });
    }
    Ok(out)
}

/// Removes a layer unless an image uses it; returns its hex id.
pub fn remove_layer(store: &Store, reference: &str) -> Result<String, StoreError> {
    let _lock = store.lock_exclusive()?;
    let id = store.resolve_layer_hex(reference)?;
    if let Some(img) = store.images_using_layer(&id)?.into_iter().next() {
        return Err(StoreError::LayerInUse {
            layer: format!("sha256:{id}"),
            image: format!("sha256:{img}"),
        });
    }
    store.remove_entry(&store.layer_dir(&id))?;
    Ok(id)
}

/// `image rm`: a tag reference removes that tag (and the image once no tag is left); an id
/// reference removes the image with all its tags. Refused while a container uses the image.
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
    if let Some(c) = store.containers_using(&id)?.into_iter().next() {
        return Err(StoreError::ImageInUse {
            image: want,
            container: c,
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

/// Removes layers no image references, stale staging folders and stale blob-index entries.
pub fn gc(store: &Store) -> Result<GcReport, StoreError> {
    let _lock = store.lock_exclusive()?;
    let mut used = std::collections::HashSet::new();
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
    r.staging = clean_stale_staging(store)?;
    let blobs = store.blobs_dir();
    for e in fs::read_dir(&blobs).map_err(StoreError::io(&blobs))? {
        let e = e.map_err(StoreError::io(&blobs))?;
        let target = crate::util::read_store_file(&e.path())
            .ok()
            .and_then(|s| Digest::parse_sha256(String::from_utf8_lossy(&s).trim()));
        if !target.map(|t| store.has_layer(&t)).unwrap_or(false) {
            let _ = fs::remove_file(e.path());
        }
    }
    Ok(r)
}

/// Removes staging folders (`tmp/{layer,image,w,rm}-<pid>-...`) left by processes that no
/// longer exist (killed half way). Returns how many were removed.
pub fn clean_stale_staging(store: &Store) -> Result<usize, StoreError> {
    let tmp = store.tmp_dir();
    let mut n = 0;
    for e in fs::read_dir(&tmp).map_err(StoreError::io(&tmp))? {
        let e = e.map_err(StoreError::io(&tmp))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let mut parts = name.splitn(3, '-');
        let (Some(kind), Some(pid)) = (parts.next(), parts.next()) else {
            continue;
        };
        if !matches!(kind, "layer" | "image" | "w" | "rm") {
            continue;
        }
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            crate::util::remove_tree(&e.path()).map_err(StoreError::io(e.path()))?;
            n += 1;
        }
    }
    Ok(n)
}

/// Re-verifies every digest: each layer's tree against the digest recorded at extraction, each
/// image config against its ImageID and its layers' presence, each tag's image. Returns the
/// problems found, one line each.
pub fn fsck(store: &Store) -> Result<Vec<String>, StoreError> {
    let mut problems = Vec::new();
    for id in store.layer_ids()? {
        let name = format!("layer sha256:{id}");
        let meta = match store.layer_meta(&id) {
            Ok(m) => m,
            Err(e) => {
                problems.push(format!("{name}: {e}"));
                continue;
            }
        };
        if meta.diff_id != format!("sha256:{id}") {
            problems.push(format!("{name}: layer.json names {}", meta.diff_id));
        }
        let rootfs = store.layer_dir(&id).join("rootfs");
        match crate::tree::tree_digest(&rootfs, &HashMap::new()) {
            Ok(t) if format!("sha256:{t}") == meta.tree_digest => {}
            Ok(t) => problems.push(format!(
                "{name}: the extracted tree changed (digest sha256:{t}, recorded {}): remove and re-add the layer",
                meta.tree_digest
            )),
            Err(e) => problems.push(format!("{name}: {}: {e}", rootfs.display())),
        }
    }
    for id in store.image_ids()? {
        let name = format!("image sha256:{id}");
        let bytes = match store.image_config_bytes(&id) {
            Ok(b) => b,
            Err(e) => {
                problems.push(format!("{name}: {e}"));
                continue;
            }
        };
        let got = hex(&Sha256::digest(&bytes));
        if got != id {
            problems.push(format!("{name}: config.json has sha256:{got}"));
        }
        match store.image_config(&id) {
            Ok(cfg) => {
                for d in cfg.rootfs().diff_ids() {
                    match Digest::parse_sha256(d) {
                        Some(h) if store.has_layer(&h) => {}
                        _ => problems.push(format!("{name}: layer {d} is missing")),
                    }
                }
            }
            Err(e) => problems.push(format!("{name}: {e}")),
        }
    }
    for (tag, target) in store.tags()? {
        match Digest::parse_sha256(&target) {
            Some(h) if store.has_image(&h) => {}
            _ => problems.push(format!("tag {tag}: points at missing image {target}")),
        }
    }
    Ok(problems)
}

/// RFC 3339 UTC time of a Unix timestamp (for SOURCE_DATE_EPOCH), e.g. 1970-01-01T00:00:00Z.
pub fn rfc3339(secs: i64) -> Option<String> {
    if secs < 0 {
        return None;
    }
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // civil-from-days (proleptic Gregorian)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let mut y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    if m <= 2 {
        y += 1;
    }
    Some(format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    ))
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn rfc3339_of_known_times() {
        assert_eq!(rfc3339(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000).unwrap(), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400).unwrap(), "2000-02-29T00:00:00Z");
    }
}
