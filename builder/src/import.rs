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

use crate::checksum::parse_checksum;
use crate::extract::{ExtractError, Extractor, Stats};
use crate::pipeline::{self, StreamDigests, StreamError};
use crate::tarsplit::{self, Recording, SplitHandle};
use store::files::{read_store_file, write_atomic, Durability};
use store::{IdMap, LayerMeta, Store, StoreError};

/// Where a layer comes from.
#[derive(Debug, Clone)]
pub enum Source {
    File(PathBuf),
    Dir(PathBuf),
    Url(String),
    /// bytes the caller hands over (an image's layer blob), described for `layer ls`
    Blob(String),
    /// a tar file rbuild wrote itself (a recipe's layer), read like `File` and recorded in
    /// layer.json as `name` instead of its passing path
    Built {
        path: PathBuf,
        name: String,
    },
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
            Source::File(p) | Source::Dir(p) => fs::canonicalize(p)
                .unwrap_or_else(|_| p.clone())
                .to_string_lossy()
                .into_owned(),
            Source::Url(u) | Source::Blob(u) => u.clone(),
            Source::Built { name, .. } => name.clone(),
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
    /// URL sources: the longest silence tolerated from the server (None: the default of
    /// `download::IDLE_TIMEOUT`); the body as a whole has no deadline
    pub idle_timeout: Option<std::time::Duration>,
    /// the DiffID (hex) the stream must have (an image config's `rootfs.diff_ids` entry)
    pub diff_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Added {
    /// `sha256:<hex>`
    pub diff_id: String,
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
    BadChecksumArg {
        algo: &'static str,
        value: String,
        len: usize,
    },
    #[error("{algo} mismatch: expected {want}, the input has {got}; nothing stored")]
    ChecksumMismatch {
        algo: &'static str,
        want: String,
        got: String,
    },
    #[error("blob sha256:{blob} holds layer sha256:{got}, but the image config says sha256:{want}; nothing stored")]
    DiffIdMismatch {
        blob: String,
        want: String,
        got: String,
    },
    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Download(#[from] crate::download::DownloadError),
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
        let tmp_times = rustix::fs::stat(&tmp)
            .ok()
            .map(|st| rustix::fs::Timestamps {
                last_access: rustix::fs::Timespec {
                    tv_sec: st.st_atime as _,
                    tv_nsec: st.st_atime_nsec as _,
                },
                last_modification: rustix::fs::Timespec {
                    tv_sec: st.st_mtime as _,
                    tv_nsec: st.st_mtime_nsec as _,
                },
            });
        let path = store.staging_path("layer");
        let mut b = fs::DirBuilder::new();
        b.mode(0o755);
        b.create(&path).map_err(|source| AddError::Staging {
            path: path.clone(),
            source,
        })?;
        let s = Staging {
            path,
            keep: false,
            tmp,
            tmp_times,
        };
        own_group(&s.path).map_err(|source| AddError::Staging {
            path: s.path.clone(),
            source,
        })?;
        b.create(s.path.join("rootfs"))
            .map_err(|source| AddError::Staging {
                path: s.path.clone(),
                source,
            })?;
        Ok(s)
    }
}

/// Gives the folder `dir`, just made, this process's group and clears its set-group-ID bit
/// where it got another group or the bit from a set-group-ID parent (mkdir(2): a store below
/// such a folder, shared by a group, is one). Everything extracted below it then gets this
/// process's group, the one a rootless container maps to its root group, instead of the
/// parent's, which it does not map: the image's folders would show as nogroup and overlayfs
/// would refuse to copy them up (EOVERFLOW, as when rrun makes /etc/resolv.conf). Rootless
/// Podman owns every file it extracts explicitly to the same effect.
fn own_group(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let egid = rustix::process::getegid();
    let m = fs::metadata(dir)?;
    if m.gid() != egid.as_raw() {
        rustix::fs::chown(dir, None, Some(egid))?;
    }
    if m.mode() & 0o2000 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(m.mode() & 0o755))?;
    }
    Ok(())
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.keep {
            if let Err(e) = store::remove_tree(&self.path) {
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
    let s = read_store_file(&blob_index_path(store, algo, hex)).ok()?;
    let s = String::from_utf8(s).ok()?;
    let id = store::digest::Digest::parse_sha256(s.trim())?;
    store.has_layer(&id).then_some(id)
}

fn record_blob(store: &Store, algo: &str, hex: &str, diff_hex: &str) {
    let p = blob_index_path(store, algo, hex);
    if read_store_file(&p)
        .map(|s| String::from_utf8_lossy(&s).trim() == format!("sha256:{diff_hex}"))
        .unwrap_or(false)
    {
        return;
    }
    if let Err(e) = write_atomic(
        &store.tmp_dir(),
        &p,
        format!("sha256:{diff_hex}\n").as_bytes(),
        Durability::Synced,
    ) {
        tracing::warn!("blob index: {e}");
    }
}

/// The expected checksums, validated: (sha256, sha512) as lowercase hex.
fn wanted_checksums(opts: &AddOptions) -> Result<(Option<String>, Option<String>), AddError> {
    let parse = |v: &Option<String>, algo: &'static str, len: usize| {
        v.as_deref()
            .map(|v| {
                parse_checksum(v, algo, len).ok_or(AddError::BadChecksumArg {
                    algo,
                    value: v.into(),
                    len,
                })
            })
            .transpose()
    };
    Ok((
        parse(&opts.sha256, "sha256", 64)?,
        parse(&opts.sha512, "sha512", 128)?,
    ))
}

/// The bytes of `source` as received; for a directory, also the thread serialising it.
type Input = (
    Box<dyn Read + Send>,
    Option<std::thread::JoinHandle<io::Result<()>>>,
);

fn open_input(source: &Source, opts: &AddOptions) -> Result<Input, AddError> {
    match source {
        Source::File(p) | Source::Built { path: p, .. } => {
            let f = fs::File::open(p).map_err(|source| AddError::Open {
                path: p.clone(),
                source,
            })?;
            if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
                return Err(AddError::Open {
                    path: p.clone(),
                    source: io::Error::other("is a directory"),
                });
            }
            Ok((Box::new(f), None))
        }
        Source::Dir(p) => {
            let (r, handle) =
                crate::dirtar::spawn(p, opts.source_date_epoch).map_err(|source| {
                    AddError::DirSource {
                        path: p.display().to_string(),
                        source,
                    }
                })?;
            Ok((Box::new(r), Some(handle)))
        }
        Source::Url(u) => Ok((
            crate::download::open(u, opts.progress, opts.idle_timeout)?,
            None,
        )),
        Source::Blob(d) => Err(AddError::Open {
            path: PathBuf::from(d),
            source: io::Error::other("a blob is handed over by its reader"),
        }),
    }
}

/// Streams `input` through the pipeline into `ex`, recording it in `split`; returns the
/// digests of what went through. Errors come in order of cause: a decoding error before the
/// tar error it caused.
fn extract_stream(
    input: Input,
    ex: &mut Extractor,
    split: &SplitHandle,
    staging: &Staging,
    source: &Source,
    want512: bool,
    want256: Option<&str>,
) -> Result<StreamDigests, AddError> {
    let (input, dir_writer) = input;
    let (mut reader, producer) =
        pipeline::start(input, true, want512).map_err(|source| AddError::Staging {
            path: staging.path.clone(),
            source,
        })?;
    ex.record_into(split.clone());
    let extracted = (|| {
        let mut rec = Recording::new(
            crate::guard::TarGuard::new(&mut reader),
            Some(split.clone()),
        );
        ex.extract_all(&mut tar::Archive::new(&mut rec))?;
        let end_seen = rec.inner.end_seen();
        // the rest (end-of-archive blocks, anything after them) is part of the DiffID and of
        // the record; reading from the channel never fails
        let _ = io::copy(&mut rec, &mut io::sink());
        drop(rec);
        if reader.consumed() == 0 {
            return Err(ExtractError::Empty);
        }
        if !end_seen {
            return Err(ExtractError::Truncated);
        }
        Ok(())
    })();
    if extracted.is_err() && want256.is_some() {
        // the whole blob is hashed, so that a corrupted one is reported as such (the cause)
        // rather than as the tar error its damage caused
        reader.drain();
    }
    drop(reader); // stops the producer if extraction ended early
    let produced = producer
        .join()
        .unwrap_or_else(|_| Err(StreamError::Read(io::Error::other("decoder thread failed"))));
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
    match (produced, extracted) {
        (Err(e), _) => Err(e.into()),
        (Ok(d), Err(e)) => match want256 {
            Some(w) if w != d.blob_sha256 => Err(AddError::ChecksumMismatch {
                algo: "sha256",
                want: w.to_string(),
                got: d.blob_sha256,
            }),
            _ => Err(e.into()),
        },
        (Ok(d), Ok(())) => Ok(d),
    }
}

/// Refuses the bytes as received unless they have the expected checksums.
fn verify(
    d: &StreamDigests,
    want256: Option<String>,
    want512: Option<String>,
) -> Result<(), AddError> {
    if let Some(w) = want256 {
        if w != d.blob_sha256 {
            return Err(AddError::ChecksumMismatch {
                algo: "sha256",
                want: w,
                got: d.blob_sha256.clone(),
            });
        }
    }
    if let (Some(w), Some(got)) = (want512, d.blob_sha512.clone()) {
        if w != got {
            return Err(AddError::ChecksumMismatch {
                algo: "sha512",
                want: w,
                got,
            });
        }
    }
    Ok(())
}

/// Writes layer.json into the staging folder and renames it to `layers/<DiffID>`; another
/// writer that published the same layer first wins (ours is dropped with the staging).
fn publish(
    store: &Store,
    mut staging: Staging,
    ex: &Extractor,
    d: &StreamDigests,
    source: &Source,
    split: &tarsplit::Outcome,
) -> Result<(), AddError> {
    let hex = &d.diff_id;
    let rootfs = staging.path.join("rootfs");
    let staging_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| AddError::Staging { path, source }
    };
    let tree = crate::tree::tree_digest(&rootfs, &ex.contents).map_err(staging_err(&rootfs))?;
    let privilege = crate::userns::privilege();
    let meta = LayerMeta {
        diff_id: format!("sha256:{hex}"),
        size: d.size,
        source: source.describe(),
        blob_sha256: d.blob_sha256.clone(),
        blob_sha512: d.blob_sha512.clone(),
        compression: match source {
            Source::Dir(_) => "directory".to_string(),
            _ => d
                .compression
                .map(|c| c.name().to_string())
                .unwrap_or_default(),
        },
        tree_digest: format!("sha256:{tree}"),
        rootless: privilege != crate::userns::Privilege::Root,
        id_map: (privilege == crate::userns::Privilege::UserNs).then(|| {
            let (uid, gid) = crate::userns::id_maps();
            IdMap { uid, gid }
        }),
        tar_split: match split {
            tarsplit::Outcome::Kept(d) => Some(d.clone()),
            tarsplit::Outcome::Lost(_) => None,
        },
        tar_split_lost: match split {
            tarsplit::Outcome::Lost(why) => Some(why.clone()),
            tarsplit::Outcome::Kept(_) => None,
        },
    };
    let mut json =
        serde_json::to_vec_pretty(&meta).map_err(|e| staging_err(&staging.path)(e.into()))?;
    json.push(b'\n');
    fs::write(staging.path.join("layer.json"), json).map_err(staging_err(&staging.path))?;
    let dest = store.layer_dir(hex);
    match rustix::fs::renameat_with(CWD, &staging.path, CWD, &dest, RenameFlags::NOREPLACE) {
        Ok(()) => {
            staging.keep = true;
            Ok(())
        }
        Err(Errno::EXIST | Errno::NOTEMPTY) => Ok(()),
        Err(e) => Err(AddError::Staging {
            path: dest,
            source: e.into(),
        }),
    }
}

/// Gives an existing layer imported before rbuild kept tar streams the record just made for
/// it (best effort: the layer stays usable without one).
fn adopt_split(store: &Store, hex: &str, staging: &Staging, split: &tarsplit::Outcome) {
    let tarsplit::Outcome::Kept(digest) = split else {
        return;
    };
    let Ok(mut meta) = store.layer_meta(hex) else {
        return;
    };
    if meta.tar_split.is_some() {
        return;
    }
    let dest = store.tar_split_path(hex);
    let from = staging.path.join(tarsplit::FILE);
    if rustix::fs::renameat_with(CWD, &from, CWD, &dest, RenameFlags::NOREPLACE).is_err() {
        return;
    }
    meta.tar_split = Some(digest.clone());
    meta.tar_split_lost = None;
    let p = store.layer_dir(hex).join("layer.json");
    if let Ok(mut json) = serde_json::to_vec_pretty(&meta) {
        json.push(b'\n');
        if let Err(e) = write_atomic(&store.tmp_dir(), &p, &json, Durability::Synced) {
            tracing::warn!("layer sha256:{hex}: {e}");
        }
    }
}

/// Imports `source` as a layer. Prints nothing; the caller prints the returned DiffID.
pub fn add_layer(store: &Store, source: &Source, opts: &AddOptions) -> Result<Added, AddError> {
    let (want256, want512) = wanted_checksums(opts)?;
    // what an interrupted earlier run left (best effort: gc reports failures)
    let _ = store.clean_stale_staging();
    if let Source::Url(_) = source {
        let known = want256
            .as_deref()
            .and_then(|h| lookup_blob(store, "sha256", h))
            .or_else(|| {
                want512
                    .as_deref()
                    .and_then(|h| lookup_blob(store, "sha512", h))
            });
        if let Some(id) = known {
            tracing::info!("blob already stored as layer sha256:{id}: not downloading");
            return Ok(Added {
                diff_id: format!("sha256:{id}"),
                stats: Stats::default(),
            });
        }
    }
    let input = open_input(source, opts)?;
    add_input(store, source, input, opts)
}

/// Imports the bytes `input` (an image's layer blob, described by `describe`) as a layer:
/// the same pipeline as `layer add`, `opts.sha256` being the blob's digest.
pub fn add_blob(
    store: &Store,
    describe: &str,
    input: Box<dyn Read + Send>,
    opts: &AddOptions,
) -> Result<Added, AddError> {
    add_input(
        store,
        &Source::Blob(describe.to_string()),
        (input, None),
        opts,
    )
}

fn add_input(
    store: &Store,
    source: &Source,
    input: Input,
    opts: &AddOptions,
) -> Result<Added, AddError> {
    let (want256, want512) = wanted_checksums(opts)?;
    let staging = Staging::new(store)?;
    let rootfs = staging.path.join("rootfs");
    let rootfd = rustix::fs::openat(
        CWD,
        &rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| AddError::Staging {
        path: rootfs.clone(),
        source: e.into(),
    })?;
    let mut ex = Extractor::new(rootfd, crate::userns::privilege());
    let split_path = staging.path.join(tarsplit::FILE);
    let split = SplitHandle::create(&split_path).map_err(|source| AddError::Staging {
        path: split_path.clone(),
        source,
    })?;
    let digests = extract_stream(
        input,
        &mut ex,
        &split,
        &staging,
        source,
        want512.is_some(),
        want256.as_deref(),
    )?;
    verify(&digests, want256, want512)?;
    if let Some(want) = &opts.diff_id {
        if *want != digests.diff_id {
            return Err(AddError::DiffIdMismatch {
                blob: digests.blob_sha256.clone(),
                want: want.clone(),
                got: digests.diff_id.clone(),
            });
        }
    }
    ex.finish()?;
    let outcome = split
        .finish(&split_path)
        .map_err(|source| AddError::Staging {
            path: split_path.clone(),
            source,
        })?;
    if !store.has_layer(&digests.diff_id) {
        publish(store, staging, &ex, &digests, source, &outcome)?;
    } else {
        adopt_split(store, &digests.diff_id, &staging, &outcome);
    }
    if !matches!(source, Source::Dir(_)) {
        record_blob(store, "sha256", &digests.blob_sha256, &digests.diff_id);
        if let Some(s) = &digests.blob_sha512 {
            record_blob(store, "sha512", s, &digests.diff_id);
        }
    }
    Ok(Added {
        diff_id: format!("sha256:{}", digests.diff_id),
        stats: ex.stats.clone(),
    })
}
