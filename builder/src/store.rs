//! The content-addressed store: `layers/<DiffID hex>/`, `images/<ImageID hex>/`, `tags.json`,
//! `containers/` (rrun's), `blobs/` (received-blob digest -> DiffID index) and `tmp/` (staging).
//! Kernel interfaces: plain files, rename(2)/renameat2(2) RENAME_NOREPLACE for atomic publication
//! and flock(2) for the store lock and the tags lock (see the man pages of the same names).
//!
//! # Privacy
//!
//! The store is private to its owner: the root folder is created mode 0700, and `layers/`,
//! `images/`, `containers/`, `blobs/` and `tmp/` are made 0700 whenever the store is opened (a
//! layer may hold setuid-root programs, and rrun's state holds `-e` values). The owner (root,
//! or the rootless user) reaches everything; overlay mounts read the lowerdirs with the
//! mounter's credentials from descriptors or paths rrun opens as that owner, so 0700 costs
//! them nothing.
//!
//! # Store lock: the protocol between rbuild and rrun
//!
//! `<root>/store.lock` is flock(2)ed:
//! - **shared** by rrun from before it resolves an image ([`Store::resolve_image`]) until the
//!   container's `state.json` naming that image is in place (written atomically) or the
//!   attempt is abandoned; by `rbuild image create` while it checks its layers and writes the
//!   image ([`Store::lock_shared`]);
//! - **exclusive** by `rbuild image rm`, `layer rm` and `gc` around their check-then-remove
//!   ([`Store::lock_exclusive`]; they give up with one line after [`LOCK_WAIT`]).
//!
//! So a removal either finishes before rrun resolves (rrun then reports the image missing), or
//! starts after the container's state names the image (the removal then refuses, see
//! [`crate::containers`]); it never runs between rrun's resolve and its mounts. Other commands
//! (`layer add`, `image tag`, `fsck`, listings) take no store lock: they never remove a layer
//! or an image (`tags.json` has its own lock, `tags.lock`).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::image::ImageConfiguration;
use serde::{Deserialize, Serialize};

use crate::digest::{is_hex, Digest};
use crate::lock::FileLock;

/// Errors of store operations. Messages are lowercase, name the object and, where one exists,
/// the fix.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("image {0:?} not found (see `rbuild image ls`)")]
    ImageNotFound(String),
    #[error("image prefix {0:?} is ambiguous: give more digits")]
    AmbiguousImage(String),
    #[error("layer {0:?} not found (see `rbuild layer ls`)")]
    LayerNotFound(String),
    #[error("layer prefix {0:?} is ambiguous: give more digits")]
    AmbiguousLayer(String),
    #[error("{0:?} is not a valid reference: use sha256:<64 hex>, a hex prefix of at least 12 digits, or NAME[:TAG]")]
    InvalidReference(String),
    #[error("{tag:?} is not a valid tag: {why}")]
    InvalidTag { tag: String, why: TagProblem },
    #[error("image {image}: its config.json does not match its id (it hashes to sha256:{got}): the store was modified; see `rbuild fsck`, then remove the image and create it again")]
    ConfigMismatch { image: String, got: String },
    #[error("{path}: corrupt store entry: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "image {image} is used by container {container}: remove the container first (`rrun rm`)"
    )]
    ImageInUse { image: String, container: String },
    #[error("layer {layer} is used by image {image}: remove the image first (`rbuild image rm`)")]
    LayerInUse { layer: String, image: String },
    #[error("the store is busy: {path} stayed locked for {secs} s by another rbuild or rrun; try again when it has finished")]
    Busy { path: PathBuf, secs: u64 },
    #[error("{image} mixes layers extracted as root ({root}) and without privileges ({rootless}): overlayfs reads the whiteouts of one kind only; use layers added in one mode (all as root, or all rootless)")]
    MixedLayerModes {
        image: String,
        root: String,
        rootless: String,
    },
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { path, source }
    }
}

/// The default store root: `/var/lib/rbox` when the effective uid is 0, else
/// `$XDG_DATA_HOME/rbox` (`~/.local/share/rbox`). `RBOX_ROOT` is the CLIs' business.
pub fn default_root() -> PathBuf {
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/rbox");
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| Path::new(x).is_absolute()) {
        return PathBuf::from(x).join("rbox");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"));
    home.join(".local/share/rbox")
}

/// An image resolved to what a runtime needs.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// `sha256:<64 hex>`
    pub id: String,
    pub config: ImageConfiguration,
    /// The layers' `rootfs` folders, bottom first (`rootfs.diff_ids` order).
    pub lowerdirs: Vec<PathBuf>,
    /// How every one of its layers was extracted (an image never mixes the two).
    pub mode: LayerMode,
}

/// How a layer was extracted, which decides the overlayfs metadata it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerMode {
    /// As real root: owners kept, device nodes, whiteouts as 0/0 character devices and
    /// `trusted.overlay.opaque`. Needs an overlay mounted by real root (no `userxattr`).
    Root,
    /// Without privileges (`layer.json` `"rootless": true`, with or without subordinate ids):
    /// `user.overlay.*` whiteouts and opaque markers. Needs an overlay with `userxattr` (the
    /// one a user namespace mounts); a root overlay would ignore them and deleted files would
    /// reappear.
    Rootless,
}

impl LayerMode {
    pub fn of(meta: &LayerMeta) -> LayerMode {
        if meta.rootless {
            LayerMode::Rootless
        } else {
            LayerMode::Root
        }
    }
}

/// How long [`Store::lock_exclusive`] waits for the store lock before giving up.
pub const LOCK_WAIT: Duration = Duration::from_secs(30);

/// The store lock (see the module docs), held until dropped.
pub struct StoreLock {
    _lock: FileLock,
}

/// What `layers/<hex>/layer.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LayerMeta {
    pub diff_id: String,
    /// Bytes of the uncompressed tar stream.
    pub size: u64,
    pub source: String,
    /// sha256 of the bytes as received (compressed or not).
    pub blob_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob_sha512: Option<String>,
    /// `gzip`, `zstd`, `tar` or `directory`.
    #[serde(default)]
    pub compression: String,
    /// sha256 of the canonical listing of the extracted tree (see `tree.rs`); `fsck` recomputes it.
    pub tree_digest: String,
    /// Extracted without privileges: device nodes skipped, `user.overlay.*` xattrs; owners
    /// collapsed to the user unless `id_map` is set.
    #[serde(default)]
    pub rootless: bool,
    /// Extracted in a user namespace with subordinate ids: its maps (`inside:outside:count`,
    /// comma separated). A runtime maps the same ranges to show the image's owners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_map: Option<IdMap>,
}

/// uid and gid maps of a user-namespace extraction, as in /proc/self/uid_map.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IdMap {
    pub uid: String,
    pub gid: String,
}

/// A handle on a store root.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

pub(crate) const SUBDIRS: [&str; 5] = ["layers", "images", "containers", "blobs", "tmp"];

impl Store {
    /// Opens the store at `root`, creating it (mode 0700) and its folders if missing. Folders
    /// of ours that others could enter (a store made by an older rbuild) are made 0700 again;
    /// an existing root is left as it is (it may be a folder the user chose to share).
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let root = if root.is_absolute() {
            root.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(StoreError::io(root))?
                .join(root)
        };
        let mut b = fs::DirBuilder::new();
        b.recursive(true).mode(0o700);
        if !root.is_dir() {
            b.create(&root).map_err(StoreError::io(&root))?;
        }
        let euid = rustix::process::geteuid().as_raw();
        for sub in SUBDIRS {
            let p = root.join(sub);
            match fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() && m.uid() == euid && m.mode() & 0o077 != 0 => {
                    fs::set_permissions(&p, fs::Permissions::from_mode(m.mode() & 0o700))
                        .map_err(StoreError::io(&p))?;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    b.create(&p).map_err(StoreError::io(&p))?
                }
                Err(e) => return Err(StoreError::Io { path: p, source: e }),
            }
        }
        Ok(Store { root })
    }

    fn lock_path(&self) -> PathBuf {
        self.root.join("store.lock")
    }

    /// Takes the store lock shared, waiting as long as an exclusive holder (a removal) runs.
    /// rrun holds it from before `resolve_image` until the container's state.json names the
    /// image (see the module docs).
    pub fn lock_shared(&self) -> Result<StoreLock, StoreError> {
        Ok(StoreLock {
            _lock: FileLock::shared(&self.lock_path())?,
        })
    }

    /// Takes the store lock exclusive (`image rm`, `layer rm`, `gc`), waiting at most
    /// [`LOCK_WAIT`] for shared holders (rrun starting containers) to finish.
    pub fn lock_exclusive(&self) -> Result<StoreLock, StoreError> {
        let path = self.lock_path();
        let started = Instant::now();
        loop {
            if let Some(l) = FileLock::try_exclusive(&path)? {
                return Ok(StoreLock { _lock: l });
            }
            if started.elapsed() >= LOCK_WAIT {
                return Err(StoreError::Busy {
                    path,
                    secs: LOCK_WAIT.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/containers`, owned by rrun.
    pub fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    pub fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    pub fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs")
    }

    /// `<root>/layers/<hex>`
    pub fn layer_dir(&self, hex: &str) -> PathBuf {
        self.layers_dir().join(hex)
    }

    /// `<root>/images/<hex>`
    pub fn image_dir(&self, hex: &str) -> PathBuf {
        self.images_dir().join(hex)
    }

    fn tags_path(&self) -> PathBuf {
        self.root.join("tags.json")
    }

    /// Hex ids of the entries of `layers/` or `images/` (only well-formed names), sorted.
    fn list_ids(dir: &Path) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir).map_err(StoreError::io(dir))? {
            let e = e.map_err(StoreError::io(dir))?;
            if let Some(name) = e.file_name().to_str() {
                if name.len() == 64 && is_hex(name) {
                    out.push(name.to_string());
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Hex DiffIDs of the stored layers, sorted.
    pub fn layer_ids(&self) -> Result<Vec<String>, StoreError> {
        Self::list_ids(&self.layers_dir())
    }

    /// Hex ImageIDs of the stored images, sorted.
    pub fn image_ids(&self) -> Result<Vec<String>, StoreError> {
        Self::list_ids(&self.images_dir())
    }

    pub fn has_layer(&self, hex: &str) -> bool {
        self.layer_dir(hex).join("layer.json").is_file()
    }

    pub fn layer_meta(&self, hex: &str) -> Result<LayerMeta, StoreError> {
        let p = self.layer_dir(hex).join("layer.json");
        let bytes = crate::util::read_store_file(&p).map_err(StoreError::io(&p))?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            path: p,
            reason: e.to_string(),
        })
    }

    /// The path of image `hex`'s config.json.
    fn config_path(&self, hex: &str) -> PathBuf {
        self.image_dir(hex).join("config.json")
    }

    /// True when image `hex` has a config.json of any kind (reading it says what is wrong with
    /// one that is not a regular file).
    pub fn has_image(&self, hex: &str) -> bool {
        fs::symlink_metadata(self.config_path(hex)).is_ok()
    }

    /// The stored config bytes of an image.
    pub fn image_config_bytes(&self, hex: &str) -> Result<Vec<u8>, StoreError> {
        let p = self.config_path(hex);
        crate::util::read_store_file(&p).map_err(StoreError::io(&p))
    }

    /// The stored config bytes of image `hex`, once they are known to hash to `hex` (else
    /// [`StoreError::ConfigMismatch`]).
    pub fn verified_config_bytes(&self, hex: &str) -> Result<Vec<u8>, StoreError> {
        use sha2::Digest as _;
        let bytes = self.image_config_bytes(hex)?;
        let got = crate::digest::hex(&sha2::Sha256::digest(&bytes));
        if got != hex {
            return Err(StoreError::ConfigMismatch {
                image: format!("sha256:{hex}"),
                got,
            });
        }
        Ok(bytes)
    }

    /// The config of image `hex`, parsed only once its bytes are known to hash to `hex`.
    pub fn verified_config(&self, hex: &str) -> Result<ImageConfiguration, StoreError> {
        let bytes = self.verified_config_bytes(hex)?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            path: self.config_path(hex),
            reason: e.to_string(),
        })
    }

    /// The config of image `hex` as stored, NOT checked against its id: for listings and fsck
    /// only; anything that acts on a config or hands it on uses [`Store::verified_config`].
    pub fn image_config(&self, hex: &str) -> Result<ImageConfiguration, StoreError> {
        let bytes = self.image_config_bytes(hex)?;
        let p = self.config_path(hex);
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            path: p,
            reason: e.to_string(),
        })
    }

    /// Resolves an image reference (`NAME[:TAG]`, looked up first, then `sha256:<64hex>` or a
    /// unique hex prefix of >= 12 digits with or without `sha256:`) to its id, config, lowerdirs
    /// and layer mode. The config's bytes must hash to the image id (else
    /// [`StoreError::ConfigMismatch`]: nothing runs a config changed behind the store's back). An
    /// image whose layers were extracted in both modes is refused ([`StoreError::MixedLayerModes`]).
    /// rrun calls it under [`Store::lock_shared`].
    pub fn resolve_image(&self, reference: &str) -> Result<ResolvedImage, StoreError> {
        let hex = self.resolve_image_hex(reference)?;
        let config = self.verified_config(&hex)?;
        let mut lowerdirs = Vec::new();
        let mut layers = Vec::new();
        for d in config.rootfs().diff_ids() {
            let lhex = Digest::parse_sha256(d).ok_or_else(|| StoreError::Corrupt {
                path: self.config_path(&hex),
                reason: format!("bad diff_id {d:?}"),
            })?;
            if !self.has_layer(&lhex) {
                return Err(StoreError::Corrupt {
                    path: self.image_dir(&hex),
                    reason: format!(
                        "layer sha256:{lhex} is missing (re-add it with `rbuild layer add`)"
                    ),
                });
            }
            lowerdirs.push(self.layer_dir(&lhex).join("rootfs"));
            layers.push(lhex);
        }
        let mode = self.common_mode(&format!("image sha256:{hex}"), &layers)?;
        Ok(ResolvedImage {
            id: format!("sha256:{hex}"),
            config,
            lowerdirs,
            mode,
        })
    }

    /// The one mode all `layers` (hex DiffIDs) were extracted in; `image` names the image in
    /// the error when they differ (`image sha256:...`, `the new image`). No layers: root.
    pub fn common_mode(&self, image: &str, layers: &[String]) -> Result<LayerMode, StoreError> {
        let (mut root, mut rootless) = (None, None);
        for l in layers {
            let slot = match LayerMode::of(&self.layer_meta(l)?) {
                LayerMode::Root => &mut root,
                LayerMode::Rootless => &mut rootless,
            };
            slot.get_or_insert_with(|| format!("sha256:{l}"));
        }
        match (root, rootless) {
            (Some(root), Some(rootless)) => Err(StoreError::MixedLayerModes {
                image: image.to_string(),
                root,
                rootless,
            }),
            (None, Some(_)) => Ok(LayerMode::Rootless),
            _ => Ok(LayerMode::Root),
        }
    }

    /// Resolves an image reference to the hex ImageID of a stored image. A tag is looked up
    /// first, then an id prefix (as Docker does), so no tag, even one written by an older
    /// rbuild that would be refused today, can make a name stand for another image's id. A
    /// reference starting with `sha256:` is an id only.
    pub fn resolve_image_hex(&self, reference: &str) -> Result<String, StoreError> {
        let r = reference.trim();
        if r.starts_with("sha256:") {
            let prefix =
                hex_prefix(r).ok_or_else(|| StoreError::InvalidReference(r.to_string()))?;
            return self.image_by_prefix(r, &prefix);
        }
        if let Some((key, hex)) = self.lookup_tag(r)? {
            if !self.has_image(&hex) {
                return Err(StoreError::Corrupt {
                    path: self.tags_path(),
                    reason: format!(
                        "tag {key} points at missing image sha256:{hex} (`rbuild image rm {key}` drops the tag)"
                    ),
                });
            }
            return Ok(hex);
        }
        if let Some(prefix) = hex_prefix(r) {
            return self.image_by_prefix(r, &prefix);
        }
        normalize_tag(r)?; // a malformed reference is told why
        Err(StoreError::ImageNotFound(r.to_string()))
    }

    /// The one stored image whose hex id starts with `prefix`.
    fn image_by_prefix(&self, r: &str, prefix: &str) -> Result<String, StoreError> {
        let ids = self.image_ids()?;
        let mut hits = ids.iter().filter(|id| id.starts_with(prefix));
        match (hits.next(), hits.next()) {
            (Some(id), None) => Ok(id.clone()),
            (None, _) => Err(StoreError::ImageNotFound(r.to_string())),
            (Some(_), Some(_)) => Err(StoreError::AmbiguousImage(r.to_string())),
        }
    }

    /// The tag `reference` names, as stored (NAME[:TAG], `:latest` added when TAG is missing;
    /// looked up as written, not validated, so an old odd tag is still found), and the hex id of
    /// the image it points at (which may be missing); None when no such tag exists.
    pub fn lookup_tag(&self, reference: &str) -> Result<Option<(String, String)>, StoreError> {
        let key = tag_key(reference);
        let tags = self.tags()?;
        let Some(id) = tags.get(&key) else {
            return Ok(None);
        };
        let hex = Digest::parse_sha256(id).ok_or_else(|| StoreError::Corrupt {
            path: self.tags_path(),
            reason: format!("tag {key} points at {id:?}"),
        })?;
        Ok(Some((key, hex)))
    }

    /// Resolves a layer reference (`sha256:<64hex>` or a unique hex prefix of >= 12 digits).
    pub fn resolve_layer_hex(&self, reference: &str) -> Result<String, StoreError> {
        let r = reference.trim();
        let prefix = hex_prefix(r).ok_or_else(|| StoreError::InvalidReference(r.to_string()))?;
        let ids = self.layer_ids()?;
        let hits: Vec<&String> = ids.iter().filter(|id| id.starts_with(&prefix)).collect();
        match hits.len() {
            1 => Ok(hits[0].clone()),
            0 => Err(StoreError::LayerNotFound(r.to_string())),
            _ => Err(StoreError::AmbiguousLayer(r.to_string())),
        }
    }

    /// The tags file: `NAME:TAG` -> `sha256:<hex>`.
    pub fn tags(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let p = self.tags_path();
        match crate::util::read_store_file(&p) {
            Ok(b) if b.is_empty() => Ok(BTreeMap::new()),
            Ok(b) => serde_json::from_slice(&b).map_err(|e| StoreError::Corrupt {
                path: p,
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(StoreError::Io { path: p, source: e }),
        }
    }

    /// Changes tags.json under an exclusive lock and replaces it atomically.
    pub fn update_tags<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, String>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _lock = FileLock::exclusive(&self.root.join("tags.lock"))?;
        let mut tags = self.tags()?;
        let before = tags.clone();
        let out = f(&mut tags)?;
        if tags != before {
            let mut bytes = serde_json::to_vec_pretty(&tags).map_err(|e| StoreError::Corrupt {
                path: self.tags_path(),
                reason: e.to_string(),
            })?;
            bytes.push(b'\n');
            write_atomic(&self.tmp_dir(), &self.tags_path(), &bytes)?;
        }
        Ok(out)
    }

    /// Points `tag` (NAME[:TAG], TAG defaults to latest) at the image `hex`.
    pub fn set_tag(&self, tag: &str, hex: &str) -> Result<String, StoreError> {
        let tag = normalize_tag(tag)?;
        self.update_tags(|t| {
            t.insert(tag.clone(), format!("sha256:{hex}"));
            Ok(())
        })?;
        Ok(tag)
    }

    /// Tags that point at the image `hex`, sorted.
    pub fn tags_of(&self, hex: &str) -> Result<Vec<String>, StoreError> {
        let want = format!("sha256:{hex}");
        Ok(self
            .tags()?
            .into_iter()
            .filter(|(_, v)| *v == want)
            .map(|(k, _)| k)
            .collect())
    }

    /// Containers (folder names, sorted) whose state.json names the image `hex`: see
    /// [`crate::containers::using_image`], the one place that reads rrun's state.
    pub fn containers_using(&self, hex: &str) -> Result<Vec<String>, StoreError> {
        crate::containers::using_image(&self.containers_dir(), &format!("sha256:{hex}"))
    }

    /// Images (hex, sorted) whose rootfs lists the layer `hex`. A config that does not hash to
    /// its id is refused ([`StoreError::ConfigMismatch`]): it cannot tell which layers are used.
    pub fn images_using_layer(&self, hex: &str) -> Result<Vec<String>, StoreError> {
        let want = format!("sha256:{hex}");
        let mut out = Vec::new();
        for id in self.image_ids()? {
            let cfg = self.verified_config(&id)?;
            if cfg.rootfs().diff_ids().contains(&want) {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// Makes a store entry disappear atomically (rename into tmp/), then deletes it.
    pub(crate) fn remove_entry(&self, path: &Path) -> Result<(), StoreError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let grave = self.tmp_dir().join(format!(
            "rm-{}-{}-{}",
            std::process::id(),
            crate::util::nonce(),
            name
        ));
        fs::rename(path, &grave).map_err(StoreError::io(path))?;
        crate::util::remove_tree(&grave).map_err(StoreError::io(&grave))
    }
}

/// `sha256:<hex>` or a bare hex string of 12..=64 digits -> the lowercase hex prefix.
fn hex_prefix(r: &str) -> Option<String> {
    let h = r.strip_prefix("sha256:").unwrap_or(r);
    if (12..=64).contains(&h.len()) && is_hex(&h.to_ascii_lowercase()) {
        Some(h.to_ascii_lowercase())
    } else {
        None
    }
}

/// NAME[:TAG] with `:latest` added when TAG is missing, as tags.json keys it. TAG is what
/// follows the last `:` unless a `/` comes after it (then the `:` was a registry port). No
/// validation: lookups find whatever tags.json holds.
pub fn tag_key(s: &str) -> String {
    match s.rfind(':') {
        Some(i) if !s[i + 1..].contains('/') => s.to_string(),
        _ => format!("{s}:latest"),
    }
}

/// Why a NAME[:TAG] is refused (the texts list exactly what the check allows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagProblem {
    EmptyName,
    NameTooLong,
    BadComponent(String),
    BadHost(String),
    BadTag(String),
    LooksLikeId,
    DigestName,
}

impl std::fmt::Display for TagProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TagProblem::EmptyName => write!(f, "the NAME is empty"),
            TagProblem::NameTooLong => write!(f, "the NAME is longer than {MAX_NAME} characters"),
            TagProblem::BadComponent(c) => write!(
                f,
                "NAME component {c:?} must be lowercase letters a-z and digits, with one . _ __ or a run of - between them (components are separated by /)"
            ),
            TagProblem::BadHost(h) => write!(
                f,
                "registry {h:?} must be letters, digits and - in dot-separated parts, with an optional :PORT"
            ),
            TagProblem::BadTag(t) => write!(
                f,
                "TAG {t:?} must be 1 to {MAX_TAG} letters, digits, _ . and -, not starting with . or -"
            ),
            TagProblem::LooksLikeId => write!(
                f,
                "a NAME of 12 to 64 hex digits would read as an image id prefix: add a letter beyond f, or a separator"
            ),
            TagProblem::DigestName => write!(
                f,
                "the NAME sha256 would read as an image id (sha256:<hex>)"
            ),
        }
    }
}

/// Longest NAME (Docker's limit) and TAG.
const MAX_NAME: usize = 255;
const MAX_TAG: usize = 128;

/// `[a-z0-9]+` runs separated by one `.`, `_`, `__` or a run of `-` (Docker's path component).
fn path_component_ok(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// A registry host: dot-separated parts of letters, digits and inner `-`, then `:PORT`.
fn host_ok(h: &str) -> bool {
    let (host, port) = match h.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (h, None),
    };
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.bytes().all(|x| x.is_ascii_alphanumeric() || x == b'-')
            && !p.starts_with('-')
            && !p.ends_with('-')
    };
    host.split('.').all(part_ok)
        && port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|x| x.is_ascii_digit()))
}

/// Validates NAME[:TAG] (Docker's reference grammar: see [`TagProblem`]) and adds `:latest`
/// when TAG is missing. NAME may start with a registry `HOST[:PORT]/` (a first component with
/// a `.` or a `:`, or `localhost`). A NAME of 12 to 64 hex digits is refused: it would read
/// as an image id prefix.
pub fn normalize_tag(s: &str) -> Result<String, StoreError> {
    let bad = |why| StoreError::InvalidTag {
        tag: s.to_string(),
        why,
    };
    let (name, tag) = match s.rfind(':') {
        Some(i) if !s[i + 1..].contains('/') => (&s[..i], &s[i + 1..]),
        _ => (s, "latest"),
    };
    let tag_ok = (1..=MAX_TAG).contains(&tag.len())
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        && !tag.starts_with(['.', '-']);
    if name.is_empty() {
        return Err(bad(TagProblem::EmptyName));
    }
    if name.len() > MAX_NAME {
        return Err(bad(TagProblem::NameTooLong));
    }
    let mut comps: Vec<&str> = name.split('/').collect();
    if comps.len() > 1 && (comps[0].contains(['.', ':']) || comps[0] == "localhost") {
        let host = comps.remove(0);
        if !host_ok(host) {
            return Err(bad(TagProblem::BadHost(host.to_string())));
        }
    }
    if let Some(c) = comps.iter().find(|c| !path_component_ok(c)) {
        return Err(bad(TagProblem::BadComponent(c.to_string())));
    }
    if !tag_ok {
        return Err(bad(TagProblem::BadTag(tag.to_string())));
    }
    if (12..=64).contains(&name.len()) && is_hex(name) {
        return Err(bad(TagProblem::LooksLikeId));
    }
    if name == "sha256" {
        return Err(bad(TagProblem::DigestName));
    }
    Ok(format!("{name}:{tag}"))
}

/// Writes `bytes` to `dest` through a file in `tmp` and rename(2): readers see old or new.
pub(crate) fn write_atomic(tmp: &Path, dest: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let t = tmp.join(format!(
        "w-{}-{}-{}",
        std::process::id(),
        crate::util::nonce(),
        dest.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let res = (|| {
        let mut f = fs::File::create(&t)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&t, dest)
    })();
    if res.is_err() {
        let _ = fs::remove_file(&t);
    }
    res.map_err(StoreError::io(dest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_default_to_latest_and_keep_registry_ports() {
        assert_eq!(normalize_tag("alpine").unwrap(), "alpine:latest");
        assert_eq!(normalize_tag("alpine:3.15").unwrap(), "alpine:3.15");
        assert_eq!(
            normalize_tag("localhost:5000/a/b").unwrap(),
            "localhost:5000/a/b:latest"
        );
        assert_eq!(
            normalize_tag("localhost:5000/a:v1").unwrap(),
            "localhost:5000/a:v1"
        );
        assert!(normalize_tag("").is_err());
        assert!(normalize_tag("a:").is_err());
        assert!(normalize_tag("a b").is_err());
        assert!(normalize_tag("sha256:abc").is_err());
    }

    #[test]
    fn tags_follow_the_reference_grammar() {
        for ok in [
            "a",
            "a0",
            "my-app_x/sub__part.y/a---b:V1.0_rc-2",
            "my.app",
            "registry.example:5000/team/app:1",
            "localhost/app",
            "Registry.Example/app", // a host may have capitals, as in Docker
            "abcdef01234g",         // not hex: a name
            "abcdef01234",          // 11 hex digits: shorter than an id prefix
            "abc/abcdef012345",     // an id-like component below a name is no id
        ] {
            assert!(normalize_tag(ok).is_ok(), "{ok}");
        }
        let why = |s: &str| match normalize_tag(s) {
            Err(StoreError::InvalidTag { why, .. }) => why,
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(why(""), TagProblem::EmptyName);
        assert_eq!(why(":v1"), TagProblem::EmptyName);
        assert_eq!(why(&"a".repeat(256)), TagProblem::NameTooLong);
        for bad in [
            "UPPER", "a:b:c", "a/../b", ".a", "a.", "a..b", "a___b", "-a", "a b", "a/", "/a",
            "a//b", "a.-b", "é",
        ] {
            assert!(
                matches!(why(bad), TagProblem::BadComponent(_)),
                "{bad}: {:?}",
                why(bad)
            );
        }
        assert!(matches!(why("bad_host.x:99/a"), TagProblem::BadHost(_)));
        assert!(
            matches!(why("../x"), TagProblem::BadHost(_)),
            "a first part with . is a host"
        );
        assert!(matches!(why("h.x:port/a"), TagProblem::BadHost(_)));
        for bad in ["a:", "a:.x", "a:-x", "a:x!"] {
            assert!(matches!(why(bad), TagProblem::BadTag(_)), "{bad}");
        }
        assert!(matches!(
            why(&format!("a:{}", "t".repeat(129))),
            TagProblem::BadTag(_)
        ));
        assert!(normalize_tag(&format!("a:{}", "t".repeat(128))).is_ok());
        for id_like in ["0123456789ab", "2a7a132d0b86:v1", &"f".repeat(64)] {
            assert_eq!(why(id_like), TagProblem::LooksLikeId, "{id_like}");
        }
        assert_eq!(why("sha256:abc"), TagProblem::DigestName);
        // the message lists what the check allows
        let msg = normalize_tag("UPPER").unwrap_err().to_string();
        assert!(
            msg.contains("lowercase letters a-z and digits, with one . _ __ or a run of -"),
            "{msg}"
        );
    }

    #[test]
    fn tag_keys_add_latest_unless_a_tag_is_given() {
        assert_eq!(tag_key("a"), "a:latest");
        assert_eq!(tag_key("a:b:c"), "a:b:c");
        assert_eq!(tag_key("h:5000/a"), "h:5000/a:latest");
        assert_eq!(tag_key("UPPER"), "UPPER:latest");
    }

    #[test]
    fn resolve_image_gives_config_and_lowerdirs_bottom_first() {
        let dir = std::env::temp_dir().join(format!(
            "rbuild-unit-{}-{}",
            std::process::id(),
            crate::util::nonce()
        ));
        let store = Store::open(&dir).unwrap();
        let (a, b, c) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
        for (l, rootless) in [(&a, false), (&b, false), (&c, true)] {
            fake_layer(&store, l, rootless);
        }
        let o = crate::image::ImageOptions {
            cmd: vec!["/bin/sh".into()],
            ..Default::default()
        };
        let id = crate::image::create(
            &store,
            &[format!("sha256:{b}"), a[..12].to_string()],
            &o,
            &["x:1".into()],
        )
        .unwrap();
        for r in [
            format!("sha256:{id}"),
            id[..12].to_string(),
            format!("sha256:{}", &id[..20]),
            "x:1".into(),
        ] {
            let img = store.resolve_image(&r).unwrap();
            assert_eq!(img.id, format!("sha256:{id}"));
            assert_eq!(
                img.lowerdirs,
                vec![
                    store.layer_dir(&b).join("rootfs"),
                    store.layer_dir(&a).join("rootfs")
                ]
            );
            let cmd = img.config.config().as_ref().and_then(|c| c.cmd().clone());
            assert_eq!(cmd, Some(vec!["/bin/sh".to_string()]));
            assert_eq!(img.mode, LayerMode::Root);
        }
        let rl = crate::image::create(&store, &[format!("sha256:{c}")], &o, &[]).unwrap();
        assert_eq!(store.resolve_image(&rl).unwrap().mode, LayerMode::Rootless);
        assert!(matches!(
            store.resolve_image("x"),
            Err(StoreError::ImageNotFound(_))
        ));
        assert!(matches!(
            store.resolve_image("sha256:abc"),
            Err(StoreError::InvalidReference(_))
        ));
        assert_eq!(store.containers_dir(), dir.join("containers"));
        fs::remove_dir_all(&dir).unwrap();
    }

    fn fake_layer(store: &Store, hex: &str, rootless: bool) {
        fs::create_dir_all(store.layer_dir(hex).join("rootfs")).unwrap();
        let meta = LayerMeta {
            diff_id: format!("sha256:{hex}"),
            size: 0,
            source: "unit".into(),
            blob_sha256: hex.into(),
            blob_sha512: None,
            compression: "tar".into(),
            tree_digest: String::new(),
            rootless,
            id_map: None,
        };
        fs::write(
            store.layer_dir(hex).join("layer.json"),
            serde_json::to_vec(&meta).unwrap(),
        )
        .unwrap();
    }

    #[test]
    fn images_mixing_root_and_rootless_layers_are_refused() {
        let dir = std::env::temp_dir().join(format!(
            "rbuild-unit-{}-{}",
            std::process::id(),
            crate::util::nonce()
        ));
        let store = Store::open(&dir).unwrap();
        let (r, u) = ("d".repeat(64), "e".repeat(64));
        fake_layer(&store, &r, false);
        fake_layer(&store, &u, true);
        let o = crate::image::ImageOptions::default();
        let e = crate::image::create(&store, &[r.clone(), u.clone()], &o, &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("the new image mixes layers extracted as root (sha256:dddd")
                && e.contains("(sha256:eeee"),
            "{e}"
        );
        assert!(store.image_ids().unwrap().is_empty(), "nothing was written");
        // an image written by hand (or by an older rbuild) is refused when resolved
        let cfg = crate::image::build_config(&[r, u], &o).unwrap();
        let (bytes, id) = crate::image::config_bytes(&cfg).unwrap();
        crate::image::store_config(&store, &bytes, &id).unwrap();
        assert!(matches!(
            store.resolve_image(&id),
            Err(StoreError::MixedLayerModes { .. })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_new_store_and_its_folders_are_private() {
        let dir = std::env::temp_dir().join(format!(
            "rbuild-unit-{}-{}",
            std::process::id(),
            crate::util::nonce()
        ));
        Store::open(&dir).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&dir), 0o700);
        for sub in SUBDIRS {
            assert_eq!(mode(&dir.join(sub)), 0o700, "{sub}");
        }
        // folders an older rbuild left open are closed again; a shared root is left alone
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(dir.join("layers"), fs::Permissions::from_mode(0o755)).unwrap();
        Store::open(&dir).unwrap();
        assert_eq!((mode(&dir), mode(&dir.join("layers"))), (0o755, 0o700));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hex_prefixes_need_twelve_digits() {
        assert_eq!(
            hex_prefix("sha256:0123456789ab").as_deref(),
            Some("0123456789ab")
        );
        assert_eq!(hex_prefix("0123456789AB").as_deref(), Some("0123456789ab"));
        assert_eq!(hex_prefix("0123456789a"), None);
        assert_eq!(hex_prefix("alpine"), None);
    }
}
