//! `layer add`: one streaming pass from a source (file, directory, URL) to a published layer:
//! staging under `<root>/tmp/`, checksums verified, then renameat2(RENAME_NOREPLACE) to
//! `layers/<DiffID>`; any failure removes the staging folder (a Drop guard).
//! Kernel interfaces: openat(2), renameat2(2) (see rename(2)), plus what extract.rs drives.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, RenameFlags, CWD};
use rustix::io::Errno;

use crate::digest::parse_checksum;
use crate::extract::{ExtractError, Extractor, Stats};
use crate::pipeline::{self, StreamError};
use crate::store::{write_atomic, LayerMeta, Store, StoreError};

/// Where a layer comes from.
#[derive(Debug, Clone)]
pub enum Source {
    File(PathBuf),
    Dir(PathBuf),
    Url(String),
}

impl Source {
    /// `http(s)://...` is a URL, an existing directory a directory, anything else a file.
    pub fn parse(s: &str) -> Source {
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            Source::Url(s.to_string())
        } else if Path::new(s).is_dir() {
            Source::Dir(PathBuf::from(s))
        } else {
            Source::File(PathBuf::from(s))
        }
    }

    fn describe(&self) -> String {
        match self {
            Source::File(p) | Source::Dir(p) => {
                fs::canonicalize(p).unwrap_or_else(|_| p.clone()).to_string_lossy().into_owned()
            }
            Source::Url(u) => u.clone(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct AddOptions {
    /// expected sha256 of the bytes as received (hex, optionally `sha256:`)
    pub sha256: Option<String>,
    /// expected sha512 of the bytes as received
    pub sha512: Option<String>,
    /// draw a progress bar for downloads (only when stderr is a terminal)
    pub progress: bool,
    /// directory sources: clamp mtimes to this (SOURCE_DATE_EPOCH); None clamps to 0
    pub source_date_epoch: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Added {
    /// `sha256:<hex>`
    pub diff_id: String,
    /// false when the layer was already stored
    pub created: bool,
    /// true when a URL was not fetched because its checksum was already known
    pub cached: bool,
    pub stats: Stats,
}

#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error(transparent)]
    Extract(#[from] ExtractError),
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("--{algo} {value:?} is not {len} hex digits")]
    BadChecksumArg { algo: &'static str, value: String, len: usize },
    #[error("{algo} mismatch: expected {want}, the input has {got}; nothing stored")]
    ChecksumMismatch { algo: &'static str, want: String, got: String },
    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("download failed: {0}")]
    Download(String),
    #[error("reading directory {path}: {source}")]
    DirSource { path: String, source: io::Error },
    #[error("staging {path}: {source}")]
    Staging { path: PathBuf, source: io::Error },
}

/// A staging folder in `<root>/tmp/`, removed on drop unless published.
struct Staging {
    path: PathBuf,
    keep: bool,
    /// tmp/ and its times before the staging folder was made, put back after a failure so the
    /// store is left exactly as it was
    tmp: PathBuf,
    tmp_times: Option<rustix::fs::Timestamps>,
}

impl Staging {
    fn new(store: &Store) -> Result<Staging, AddError> {
        let tmp = store.tmp_dir();
        let tmp_times = rustix::fs::stat(&tmp).ok().map(|st| rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec { tv_sec: st.st_atime as _, tv_nsec: st.st_atime_nsec as _ },
            last_modification: rustix::fs::Timespec { tv_sec: st.st_mtime as _, tv_nsec: st.st_mtime_nsec as _ },
        });
        let path = tmp.join(format!("layer-{}-{}", std::process::id(), crate::util::nonce()));
        let mut b = fs::DirBuilder::new();
        b.mode(0o755);
        b.create(&path).map_err(|source| AddError::Staging { path: path.clone(), source })?;
        let s = Staging { path, keep: false, tmp, tmp_times };
        b.create(s.path.join("rootfs")).map_err(|source| AddError::Staging { path: s.path.clone(), source })?;
        Ok(s)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.keep {
            if let Err(e) = crate::util::remove_tree(&self.path) {
                tracing::warn!("could not remove staging {}: {e}", self.path.display());
            } else if let Some(ts) = &self.tmp_times {
                let _ = rustix::fs::utimensat(CWD, &self.tmp, ts, rustix::fs::AtFlags::empty());
            }
        }
    }
}

fn blob_index_path(store: &Store, algo: &str, hex: &str) -> PathBuf {
    store.blobs_dir().join(format!("{algo}-{hex}"))
}

/// The DiffID (hex) a received blob with this checksum gave before, if that layer is still here.
pub fn lookup_blob(store: &Store, algo: &str, hex: &str) -> Option<String> {
    let s = fs::read_to_string(blob_index_path(store, algo, hex)).ok()?;
    let id = crate::digest::Digest::parse_sha256(s.trim())?;
    store.has_layer(&id).then_some(id)
}

fn record_blob(store: &Store, algo: &str, hex: &str, diff_hex: &str) {
    let p = blob_index_path(store, algo, hex);
    if fs::read_to_string(&p).map(|s| s.trim() == format!("sha256:{diff_hex}")).unwrap_or(false) {
        return;
    }
    if let Err(e) = write_atomic(&store.tmp_dir(), &p, format!("sha256:{diff_hex}\n").as_bytes()) {
        tracing::warn!("blob index: {e}");
    }
}

/// Imports `source` as a layer. Prints nothing; the caller prints the returned DiffID.
pub fn add_layer(store: &Store, source: &Source, opts: &AddOptions) -> Result<Added, AddError> {
    let want256 = opts
        .sha256
        .as_deref()
        .map(|v| parse_checksum(v, "sha256", 64).ok_or(AddError::BadChecksumArg { algo: "sha256", value: v.into(), len: 64 }))
        .transpose()?;
    let want512 = opts
        .sha512
        .as_deref()
        .map(|v| parse_checksum(v, "sha512", 128).ok_or(AddError::BadChecksumArg { algo: "sha512", value: v.into(), len: 128 }))
        .transpose()?;
    let privilege = crate::userns::privilege();
    let rootless = privilege != crate::userns::Privilege::Root;
    // what an interrupted earlier run left (best effort: gc reports failures)
    let _ = crate::maint::clean_stale_staging(store);

    if let Source::Url(_) = source {
        let known = want256
            .as_deref()
            .and_then(|h| lookup_blob(store, "sha256", h))
            .or_else(|| want512.as_deref().and_then(|h| lookup_blob(store, "sha512", h)));
        if let Some(id) = known {
            tracing::info!("blob already stored as layer sha256:{id}: not downloading");
            return Ok(Added { diff_id: format!("sha256:{id}"), created: false, cached: true, stats: Stats::default() });
        }
    }

    let mut dir_writer = None;
    let input: Box<dyn Read + Send> = match source {
        Source::File(p) => {
            let f = fs::File::open(p).map_err(|source| AddError::Open { path: p.clone(), source })?;
            if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
                return Err(AddError::Open { path: p.clone(), source: io::Error::other("is a directory") });
            }
            Box::new(f)
        }
        Source::Dir(p) => {
            let (r, handle) = crate::dirtar::spawn(p, opts.source_date_epoch)
                .map_err(|source| AddError::DirSource { path: p.display().to_string(), source })?;
            dir_writer = Some(handle);
            Box::new(r)
        }
        Source::Url(u) => crate::download::open(u, opts.progress)?,
    };

    let staging = Staging::new(store)?;
    let rootfs = staging.path.join("rootfs");
    let rootfd = rustix::fs::openat(CWD, &rootfs, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| AddError::Staging { path: rootfs.clone(), source: e.into() })?;
    let (mut reader, producer) = pipeline::start(input, true, want512.is_some())
        .map_err(|source| AddError::Staging { path: staging.path.clone(), source })?;
    let mut ex = Extractor::new(rootfd, privilege);
    let extracted = (|| {
        let last_end = {
            let mut ar = tar::Archive::new(crate::guard::TarGuard::new(&mut reader));
            ex.extract_all(&mut ar)?
        };
        if reader.consumed() == 0 {
            return Err(ExtractError::Empty);
        }
        if reader.consumed() <= last_end {
            return Err(ExtractError::Truncated);
        }
        reader.drain();
        Ok(())
    })();
    drop(reader); // stops the producer if extraction ended early
    let produced = producer.join().unwrap_or_else(|_| Err(StreamError::Read(io::Error::other("decoder thread failed"))));
    if let Some(h) = dir_writer {
        if let Ok(Err(e)) = h.join() {
            if e.kind() != io::ErrorKind::BrokenPipe || extracted.is_ok() {
                let path = match source {
                    Source::Dir(p) => p.display().to_string(),
                    _ => String::new(),
                };
                return Err(AddError::DirSource { path, source: e });
            }
        }
    }
    // a decoding error explains a tar error that followed it: report it first
    let digests = match (produced, extracted) {
        (Err(e), _) => return Err(e.into()),
        (Ok(_), Err(e)) => return Err(e.into()),
        (Ok(d), Ok(())) => d,
    };
    if let Some(w) = want256 {
        if w != digests.blob_sha256 {
            return Err(AddError::ChecksumMismatch { algo: "sha256", want: w, got: digests.blob_sha256 });
        }
    }
    if let (Some(w), Some(got)) = (want512, digests.blob_sha512.clone()) {
        if w != got {
            return Err(AddError::ChecksumMismatch { algo: "sha512", want: w, got });
        }
    }
    ex.finish()?;
    let hex = digests.diff_id.clone();
    let stats = ex.stats.clone();
    let mut created = false;
    if !store.has_layer(&hex) {
        let tree = crate::tree::tree_digest(&rootfs, &ex.contents)
            .map_err(|source| AddError::Staging { path: rootfs.clone(), source })?;
        let meta = LayerMeta {
            diff_id: format!("sha256:{hex}"),
            size: digests.size,
            source: source.describe(),
            blob_sha256: digests.blob_sha256.clone(),
            blob_sha512: digests.blob_sha512.clone(),
            compression: match source {
                Source::Dir(_) => "directory".to_string(),
                _ => digests.compression.map(|c| c.name().to_string()).unwrap_or_default(),
            },
            tree_digest: format!("sha256:{tree}"),
            rootless,
            id_map: (privilege == crate::userns::Privilege::UserNs).then(|| {
                let (uid, gid) = crate::userns::id_maps();
                crate::store::IdMap { uid, gid }
            }),
        };
        let mut json = serde_json::to_vec_pretty(&meta).map_err(|e| AddError::Staging { path: staging.path.clone(), source: e.into() })?;
        json.push(b'\n');
        fs::write(staging.path.join("layer.json"), json)
            .map_err(|source| AddError::Staging { path: staging.path.clone(), source })?;
        let dest = store.layer_dir(&hex);
        match rustix::fs::renameat_with(CWD, &staging.path, CWD, &dest, RenameFlags::NOREPLACE) {
            Ok(()) => {
                let mut staging = staging;
                staging.keep = true;
                created = true;
            }
            // another writer published the same layer first: ours is dropped
            Err(Errno::EXIST | Errno::NOTEMPTY) => {}
            Err(e) => return Err(AddError::Staging { path: dest, source: e.into() }),
        }
    }
    if !matches!(source, Source::Dir(_)) {
        record_blob(store, "sha256", &digests.blob_sha256, &hex);
        if let Some(s) = &digests.blob_sha512 {
            record_blob(store, "sha512", s, &hex);
        }
    }
    Ok(Added { diff_id: format!("sha256:{hex}"), created, cached: false, stats })
}
