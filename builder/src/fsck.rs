//! `rbuild fsck`: re-verifies every digest of the store (each layer's tree against the digest
//! recorded at extraction, each image config against its ImageID and its layers' presence,
//! each tag's image) and reads every hold; `--repair` first rebuilds tags.json from what it
//! can verify. Kernel interfaces: none of its own (the tree walk is tree.rs's).

use std::collections::HashMap;

use sha2::{Digest as _, Sha256};
use store::digest::{hex, Digest};
use store::{Store, StoreError};

/// What fsck found, and what `--repair` changed.
#[derive(Debug, Default)]
pub struct FsckReport {
    /// Problems left, one line each.
    pub problems: Vec<String>,
    /// What the repair dropped, one line each.
    pub dropped: Vec<String>,
    /// Tags kept by a repair that rewrote tags.json (None: tags.json was not rewritten).
    pub tags_kept: Option<usize>,
}

/// Checks the whole store; with `repair`, rebuilds tags.json first (see the module docs).
pub fn fsck(store: &Store, repair: bool) -> Result<FsckReport, StoreError> {
    let mut r = FsckReport::default();
    if repair {
        let t = store.repair_tags()?;
        r.dropped = t.dropped;
        r.tags_kept = t.rewritten.then_some(t.kept);
    }
    check_layers(store, &mut r.problems)?;
    check_images(store, &mut r.problems)?;
    match store.tags() {
        Ok(tags) => {
            for (tag, target) in tags {
                match Digest::parse_sha256(&target) {
                    Some(h) if store.has_image(&h) => {}
                    _ => r
                        .problems
                        .push(format!("tag {tag}: points at missing image {target}")),
                }
            }
        }
        Err(e @ StoreError::TagsDamaged { .. }) => r.problems.push(e.to_string()),
        Err(e) => return Err(e),
    }
    for h in store.holds()? {
        if let Some(why) = &h.damaged {
            r.problems.push(format!(
                "hold {}: {why} (it keeps image sha256:{} until released: {})",
                h.path.display(),
                h.image,
                h.fix()
            ));
        }
    }
    Ok(r)
}

fn check_layers(store: &Store, problems: &mut Vec<String>) -> Result<(), StoreError> {
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
    Ok(())
}

fn check_images(store: &Store, problems: &mut Vec<String>) -> Result<(), StoreError> {
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
    Ok(())
}
