//! `rbuild export IMAGE DIR[:NAME]`: an OCI image layout (image-spec image-layout.md) holding
//! the image's config (its stored bytes), one gzip blob per layer (the layer's own tar stream,
//! so the DiffIDs are the image's) and an image manifest named in `index.json` by
//! `org.opencontainers.image.ref.name`. A new folder is built beside its final name and
//! renamed into place; an existing layout gets the new blobs and its `index.json` replaced
//! atomically, the entry of the same name swapped. Kernel interfaces: rename(2), renameat2(2)
//! RENAME_NOREPLACE, fsync(2).

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{RenameFlags, CWD};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use store::Store;

use super::layout::ref_name_ok;
use super::load::config_diff_ids;
use super::stream::LayerStream;
use super::{media, OciError, REF_NAME};

/// Where an export goes: a folder and the name of the image in it.
#[derive(Debug, Clone)]
pub struct Target {
    pub dir: PathBuf,
    pub name: String,
}

impl Target {
    /// `DIR[:NAME]`: an existing DIR is taken whole; else the first `:` ends DIR (as
    /// containers/image's `oci:` transport reads it). NAME defaults to `latest`.
    pub fn parse(arg: &str) -> Result<Target, OciError> {
        let (dir, name) = match arg.split_once(':') {
            _ if Path::new(arg).exists() => (arg, "latest"),
            Some((d, n)) if !d.is_empty() => (d, n),
            _ => (arg, "latest"),
        };
        if !ref_name_ok(name) {
            return Err(OciError::msg(format!(
                "{name:?} is not a valid image name in a layout: letters and digits joined by - . _ : @ / +"
            )));
        }
        Ok(Target {
            dir: PathBuf::from(dir),
            name: name.to_string(),
        })
    }
}

/// A blob written into a layout: its digest hex and size.
#[derive(Debug, Clone)]
pub struct Blob {
    pub hex: String,
    pub size: u64,
}

/// A writer that hashes and counts what it writes.
pub struct HashWriter<W> {
    pub inner: W,
    hash: Sha256,
    pub len: u64,
}

impl<W: Write> HashWriter<W> {
    pub fn new(inner: W) -> HashWriter<W> {
        HashWriter {
            inner,
            hash: Sha256::new(),
            len: 0,
        }
    }

    pub fn hex(&self) -> String {
        store::digest::hex(&self.hash.clone().finalize())
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes layer `hex` gzip-compressed (deterministically: no name, no time) into the file
/// `path`; returns the blob. Fails, naming the layer, when its stream cannot be given back.
pub fn write_gzip_layer(store: &Store, hex: &str, path: &Path) -> Result<Blob, OciError> {
    let mut stream = LayerStream::open(store, hex)?;
    let f = File::create(path).map_err(OciError::io(path))?;
    let mut gz = flate2::GzBuilder::new().write(
        HashWriter::new(BufWriter::with_capacity(1 << 20, f)),
        flate2::Compression::default(),
    );
    io::copy(&mut stream, &mut gz).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::NotFound => OciError::msg(e.to_string()),
        _ => OciError::Io {
            path: path.to_path_buf(),
            source: e,
        },
    })?;
    stream.finish()?;
    let mut w = gz.finish().map_err(OciError::io(path))?;
    w.flush().map_err(OciError::io(path))?;
    Ok(Blob {
        hex: w.hex(),
        size: w.len,
    })
}

/// The layout being written: its folder (the staging one for a new layout) and the blobs
/// added, removed again if the export fails.
struct Writer {
    dir: PathBuf,
    added: Vec<PathBuf>,
}

impl Writer {
    fn blobs(&self) -> PathBuf {
        self.dir.join("blobs/sha256")
    }

    fn temp(&self) -> PathBuf {
        self.blobs().join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            store::files::nonce()
        ))
    }

    /// Moves the finished temp file `tmp` to its digest's name (an existing one is the same).
    fn keep(&mut self, tmp: &Path, b: &Blob) -> Result<(), OciError> {
        let dest = self.blobs().join(&b.hex);
        match rustix::fs::renameat_with(CWD, tmp, CWD, &dest, RenameFlags::NOREPLACE) {
            Ok(()) => {
                self.added.push(dest);
                Ok(())
            }
            Err(rustix::io::Errno::EXIST) => fs::remove_file(tmp).map_err(OciError::io(tmp)),
            Err(e) => Err(OciError::Io {
                path: dest,
                source: e.into(),
            }),
        }
    }

    fn bytes(&mut self, bytes: &[u8]) -> Result<Blob, OciError> {
        let tmp = self.temp();
        fs::write(&tmp, bytes).map_err(OciError::io(&tmp))?;
        let b = Blob {
            hex: store::digest::hex(&Sha256::digest(bytes)),
            size: bytes.len() as u64,
        };
        self.keep(&tmp, &b)?;
        Ok(b)
    }

    fn layer(&mut self, store: &Store, hex: &str) -> Result<Blob, OciError> {
        let tmp = self.temp();
        let r = write_gzip_layer(store, hex, &tmp);
        match r {
            Ok(b) => {
                self.keep(&tmp, &b)?;
                Ok(b)
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }
}

/// The OCI image manifest (compact JSON, keys sorted) of a config and gzip layers.
pub fn manifest_json(config: &Blob, layers: &[Blob]) -> Vec<u8> {
    let d = |m: &str, b: &Blob| json!({"mediaType": m, "digest": format!("sha256:{}", b.hex), "size": b.size});
    let v = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": d(media::OCI_CONFIG, config),
        "layers": layers.iter().map(|l| d(media::OCI_LAYER_GZIP, l)).collect::<Vec<_>>(),
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Exports image `image` to `t`; returns the manifest's digest hex.
pub fn export(store: &Store, image: &str, t: &Target) -> Result<String, OciError> {
    let hex = store.resolve_image_hex(image)?;
    let config = store.verified_config_bytes(&hex)?;
    let diffs = config_diff_ids(&config)?;
    for d in &diffs {
        drop(LayerStream::open(store, d)?); // one line before anything is written
    }
    let fresh = !t.dir.exists();
    let existing_index = if fresh { None } else { open_existing(&t.dir)? };
    let dir = if fresh {
        staging_beside(&t.dir)?
    } else {
        t.dir.clone()
    };
    let mut w = Writer {
        dir: dir.clone(),
        added: Vec::new(),
    };
    let res = (|| {
        fs::create_dir_all(w.blobs()).map_err(OciError::io(w.blobs()))?;
        let mut layers = Vec::new();
        for d in &diffs {
            layers.push(w.layer(store, d)?);
        }
        let cfg = w.bytes(&config)?;
        let m = manifest_json(&cfg, &layers);
        let mb = w.bytes(&m)?;
        write_index(&dir, existing_index.clone(), &t.name, &mb)?;
        if fresh {
            publish_new(&dir, &t.dir)?;
        }
        Ok(mb.hex)
    })();
    if res.is_err() {
        if fresh {
            let _ = store::remove_tree(&dir);
        } else {
            for p in &w.added {
                let _ = fs::remove_file(p);
            }
        }
    }
    res
}

/// The `index.json` of an existing layout (or None for an empty folder); anything else there
/// is refused rather than written into.
fn open_existing(dir: &Path) -> Result<Option<Value>, OciError> {
    if !dir.is_dir() {
        return Err(OciError::msg(format!(
            "{} exists and is not a folder",
            dir.display()
        )));
    }
    if !dir.join("oci-layout").is_file() {
        let empty = fs::read_dir(dir)
            .map_err(OciError::io(dir))?
            .next()
            .is_none();
        if empty {
            return Ok(None);
        }
        return Err(OciError::msg(format!(
            "{} exists and is not an OCI layout (no oci-layout file): give a new or empty folder",
            dir.display()
        )));
    }
    let p = dir.join("index.json");
    let bytes = super::read_limited(
        File::open(&p).map_err(OciError::io(&p))?,
        super::MAX_MANIFEST,
        &p.display().to_string(),
    )?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| OciError::msg(format!("{}: {e}", p.display())))?;
    Ok(Some(v))
}

fn staging_beside(dir: &Path) -> Result<PathBuf, OciError> {
    let name = dir
        .file_name()
        .ok_or_else(|| OciError::msg(format!("{}: not a folder name", dir.display())))?
        .to_string_lossy()
        .into_owned();
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let s = parent.join(format!(
        ".{name}.rbuild-{}-{}",
        std::process::id(),
        store::files::nonce()
    ));
    fs::create_dir(&s).map_err(OciError::io(&s))?;
    Ok(s)
}

/// Writes `oci-layout` (when missing) and `index.json` naming `manifest` `name`, replacing
/// an entry of that name.
fn write_index(
    dir: &Path,
    existing: Option<Value>,
    name: &str,
    manifest: &Blob,
) -> Result<(), OciError> {
    let marker = dir.join("oci-layout");
    if !marker.exists() {
        fs::write(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(OciError::io(&marker))?;
    }
    let mut index = existing.unwrap_or_else(|| json!({"schemaVersion": 2, "manifests": []}));
    if !index.is_object() {
        return Err(OciError::msg(format!(
            "{}/index.json is not a JSON object",
            dir.display()
        )));
    }
    index["mediaType"] = Value::from(media::OCI_INDEX);
    let mut list: Vec<Value> = index
        .get("manifests")
        .and_then(|m| m.as_array())
        .cloned()
        .unwrap_or_default();
    list.retain(|d| {
        d.pointer(&format!("/annotations/{}", REF_NAME.replace('/', "~1")))
            != Some(&Value::from(name))
    });
    list.push(json!({
        "mediaType": media::OCI_MANIFEST,
        "digest": format!("sha256:{}", manifest.hex),
        "size": manifest.size,
        "annotations": {REF_NAME: name},
    }));
    index["manifests"] = Value::from(list);
    let p = dir.join("index.json");
    let tmp = dir.join(format!(".index.json.{}", store::files::nonce()));
    let bytes = serde_json::to_vec(&index).unwrap_or_default();
    let res = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, &p)
    })();
    res.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        OciError::Io { path: p, source: e }
    })
}

/// Renames the finished staging folder to `dir`, which must still not exist.
fn publish_new(staging: &Path, dir: &Path) -> Result<(), OciError> {
    match rustix::fs::renameat_with(CWD, staging, CWD, dir, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(e) => Err(OciError::msg(format!(
            "{}: {} (it appeared while exporting?)",
            dir.display(),
            io::Error::from(e)
        ))),
    }
}
