//! `rbuild push IMAGE REF`: each layer's own tar stream gzip-compressed into a blob in the
//! store's `tmp/` (so its digest and size are known), uploaded unless the registry has it,
//! then the config (its stored bytes) and an OCI image manifest under REF's tag. No kernel
//! interface of its own.

use std::fs::File;

use store::Store;

use super::client::{Client, ConnOptions};
use super::reference::Reference;
use crate::oci::export::{manifest_json, write_gzip_layer, Blob};
use crate::oci::load::config_diff_ids;
use crate::oci::stream::LayerStream;
use crate::oci::{media, OciError};

/// Pushes image `image` to `reference`; returns the manifest's digest hex.
pub fn push(
    store: &Store,
    image: &str,
    reference: &str,
    o: &ConnOptions,
) -> Result<String, OciError> {
    let r = Reference::parse(reference)?;
    let tag = match (&r.digest, &r.tag) {
        (None, Some(t)) => t.clone(),
        _ => {
            return Err(OciError::msg(format!(
                "{reference}: push to a tag (NAME[:TAG]), not a digest"
            )))
        }
    };
    let hex = store.resolve_image_hex(image)?;
    let config = store.verified_config_bytes(&hex)?;
    let diffs = config_diff_ids(&config)?;
    for d in &diffs {
        drop(LayerStream::open(store, d)?);
    }
    let mut c = Client::connect(r.api_host(), &r.repo, true, o)?;
    let mut layers = Vec::new();
    for d in &diffs {
        let tmp = store.staging_path("w");
        let res = (|| {
            let b = write_gzip_layer(store, d, &tmp)?;
            let digest = format!("sha256:{}", b.hex);
            if !c.has_blob(&digest)? {
                let f = File::open(&tmp).map_err(OciError::io(&tmp))?;
                c.upload(&digest, b.size, f)?;
            }
            Ok::<Blob, OciError>(b)
        })();
        let _ = std::fs::remove_file(&tmp);
        layers.push(res?);
    }
    let cfg = Blob {
        hex: hex.clone(),
        size: config.len() as u64,
    };
    let cd = format!("sha256:{hex}");
    if !c.has_blob(&cd)? {
        c.upload(&cd, cfg.size, &config[..])?;
    }
    let m = manifest_json(&cfg, &layers);
    c.put_manifest(&tag, &m, media::OCI_MANIFEST)?;
    Ok(store::digest::hex(&<sha2::Sha256 as sha2::Digest>::digest(
        &m,
    )))
}
