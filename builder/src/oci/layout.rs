//! Reading an OCI image layout (image-spec image-layout.md), from a folder or a tar: its
//! `oci-layout` marker, `index.json`, the image named by `org.opencontainers.image.ref.name`
//! (or the only one), through nested indexes to one platform's manifest, its config and its
//! layers; every manifest and config checked against its descriptor (digest and size) before
//! it is parsed. Also the `PATH[:REF]` arguments of import and export. No kernel interface of
//! its own (see source.rs).

use std::path::{Path, PathBuf};

use oci_spec::image::Descriptor;

use super::load::LayerBlob;
use super::manifest::{self, layer_media_ok, Parsed, Platform};
use super::source::{blob_path, BlobSource};
use super::{check_blob, sha256_hex, OciError, MAX_CONFIG, MAX_MANIFEST, REF_NAME};

/// An image read from a layout or an archive: its config as received and its layers.
pub struct ImageBlobs {
    pub config: Vec<u8>,
    pub layers: Vec<LayerBlob>,
    /// names the source gives the image (a docker-archive's RepoTags)
    pub names: Vec<String>,
}

/// `PATH[:REF]` of an existing path: the whole argument when it exists, else the part before
/// the first `:` after which the rest is the reference (as containers/image's `oci:` does).
pub fn split_existing(arg: &str) -> Option<(PathBuf, Option<String>)> {
    if Path::new(arg).exists() {
        return Some((PathBuf::from(arg), None));
    }
    let (p, r) = arg.split_once(':')?;
    (Path::new(p).exists() && !r.is_empty()).then(|| (PathBuf::from(p), Some(r.to_string())))
}

/// Whether `s` may name an image in a layout: image-spec's grammar for
/// `org.opencontainers.image.ref.name`, alphanumeric runs joined by `-._:@/+`.
pub fn ref_name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.split(['-', '.', '_', ':', '@', '/', '+'])
            .all(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Reads the image `name` (or the only one) of the layout in `src`, for `platform` (default:
/// this machine's) when the layout holds an index.
pub fn read_image(
    src: &dyn BlobSource,
    name: Option<&str>,
    platform: Option<&Platform>,
) -> Result<ImageBlobs, OciError> {
    let marker = src.read_small("oci-layout", 4096)?;
    let v: serde_json::Value = serde_json::from_slice(&marker).unwrap_or_default();
    if v.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
        return Err(OciError::msg(format!(
            "{}: oci-layout is not {{\"imageLayoutVersion\": \"1.0.0\"}}",
            src.describe()
        )));
    }
    let index = src.read_small("index.json", MAX_MANIFEST)?;
    let what = format!("{} index.json", src.describe());
    let Parsed::Index(list) = manifest::parse(&index, Some(super::media::OCI_INDEX), &what)? else {
        return Err(OciError::msg(format!("{what} is not an image index")));
    };
    let top = choose(&list, name, &src.describe())?;
    let names = top
        .annotations()
        .as_ref()
        .and_then(|a| a.get("io.containerd.image.name").cloned())
        .into_iter()
        .collect();
    let (config, layers) = resolve(src, top, platform, 0)?;
    Ok(ImageBlobs {
        config,
        layers,
        names,
    })
}

/// The entry of `index.json` named `name`, or its only one.
fn choose<'a>(
    list: &'a [Descriptor],
    name: Option<&str>,
    what: &str,
) -> Result<&'a Descriptor, OciError> {
    let ref_of = |d: &Descriptor| {
        d.annotations()
            .as_ref()
            .and_then(|a| a.get(REF_NAME).cloned())
    };
    let names: Vec<String> = list.iter().filter_map(ref_of).collect();
    match name {
        Some(n) => list
            .iter()
            .find(|d| ref_of(d).as_deref() == Some(n))
            .ok_or_else(|| {
                OciError::msg(format!(
                    "{what} has no image named {n:?} (it has: {})",
                    if names.is_empty() {
                        "none with a name".into()
                    } else {
                        names.join(", ")
                    }
                ))
            }),
        None if list.len() == 1 => Ok(&list[0]),
        None if list.is_empty() => Err(OciError::msg(format!("{what} holds no image"))),
        None => Err(OciError::msg(format!(
            "{what} holds {} images: name one as PATH:NAME (it has: {})",
            list.len(),
            names.join(", ")
        ))),
    }
}

/// Reads and checks the blob of descriptor `d` of at most `max` bytes.
fn read_blob(src: &dyn BlobSource, d: &Descriptor, max: u64) -> Result<Vec<u8>, OciError> {
    let digest = d.digest().to_string();
    let hex = sha256_hex(&digest, "a descriptor")?;
    if d.size() > max {
        return Err(OciError::msg(format!(
            "blob {digest} claims {} bytes, more than the {max} allowed for a {}",
            d.size(),
            d.media_type()
        )));
    }
    let bytes = src.read_small(&blob_path(&hex), max)?;
    check_blob(&bytes, &digest, Some(d.size()))?;
    Ok(bytes)
}

/// Follows `d` through indexes (at most two deep) to one image: its config and layers.
fn resolve(
    src: &dyn BlobSource,
    d: &Descriptor,
    platform: Option<&Platform>,
    depth: usize,
) -> Result<(Vec<u8>, Vec<LayerBlob>), OciError> {
    let bytes = read_blob(src, d, MAX_MANIFEST)?;
    let what = format!("manifest {}", d.digest());
    match manifest::parse(&bytes, Some(d.media_type().as_ref()), &what)? {
        Parsed::Index(list) if depth < 2 => {
            let want = platform.cloned().unwrap_or_else(Platform::host);
            let pick = manifest::pick(&list, &want, &format!("index {}", d.digest()))?;
            resolve(src, pick, Some(&want), depth + 1)
        }
        Parsed::Index(_) => Err(OciError::msg(format!(
            "{what}: indexes nested more than two deep"
        ))),
        Parsed::Image(m) => {
            let config = read_blob(src, m.config(), MAX_CONFIG)?;
            if let (Some(p), 0) = (platform, depth) {
                check_platform(&config, p)?;
            }
            let mut layers = Vec::new();
            for l in m.layers() {
                layer_media_ok(l.media_type().as_ref())?;
                let digest = l.digest().to_string();
                layers.push(LayerBlob {
                    path: blob_path(&sha256_hex(&digest, "a layer")?),
                    digest: Some(digest),
                    size: Some(l.size()),
                });
            }
            Ok((config, layers))
        }
    }
}

/// An image that is not in an index must be of the platform asked for with `--platform`.
pub fn check_platform(config: &[u8], want: &Platform) -> Result<(), OciError> {
    let v: serde_json::Value = serde_json::from_slice(config).unwrap_or_default();
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let (os, arch, variant) = (s("os"), s("architecture"), s("variant"));
    let variant = (!variant.is_empty()).then_some(variant.as_str());
    if want.accepts(&os, &arch, variant) {
        return Ok(());
    }
    Err(OciError::msg(format!(
        "the image is for {os}/{arch}{}, not {want}",
        variant.map(|v| format!("/{v}")).unwrap_or_default()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_names_follow_the_spec_grammar() {
        for ok in [
            "latest",
            "3.15",
            "docker.io/library/alpine:3.15",
            "a+b",
            "x@y",
        ] {
            assert!(ref_name_ok(ok), "{ok}");
        }
        for bad in ["", "-a", "a//b", "a b", "a:", "../x"] {
            assert!(!ref_name_ok(bad), "{bad}");
        }
    }
}
