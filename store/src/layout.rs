//! Where everything lives under a store root, and the store's own removals and staging names.
//! Kernel interfaces: plain paths; rename(2) into `tmp/` so a removal is atomic, `/proc/<pid>`
//! (proc(5)) to tell a staging folder whose writer is gone.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::digest::is_id_hex;
use crate::error::StoreError;

/// The folders of a store. `containers/` belongs to rrun (the store never reads inside it,
/// but for the one migration of the previous format, see [`crate::migrate`]).
pub const SUBDIRS: [&str; 6] = ["layers", "images", "holds", "containers", "blobs", "tmp"];

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

/// `<root>/containers`: where rrun keeps its containers' records in the store at `root`.
pub fn containers_dir(root: &Path) -> PathBuf {
    root.join("containers")
}

/// A handle on a store root (see [`Store::open`] and its siblings for how to get one).
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// A handle on `root` (made absolute against the working directory), touching nothing.
    pub(crate) fn at(root: &Path) -> Result<Store, StoreError> {
        let root = if root.is_absolute() {
            root.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(StoreError::io(root))?
                .join(root)
        };
        Ok(Store { root })
    }

    /// True when `root` holds a store: its format marker, or (a store of the first format,
    /// which had none) its `images/` folder.
    pub(crate) fn exists(&self) -> bool {
        fs::symlink_metadata(self.format_path()).is_ok() || self.images_dir().is_dir()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/containers`, owned by rrun.
    pub fn containers_dir(&self) -> PathBuf {
        containers_dir(&self.root)
    }

    pub fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    pub fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    /// `<root>/holds`: one file per hold, see [`crate::holds`].
    pub fn holds_dir(&self) -> PathBuf {
        self.root.join("holds")
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

    /// `<root>/images/<hex>/config.json`
    pub fn config_path(&self, hex: &str) -> PathBuf {
        self.image_dir(hex).join("config.json")
    }

    /// `<root>/tags.json`
    pub fn tags_path(&self) -> PathBuf {
        self.root.join("tags.json")
    }

    pub(crate) fn tags_lock_path(&self) -> PathBuf {
        self.root.join("tags.lock")
    }

    pub(crate) fn lock_path(&self) -> PathBuf {
        self.root.join("store.lock")
    }

    /// `<root>/format.json`, the format marker (see [`crate::migrate`]).
    pub fn format_path(&self) -> PathBuf {
        self.root.join("format.json")
    }

    /// Hex ids of the entries of `layers/` or `images/` (only well-formed names), sorted.
    pub(crate) fn list_ids(dir: &Path) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir).map_err(StoreError::io(dir))? {
            let e = e.map_err(StoreError::io(dir))?;
            if let Some(name) = e.file_name().to_str() {
                if is_id_hex(name) {
                    out.push(name.to_string());
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// A new staging path in `tmp/`: `<kind>-<pid>-<nonce>` (`kind` is one of
    /// [`STAGING_KINDS`]), so that [`Store::clean_stale_staging`] can tell a leftover.
    pub fn staging_path(&self, kind: &str) -> PathBuf {
        debug_assert!(STAGING_KINDS.contains(&kind));
        self.tmp_dir().join(format!(
            "{kind}-{}-{}",
            std::process::id(),
            crate::files::nonce()
        ))
    }

    /// Makes a store entry disappear atomically (rename into tmp/), then deletes it.
    pub fn remove_entry(&self, path: &Path) -> Result<(), StoreError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let grave = PathBuf::from(format!("{}-{name}", self.staging_path("rm").display()));
        fs::rename(path, &grave).map_err(StoreError::io(path))?;
        crate::remove::remove_tree(&grave).map_err(StoreError::io(&grave))
    }

    /// Removes staging entries (`tmp/{layer,image,w,rm}-<pid>-...`) left by processes that no
    /// longer exist (killed half way). Returns how many were removed. A missing `tmp/` has none.
    pub fn clean_stale_staging(&self) -> Result<usize, StoreError> {
        let tmp = self.tmp_dir();
        let rd = match fs::read_dir(&tmp) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => {
                return Err(StoreError::Io {
                    path: tmp,
                    source: e,
                })
            }
        };
        let mut n = 0;
        for e in rd {
            let e = e.map_err(StoreError::io(&tmp))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let mut parts = name.splitn(3, '-');
            let (Some(kind), Some(pid)) = (parts.next(), parts.next()) else {
                continue;
            };
            if !STAGING_KINDS.contains(&kind) {
                continue;
            }
            let Ok(pid) = pid.parse::<u32>() else {
                continue;
            };
            if !Path::new(&format!("/proc/{pid}")).exists() {
                crate::remove::remove_tree(&e.path()).map_err(StoreError::io(e.path()))?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// The kinds of staging entries in `tmp/`: a layer being extracted, an image being written, a
/// file being replaced ([`crate::files::write_atomic`]), an entry being removed.
pub const STAGING_KINDS: [&str; 4] = ["layer", "image", "w", "rm"];
