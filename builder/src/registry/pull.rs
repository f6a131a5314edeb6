//! `rbuild pull REF`: the manifest (by tag or pinned digest; through an index to this
//! machine's platform or `--platform`'s), the config and the layers a store lacks, every one
//! checked against its digest and size before anything is stored; the config kept byte for
//! byte, its sha256 the ImageID. Layers already in the store (by DiffID) are not fetched.
//! No kernel interface of its own.

use std::io::Read;
use std::sync::Mutex;

use store::Store;

use super::client::{Client, ConnOptions};
use super::reference::Reference;
use crate::oci::layout::check_platform;
use crate::oci::load::{self, LayerBlob, LoadOptions};
use crate::oci::manifest::{self, layer_media_ok, Parsed, Platform};
use crate::oci::source::BlobSource;
use crate::oci::{check_blob, read_limited, sha256_hex, Exact, OciError, MAX_CONFIG};

#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    pub platform: Option<Platform>,
    pub conn: ConnOptions,
    pub progress: bool,
}

/// Blobs of one repository on a registry, for [`load::load`].
struct RegistrySource {
    client: Mutex<Client>,
    name: String,
}

impl BlobSource for RegistrySource {
    fn open(&self, digest: &str) -> Result<Box<dyn Read + Send>, OciError> {
        self.client
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .blob(digest)
    }

    fn describe(&self) -> String {
        format!("docker://{}", self.name)
    }

    fn has(&self, _: &str) -> bool {
        true
    }
}

/// The manifest `d` (from an index) fetched by digest and checked.
fn fetch_manifest(c: &mut Client, digest: &str, size: Option<u64>) -> Result<Vec<u8>, OciError> {
    let (bytes, _, _) = c.manifest(digest)?;
    check_blob(&bytes, digest, size)?;
    Ok(bytes)
}

/// The top manifest of `r`, checked against the pinned digest or the digest the registry
/// announced; and its media type.
fn top_manifest(c: &mut Client, r: &Reference) -> Result<(Vec<u8>, Option<String>), OciError> {
    let (bytes, ctype, announced) = c.manifest(&r.manifest_ref())?;
    if let Some(d) = &r.digest {
        check_blob(&bytes, d, None)?;
    } else if let Some(d) = announced.filter(|d| d.starts_with("sha256:")) {
        check_blob(&bytes, &d, None).map_err(|_| {
            OciError::msg(format!(
                "manifest {r}: the registry announced digest {d}, but the manifest it sent has another; nothing stored"
            ))
        })?;
    }
    Ok((bytes, ctype))
}

/// Pulls `reference`; returns the ImageID hex.
pub fn pull(store: &Store, reference: &str, o: &PullOptions) -> Result<String, OciError> {
    let r = Reference::parse(reference)?;
    let mut c = Client::connect(r.api_host(), &r.repo, false, &o.conn)?;
    let (mut bytes, ctype) = top_manifest(&mut c, &r)?;
    let mut hint = ctype;
    let mut from_index = false;
    let m = loop {
        let what = format!("manifest of {r}");
        match manifest::parse(&bytes, hint.as_deref(), &what)? {
            Parsed::Image(m) => break m,
            Parsed::Index(_) if from_index => {
                return Err(OciError::msg(format!("{what}: an index inside an index")))
            }
            Parsed::Index(list) => {
                let want = o.platform.clone().unwrap_or_else(Platform::host);
                let d = manifest::pick(&list, &want, &format!("the index of {r}"))?;
                let digest = d.digest().to_string();
                sha256_hex(&digest, "a manifest")?;
                if d.size() > crate::oci::MAX_MANIFEST {
                    return Err(OciError::msg(format!(
                        "manifest {digest} claims {} bytes: too large, refused",
                        d.size()
                    )));
                }
                bytes = fetch_manifest(&mut c, &digest, Some(d.size()))?;
                hint = Some(d.media_type().to_string());
                from_index = true;
            }
        }
    };
    let cd = m.config().digest().to_string();
    if m.config().size() > MAX_CONFIG {
        return Err(OciError::msg(format!(
            "config {cd} claims {} bytes, more than {MAX_CONFIG}: refused",
            m.config().size()
        )));
    }
    let config = read_limited(
        Exact::new(c.blob(&cd)?, m.config().size(), &cd),
        MAX_CONFIG,
        &format!("config {cd}"),
    )?;
    check_blob(&config, &cd, Some(m.config().size()))?;
    if let (Some(p), false) = (&o.platform, from_index) {
        check_platform(&config, p)?;
    }
    let mut layers = Vec::new();
    for l in m.layers() {
        layer_media_ok(l.media_type().as_ref())?;
        layers.push(LayerBlob {
            path: l.digest().to_string(),
            digest: Some(l.digest().to_string()),
            size: Some(l.size()),
        });
    }
    let src = RegistrySource {
        client: Mutex::new(c),
        name: format!("{}/{}", r.registry, r.repo),
    };
    let lo = LoadOptions {
        tags: r.local_tag().into_iter().collect(),
        progress: o.progress,
        verify_present: false,
        jobs: 3,
    };
    load::load(store, &config, &layers, &src, &lo)
}
