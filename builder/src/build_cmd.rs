//! `rbuild build`: the command line of recipe builds (the library's `recipe` module does the
//! work). A module of the binary only.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result};
use rbuild::import::AddOptions;
use rbuild::recipe::{self, BuildOptions, LockMode};
use store::Store;

#[derive(clap::Args)]
pub struct BuildArgs {
    /// The recipe (TOML; its paths are relative to its folder)
    #[arg(value_name = "RECIPE.toml")]
    recipe: PathBuf,
    /// Look for the base tarball in DIR, by its file name, before downloading it
    #[arg(long, value_name = "DIR")]
    source_dir: Option<PathBuf>,
    /// Also tag the image NAME[:TAG]; repeatable
    #[arg(short, long, value_name = "NAME[:TAG]")]
    tag: Vec<String>,
    /// Fail unless the build gives the ids recorded in the lock file beside the recipe
    #[arg(long, conflicts_with = "write_lock")]
    locked: bool,
    /// Record the ids the build gives in the lock file beside the recipe (NAME.lock)
    #[arg(long)]
    write_lock: bool,
}

/// Builds, prints the ImageID on stdout and where the base came from on stderr (with -v).
pub fn run(store: &Store, a: BuildArgs, idle_timeout: Option<std::time::Duration>) -> Result<()> {
    let o = BuildOptions {
        source_dir: a.source_dir,
        tags: a.tag,
        add: AddOptions {
            progress: std::io::stderr().is_terminal(),
            idle_timeout,
            ..Default::default()
        },
        lock: if a.locked {
            LockMode::Check
        } else if a.write_lock {
            LockMode::Write
        } else {
            LockMode::Ignore
        },
    };
    let built = recipe::build(store, &a.recipe, &o)
        .with_context(|| format!("build {}", a.recipe.display()))?;
    tracing::info!(
        "base from {}; layers {}",
        built.base_from,
        built.layers.join(" ")
    );
    super::out(&built.image)
}
