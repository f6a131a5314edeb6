//! Reading a docker-archive, what `docker save` and `podman save` write: a tar holding
//! `manifest.json` (`[{"Config": PATH, "RepoTags": [...], "Layers": [PATH, ...]}]`), the
//! config and one uncompressed tar per layer (Docker's image spec v1.2, "combined image
//! JSON + filesystem changeset format"). The layers carry no digest of their own but the
//! config's DiffIDs, which the import checks; a config or layer named by its digest
//! (`<hex>.json`, `blobs/sha256/<hex>`) is checked against that name. No kernel interface
//! of its own (see source.rs).

use serde::Deserialize;

use super::layout::ImageBlobs;
use super::load::LayerBlob;
use super::source::{BlobSource, TarSource};
use super::{check_blob, OciError, MAX_CONFIG, MAX_MANIFEST};

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// The digest a member's name states: `blobs/sha256/<hex>`, `<hex>.json` or `<hex>.tar`.
fn named_digest(path: &str) -> Option<String> {
    let base = path.strip_prefix("blobs/sha256/").or_else(|| {
        path.strip_suffix(".json")
            .or_else(|| path.strip_suffix(".tar"))
            .filter(|b| !b.contains('/'))
    })?;
    store::digest::is_id_hex(base).then(|| format!("sha256:{base}"))
}

/// Reads the image named `pick` (one of its RepoTags), or the archive's only image.
pub fn read_image(src: &TarSource, pick: Option<&str>) -> Result<ImageBlobs, OciError> {
    let what = src.describe();
    let bytes = src.read_small("manifest.json", MAX_MANIFEST)?;
    let entries: Vec<Entry> = serde_json::from_slice(&bytes).map_err(|e| {
        OciError::msg(format!(
            "{what}: manifest.json is not a docker-archive manifest: {e}"
        ))
    })?;
    let tags_of = |e: &Entry| e.repo_tags.clone().unwrap_or_default();
    let entry = match pick {
        Some(p) => {
            let want = store::normalize_tag(p)?;
            entries
                .iter()
                .find(|e| {
                    tags_of(e)
                        .iter()
                        .any(|t| store::normalize_tag(t).ok().as_deref() == Some(want.as_str()))
                })
                .ok_or_else(|| OciError::msg(format!("{what} has no image tagged {p}")))?
        }
        None => match entries.as_slice() {
            [one] => one,
            [] => return Err(OciError::msg(format!("{what} holds no image"))),
            many => {
                let all: Vec<String> = many.iter().flat_map(tags_of).collect();
                return Err(OciError::msg(format!(
                    "{what} holds {} images: name one as FILE:NAME:TAG (it has: {})",
                    many.len(),
                    all.join(", ")
                )));
            }
        },
    };
    let config = src.read_small(&entry.config, MAX_CONFIG)?;
    if let Some(d) = named_digest(&entry.config) {
        check_blob(&config, &d, None)?;
    }
    let layers = entry
        .layers
        .iter()
        .map(|p| LayerBlob {
            path: p.clone(),
            digest: p
                .starts_with("blobs/sha256/")
                .then(|| named_digest(p))
                .flatten(),
            size: None,
        })
        .collect();
    Ok(ImageBlobs {
        config,
        layers,
        names: tags_of(entry),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_read_from_member_names() {
        let h = "ab".repeat(32);
        assert_eq!(
            named_digest(&format!("{h}.json")),
            Some(format!("sha256:{h}"))
        );
        assert_eq!(
            named_digest(&format!("blobs/sha256/{h}")),
            Some(format!("sha256:{h}"))
        );
        assert_eq!(named_digest(&format!("{h}/layer.tar")), None);
        assert_eq!(named_digest("config.json"), None);
    }
}
