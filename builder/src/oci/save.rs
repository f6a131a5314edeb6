//! `rbuild save IMAGE FILE`: a docker-archive, as `docker save` and `podman save` write it
//! and `docker load`, `podman load` and skopeo's `docker-archive:` read it: `manifest.json`,
//! `<ImageID hex>.json` (the config as stored), `<DiffID hex>.tar` per layer (the layer's own
//! tar stream, uncompressed); no legacy `repositories` (loaders read manifest.json). Written to a temporary file beside
//! FILE and renamed over it once complete. Kernel interfaces: rename(2), fsync(2).

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use serde_json::json;
use store::Store;

use super::load::config_diff_ids;
use super::stream::LayerStream;
use super::OciError;

fn header(path: &str, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    let _ = h.set_path(path);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    h
}

fn append_bytes<W: Write>(b: &mut tar::Builder<W>, path: &str, data: &[u8]) -> std::io::Result<()> {
    b.append(&header(path, data.len() as u64), data)
}

/// The tags of image `hex` (NAME:TAG) in the store.
fn tags_of(store: &Store, hex: &str) -> Vec<String> {
    let want = format!("sha256:{hex}");
    store
        .tags()
        .map(|t| {
            t.into_iter()
                .filter(|(_, id)| *id == want)
                .map(|(n, _)| n)
                .collect()
        })
        .unwrap_or_default()
}

/// Saves image `image` into the docker-archive `file`.
pub fn save(store: &Store, image: &str, file: &Path) -> Result<(), OciError> {
    let hex = store.resolve_image_hex(image)?;
    let config = store.verified_config_bytes(&hex)?;
    let diffs = config_diff_ids(&config)?;
    for d in &diffs {
        drop(LayerStream::open(store, d)?);
    }
    let name = file
        .file_name()
        .ok_or_else(|| OciError::msg(format!("{}: not a file name", file.display())))?
        .to_string_lossy()
        .into_owned();
    let tmp = file.with_file_name(format!(".{name}.rbuild-{}", store::files::nonce()));
    let res = (|| {
        let f = File::create(&tmp).map_err(OciError::io(&tmp))?;
        let mut b = tar::Builder::new(BufWriter::with_capacity(1 << 20, f));
        let io = |e| OciError::Io {
            path: tmp.clone(),
            source: e,
        };
        append_bytes(&mut b, &format!("{hex}.json"), &config).map_err(io)?;
        let mut layers = Vec::new();
        for d in &diffs {
            let mut s = LayerStream::open(store, d)?;
            let path = format!("{d}.tar");
            b.append(&header(&path, s.size), &mut s)
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::InvalidData => OciError::msg(e.to_string()),
                    _ => io(e),
                })?;
            s.finish()?;
            layers.push(path);
        }
        let tags = tags_of(store, &hex);
        let manifest =
            json!([{"Config": format!("{hex}.json"), "RepoTags": tags, "Layers": layers}]);
        append_bytes(
            &mut b,
            "manifest.json",
            &serde_json::to_vec(&manifest).unwrap_or_default(),
        )
        .map_err(io)?;
        let mut w = b.into_inner().map_err(io)?;
        w.flush().map_err(io)?;
        w.get_ref().sync_all().map_err(io)?;
        fs::rename(&tmp, file).map_err(OciError::io(file))
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}
