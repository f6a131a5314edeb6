//! `rbuild build RECIPE.toml`: a reproducible image from a recipe (see spec.rs for the format).
//! The base is found offline first (base.rs); each recipe layer is planned from the
//! repository's files with normalised owners, modes and times (layer.rs), written as a tar
//! stream (tarball.rs) into the store's `tmp/` and imported like any tarball; the image config
//! has no creation time. So the same recipe and files give the same ImageID in any store, on
//! any machine, at any time, for any user, in any working directory, umask, locale or time
//! zone; the lock file beside the recipe records it (lock.rs). No RUN step: nothing is executed.
//! Kernel interfaces: those of the modules named.

pub mod base;
pub mod layer;
pub mod lock;
pub mod spec;
pub mod tarball;

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use store::{Store, StoreError};

use crate::image::{self, ImageError};
use crate::import::{self, AddError, AddOptions, Source};

pub use base::Found;

#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    #[error("recipe {path}: {msg}")]
    Recipe { path: String, msg: String },
    #[error("base {name}: {source}")]
    Base { name: String, source: AddError },
    #[error("base {name} (sha256 {sha256}) is not in the store{looked}, and the recipe names no url: pass --source-dir DIR with a folder holding it")]
    BaseMissing {
        name: String,
        sha256: String,
        looked: String,
    },
    #[error("layer {n}: {msg}")]
    Layer { n: usize, msg: String },
    #[error("layer {n}: {source}")]
    LayerAdd { n: usize, source: AddError },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("lock file {path}: {msg}")]
    Lock { path: String, msg: String },
}

/// What to do with the lock file beside the recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockMode {
    /// leave it alone
    #[default]
    Ignore,
    /// fail unless the build gives the ids it records
    Check,
    /// record the ids the build gives
    Write,
}

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// a folder to look for the base in, by its file name, before any download
    pub source_dir: Option<PathBuf>,
    /// tags besides the recipe's own
    pub tags: Vec<String>,
    /// progress bars and download timeouts for the base (checksums come from the recipe)
    pub add: AddOptions,
    pub lock: LockMode,
}

#[derive(Debug, Clone)]
pub struct Built {
    /// `sha256:<ImageID>`
    pub image: String,
    /// `sha256:<DiffID>`, the base first
    pub layers: Vec<String>,
    pub base_from: Found,
    /// every tag the image was given
    pub tags: Vec<String>,
}

/// Builds the recipe at `path` into `store`. Everything the recipe names is checked (its
/// fields, tags, config, and every layer's sources) before anything is stored.
pub fn build(store: &Store, path: &Path, o: &BuildOptions) -> Result<Built, RecipeError> {
    let bad = |msg: String| RecipeError::Recipe {
        path: path.display().to_string(),
        msg,
    };
    let recipe = spec::load(path).map_err(bad)?;
    let mut tags = recipe.tags.clone();
    tags.extend(o.tags.iter().cloned());
    for t in &tags {
        store::normalize_tag(t).map_err(|e| bad(format!("tag {t:?}: {e}")))?;
    }
    // the config's checks, on a stand-in layer: a bad env or user stops the build here
    image::build_config(&["0".repeat(64)], &recipe.config)?;
    let mut plans = Vec::new();
    for (i, l) in recipe.layers.iter().enumerate() {
        plans.push(layer::plan(l).map_err(|msg| RecipeError::Layer { n: i + 1, msg })?);
    }
    let (base, base_from) = base::add(store, &recipe.base, o.source_dir.as_deref(), &o.add)?;
    let mut layers = vec![base];
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for (i, plan) in plans.iter().enumerate() {
        layers.push(add_layer(
            store,
            plan,
            &format!("recipe {name} layer {}", i + 1),
            i + 1,
        )?);
    }
    let hex = image::create(store, &layers, &recipe.config, &tags)?;
    let built = Built {
        image: format!("sha256:{hex}"),
        layers: layers.iter().map(|l| format!("sha256:{l}")).collect(),
        base_from,
        tags,
    };
    check_lock(path, &name, &built, o.lock)?;
    Ok(built)
}

/// Writes `plan` as a tar into the store's `tmp/` and imports it; returns its DiffID hex.
fn add_layer(
    store: &Store,
    plan: &layer::Plan,
    name: &str,
    n: usize,
) -> Result<String, RecipeError> {
    let tmp = TempFile(PathBuf::from(format!(
        "{}.tar",
        store.staging_path("layer").display()
    )));
    let write = || -> Result<(), String> {
        let f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp.0)
            .map_err(|e| format!("{}: {e}", tmp.0.display()))?;
        let mut w = BufWriter::new(f);
        tarball::write(plan, &mut w)?;
        w.flush().map_err(|e| format!("{}: {e}", tmp.0.display()))
    };
    write().map_err(|msg| RecipeError::Layer { n, msg })?;
    let source = Source::Built {
        path: tmp.0.clone(),
        name: name.to_string(),
    };
    let added = import::add_layer(store, &source, &AddOptions::default())
        .map_err(|source| RecipeError::LayerAdd { n, source })?;
    Ok(added.diff_id.trim_start_matches("sha256:").to_string())
}

/// A file removed on drop (a layer's tar once imported, or after a failure).
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn check_lock(path: &Path, name: &str, built: &Built, mode: LockMode) -> Result<(), RecipeError> {
    let lp = lock::path_for(path);
    let err = |msg: String| RecipeError::Lock {
        path: lp.display().to_string(),
        msg,
    };
    let got = lock::Lock {
        image: built.image.clone(),
        layers: built.layers.clone(),
    };
    match mode {
        LockMode::Ignore => Ok(()),
        LockMode::Write => lock::write(&lp, &lock::render(name, &got)).map_err(err),
        LockMode::Check => {
            let want =
                lock::read(&lp).map_err(|e| err(format!("{e} (write it with --write-lock)")))?;
            match lock::difference(&want, &got) {
                None => Ok(()),
                Some(d) => Err(err(format!(
                    "the build gave {}: {d}; if the change is meant, record it with --write-lock",
                    built.image
                ))),
            }
        }
    }
}
