//! `rbuild import PATH[:REF]`: tells what PATH holds (an OCI layout folder, a docker-archive,
//! or an OCI layout in a tar) and loads the image it names into the store. No kernel
//! interface of its own (see source.rs).

use store::Store;

use super::layout::{self, split_existing, ImageBlobs};
use super::load::{self, LoadOptions};
use super::manifest::Platform;
use super::source::{BlobSource, DirSource, TarSource};
use super::{archive, OciError};

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub platform: Option<Platform>,
    /// NAME[:TAG]s to give the image, besides the names the source gives it
    pub tags: Vec<String>,
    pub progress: bool,
}

/// Imports the image at `arg`; returns its ImageID hex.
pub fn import(store: &Store, arg: &str, o: &ImportOptions) -> Result<String, OciError> {
    let (path, name) = split_existing(arg).ok_or_else(|| {
        OciError::msg(format!(
            "{arg}: no such folder or file (an OCI layout DIR[:NAME] or a docker-archive FILE[:NAME:TAG])"
        ))
    })?;
    let (src, blobs): (Box<dyn BlobSource>, ImageBlobs) = if path.is_dir() {
        let src = DirSource::open(&path)?;
        let blobs = layout::read_image(&src, name.as_deref(), o.platform.as_ref())?;
        (Box::new(src), blobs)
    } else {
        let src = TarSource::open(&path)?;
        if src.has("manifest.json") {
            let blobs = archive::read_image(&src, name.as_deref())?;
            (Box::new(src), blobs)
        } else if src.has("index.json") {
            let src = src.as_oci_archive();
            let blobs = layout::read_image(&src, name.as_deref(), o.platform.as_ref())?;
            (Box::new(src), blobs)
        } else {
            return Err(OciError::msg(format!(
                "{}: neither a docker-archive (manifest.json) nor an OCI layout (index.json)",
                path.display()
            )));
        }
    };
    let mut tags = o.tags.clone();
    for n in &blobs.names {
        match store::normalize_tag(n) {
            Ok(t) => tags.push(t),
            Err(e) => tracing::warn!("not tagging the image {n:?}: {e}"),
        }
    }
    let lo = LoadOptions {
        tags,
        progress: o.progress,
        verify_present: true,
        jobs: 1,
    };
    load::load(store, &blobs.config, &blobs.layers, src.as_ref(), &lo)
}
