//! A recipe's base tarball, found offline first: in the store by the sha256 of its bytes (the
//! blob index `layer add` keeps), then at the recipe's `path`, then in `--source-dir` under its
//! file name, and only then downloaded from its `url`. Whatever is read is verified against
//! the sha256 before anything is stored (`layer add`'s pipeline). Kernel interfaces: those of
//! import.rs.

use std::fmt;
use std::path::{Path, PathBuf};

use store::Store;

use super::spec::Base;
use super::RecipeError;
use crate::import::{self, AddOptions, Source};

/// Where the base was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Store,
    File(PathBuf),
    Url(String),
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::Store => write!(f, "the store"),
            Found::File(p) => write!(f, "{}", p.display()),
            Found::Url(u) => write!(f, "{u}"),
        }
    }
}

/// Adds (or finds) the base layer; returns its DiffID hex and where it came from.
pub fn add(
    store: &Store,
    base: &Base,
    source_dir: Option<&Path>,
    opts: &AddOptions,
) -> Result<(String, Found), RecipeError> {
    if let Some(id) = import::lookup_blob(store, "sha256", &base.sha256) {
        tracing::info!("base {}: in the store as layer sha256:{id}", base.file_name);
        return Ok((id, Found::Store));
    }
    let opts = AddOptions {
        sha256: Some(base.sha256.clone()),
        sha512: None,
        ..opts.clone()
    };
    let files = base
        .path
        .iter()
        .cloned()
        .chain(source_dir.map(|d| d.join(&base.file_name)));
    let mut looked = Vec::new();
    for f in files {
        if f.is_file() {
            return add_from(store, base, Source::File(f.clone()), &opts)
                .map(|id| (id, Found::File(f)));
        }
        looked.push(f.display().to_string());
    }
    if let Some(u) = &base.url {
        return add_from(store, base, Source::Url(u.clone()), &opts)
            .map(|id| (id, Found::Url(u.clone())));
    }
    let looked = if looked.is_empty() {
        String::new()
    } else {
        format!(", nor at {}", looked.join(" or "))
    };
    Err(RecipeError::BaseMissing {
        name: base.file_name.clone(),
        sha256: base.sha256.clone(),
        looked,
    })
}

fn add_from(
    store: &Store,
    base: &Base,
    source: Source,
    opts: &AddOptions,
) -> Result<String, RecipeError> {
    let added = import::add_layer(store, &source, opts).map_err(|e| RecipeError::Base {
        name: match &source {
            Source::File(p) => p.display().to_string(),
            _ => base.file_name.clone(),
        },
        source: e,
    })?;
    Ok(added.diff_id.trim_start_matches("sha256:").to_string())
}
