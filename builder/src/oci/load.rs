//! An image into the store from its config bytes and its layer blobs, wherever they come from
//! (a layout, an archive, a registry): each blob verified (digest, size, DiffID) by the layer
//! import pipeline before anything is published; the config stored byte for byte, its
//! sha256 being the ImageID (image-spec config.md). No kernel interface of its own.

use std::collections::{HashSet, VecDeque};
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use oci_spec::image::ImageConfiguration;
use sha2::{Digest as _, Sha256};
use store::Store;

use super::source::BlobSource;
use super::{Exact, OciError};
use crate::import::{add_blob, AddError, AddOptions};

/// One layer of the image to load, in the order of the config's `rootfs.diff_ids`.
#[derive(Debug, Clone)]
pub struct LayerBlob {
    /// where the blob is in its source
    pub path: String,
    /// `sha256:<hex>` of the blob, when the source says (a docker-archive does not)
    pub digest: Option<String>,
    /// its size in bytes, when the source says
    pub size: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// NAME[:TAG]s to point at the image
    pub tags: Vec<String>,
    /// a progress bar per layer (only when stderr is a terminal)
    pub progress: bool,
    /// hash the blobs of layers already in the store too (cheap for local sources; a
    /// registry's are not fetched again)
    pub verify_present: bool,
    /// layers fetched at once (at least 1)
    pub jobs: usize,
}

/// The hex DiffIDs an image config lists, once the config is known to be one.
pub fn config_diff_ids(bytes: &[u8]) -> Result<Vec<String>, OciError> {
    let cfg: ImageConfiguration = serde_json::from_slice(bytes)
        .map_err(|e| OciError::msg(format!("the image config is not valid: {e}")))?;
    if cfg.rootfs().typ() != "layers" {
        return Err(OciError::msg(format!(
            "the image config's rootfs type is {:?}, not \"layers\"",
            cfg.rootfs().typ()
        )));
    }
    cfg.rootfs()
        .diff_ids()
        .iter()
        .map(|d| {
            store::digest::Digest::parse_sha256(d).ok_or_else(|| {
                OciError::msg(format!(
                    "the image config lists DiffID {d:?}: not sha256:<64 hex>"
                ))
            })
        })
        .collect()
}

/// Loads the image of `config` (bytes as received) and `layers` from `src`; returns the
/// ImageID hex. Nothing of a layer that fails its checks is stored; the image is written
/// only once every layer is in the store.
pub fn load(
    store: &Store,
    config: &[u8],
    layers: &[LayerBlob],
    src: &dyn BlobSource,
    o: &LoadOptions,
) -> Result<String, OciError> {
    let diffs = config_diff_ids(config)?;
    if diffs.len() != layers.len() {
        return Err(OciError::msg(format!(
            "the manifest lists {} layer(s) but the image config {}",
            layers.len(),
            diffs.len()
        )));
    }
    for t in &o.tags {
        store::normalize_tag(t)?;
    }
    let bars = (o.progress && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .then(indicatif::MultiProgress::new);
    // one job per distinct DiffID
    let mut seen = HashSet::new();
    let jobs: VecDeque<usize> = (0..layers.len())
        .filter(|i| seen.insert(diffs[*i].clone()))
        .collect();
    let queue = Mutex::new(jobs);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<OciError>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..o.jobs.clamp(1, 8) {
            s.spawn(|| loop {
                let Some(i) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front() else {
                    return;
                };
                if failed.load(Ordering::SeqCst) {
                    return;
                }
                if let Err(e) = one_layer(store, &diffs[i], &layers[i], src, o, bars.as_ref()) {
                    failed.store(true, Ordering::SeqCst);
                    first_error
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert(e);
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    publish_image(store, config, &diffs, &o.tags)
}

/// Writes the image once its layers are known to be there (under the store lock, so that no
/// `gc` or `layer rm` runs between the check and the write).
fn publish_image(
    store: &Store,
    config: &[u8],
    diffs: &[String],
    tags: &[String],
) -> Result<String, OciError> {
    let _lock = store.lock_shared()?;
    if let Some(gone) = diffs.iter().find(|d| !store.has_layer(d)) {
        return Err(OciError::msg(format!(
            "layer sha256:{gone} was removed while the image was loading (rbuild gc?): run the command again"
        )));
    }
    store.common_mode("the image", diffs)?;
    let id = store::digest::hex(&Sha256::digest(config));
    store.put_image_config(config, &id)?;
    for t in tags {
        store.set_tag(t, &id)?;
    }
    Ok(id)
}

fn one_layer(
    store: &Store,
    diff: &str,
    blob: &LayerBlob,
    src: &dyn BlobSource,
    o: &LoadOptions,
    bars: Option<&indicatif::MultiProgress>,
) -> Result<(), OciError> {
    let name = blob
        .digest
        .clone()
        .unwrap_or_else(|| format!("sha256:{diff}"));
    let bar = bars.map(|m| {
        let b = m.add(match blob.size {
            Some(n) => indicatif::ProgressBar::new(n),
            None => indicatif::ProgressBar::new_spinner(),
        });
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} {bytes:>10}/{total_bytes:<10} {wide_bar} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.set_prefix(name.chars().take(19).collect::<String>());
        b
    });
    let res = fetch_layer(store, diff, blob, src, o, bar.as_ref(), &name);
    if let Some(b) = bar {
        b.finish_with_message(match &res {
            Ok(true) => "done",
            Ok(false) => "already in the store",
            Err(_) => "failed",
        });
    }
    res.map(drop)
}

/// Imports one layer; false when it was already in the store.
fn fetch_layer(
    store: &Store,
    diff: &str,
    blob: &LayerBlob,
    src: &dyn BlobSource,
    o: &LoadOptions,
    bar: Option<&indicatif::ProgressBar>,
    name: &str,
) -> Result<bool, OciError> {
    if store.has_layer(diff) {
        if o.verify_present {
            if let Some(d) = &blob.digest {
                verify_blob(src.open(&blob.path)?, d, blob.size)?;
            }
        }
        return Ok(false);
    }
    let mut r = src.open(&blob.path)?;
    if let Some(n) = blob.size {
        r = Box::new(Exact::new(r, n, name));
    }
    if let Some(b) = bar {
        r = Box::new(b.wrap_read(r));
    }
    let opts = AddOptions {
        sha256: blob.digest.clone(),
        diff_id: Some(diff.to_string()),
        ..AddOptions::default()
    };
    let describe = format!("{} {}", src.describe(), blob.path);
    match add_blob(store, &describe, r, &opts) {
        Ok(_) => Ok(true),
        Err(AddError::ChecksumMismatch { got, .. }) => Err(corrupt(name, &got)),
        Err(e) => Err(OciError::msg(format!("layer {name}: {e}"))),
    }
}

fn corrupt(name: &str, got: &str) -> OciError {
    OciError::msg(format!(
        "blob {name} is corrupt: its bytes hash to sha256:{got}; nothing stored"
    ))
}

/// Hashes a blob already imported before (its layer is in the store) to check it all the same.
fn verify_blob(r: Box<dyn Read + Send>, digest: &str, size: Option<u64>) -> Result<(), OciError> {
    let mut h = Sha256::new();
    let mut r: Box<dyn Read> = match size {
        Some(n) => Box::new(Exact::new(r, n, digest)),
        None => r,
    };
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(OciError::msg(format!("blob {digest}: {e}"))),
        }
    }
    let got = store::digest::hex(&h.finalize());
    if format!("sha256:{got}") != digest {
        return Err(corrupt(digest, &got));
    }
    Ok(())
}
