//! rbuild command line: a thin clap front end over the rbuild library.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser, Subcommand};

mod build_cmd;
mod cli_registry;

use rbuild::image::ImageOptions;
use rbuild::import::{AddOptions, Source};
use store::{Store, StoreError};

/// Exit status of rbuild's own failures (and of usage errors).
const FAILURE: u8 = 1;
/// Exit status when stdout's reader went away (EPIPE): 128 + SIGPIPE, what a shell reports for
/// a tool killed by SIGPIPE. rbuild keeps SIGPIPE ignored (its internal pipes need EPIPE).
const BROKEN_PIPE: u8 = 141;

/// A line on stderr. Unlike `eprintln!` it never panics: a message that cannot be written
/// (stderr closed or its reader gone) is dropped.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// Writing to stdout failed; `main` turns it into an exit status (see [`stdout_failure`]).
#[derive(Debug, thiserror::Error)]
#[error("write to stdout: {0}")]
struct StdoutError(std::io::Error);

/// Writes `text` and a newline to stdout and flushes it, checked: a reader that went away or a
/// full disk is an error (never the panic of `println!`).
fn out(text: impl std::fmt::Display) -> Result<()> {
    let mut o = std::io::stdout().lock();
    writeln!(o, "{text}")
        .and_then(|()| o.flush())
        .map_err(|e| StdoutError(e).into())
}

/// The exit status for an error of stdout: EPIPE exits quietly with 141, anything else says
/// one line and exits 1.
fn stdout_failure(e: &std::io::Error) -> ExitCode {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        return ExitCode::from(BROKEN_PIPE);
    }
    say!("rbuild: write to stdout: {e}");
    ExitCode::from(FAILURE)
}

/// Seconds of silence after which a download is abandoned (see `download::IDLE_TIMEOUT`).
const IDLE_ENV: &str = "RBUILD_HTTP_IDLE_TIMEOUT";

/// Import root-filesystem tarballs into a content-addressed layer store and compose images.
#[derive(Parser)]
#[command(
    name = "rbuild",
    version,
    about,
    after_help = "Environment:\n  RBOX_ROOT          the store (like --root)\n  SOURCE_DATE_EPOCH  clamps directory-source mtimes (else 0) and sets an image's `created`\n  RBUILD_SUBIDS=0    rootless: collapse owners even when /etc/subuid has a range for you\n  RBUILD_HTTP_IDLE_TIMEOUT=SECS  give up a download after this long without data (default 60)\n  RUST_LOG           log filter (tracing)"
)]
struct Cli {
    /// Store root (default: /var/lib/rbox as root, $XDG_DATA_HOME/rbox otherwise)
    #[arg(long, global = true, env = "RBOX_ROOT", value_name = "DIR")]
    root: Option<PathBuf>,
    /// More logging on stderr (repeat for more); RUST_LOG works too
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Layers: add, list, remove
    #[command(subcommand)]
    Layer(LayerCmd),
    /// Images: create, list, inspect, remove, tag
    #[command(subcommand)]
    Image(ImageCmd),
    /// Write an image as an OCI image layout (gzip layers, the image's own DiffIDs)
    Export {
        /// The image: id, prefix or NAME[:TAG]
        image: String,
        /// Folder (new, empty or an OCI layout) and the image's name in it (default latest)
        #[arg(value_name = "DIR[:NAME]")]
        dest: String,
    },
    /// Import an OCI image layout, an OCI archive or a docker-archive (docker/podman save); prints sha256:<ImageID>
    Import {
        /// An OCI layout folder and the image's name in it, or a docker-archive FILE[:NAME:TAG]
        #[arg(value_name = "DIR[:NAME]|FILE")]
        source: String,
        /// Tag NAME[:TAG] for the image; repeatable
        #[arg(long, value_name = "NAME[:TAG]")]
        tag: Vec<String>,
        /// The platform to take from a multi-platform layout (default: this machine's)
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
    },
    /// Write an image as a docker-archive (what `docker load` and `podman load` read)
    Save {
        /// The image: id, prefix or NAME[:TAG]
        image: String,
        /// The archive to write (replaced once complete)
        file: PathBuf,
    },
    /// Pull an image from a registry; prints sha256:<ImageID>
    Pull {
        /// [REGISTRY/]REPO[:TAG|@sha256:HEX] (an unqualified name is docker.io/library/NAME)
        reference: String,
        /// The platform to take from a multi-platform image (default: this machine's)
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
        /// Credentials for this pull only (else the auth files')
        #[arg(long, value_name = "USER:PASSWORD")]
        creds: Option<String>,
        #[command(flatten)]
        conn: cli_registry::ConnArgs,
    },
    /// Push an image to a registry; prints the manifest's sha256:<digest>
    Push {
        /// The image: id, prefix or NAME[:TAG]
        image: String,
        /// [REGISTRY/]REPO[:TAG]
        reference: String,
        /// Credentials for this push only (else the auth files')
        #[arg(long, value_name = "USER:PASSWORD")]
        creds: Option<String>,
        #[command(flatten)]
        conn: cli_registry::ConnArgs,
    },
    /// Check credentials with a registry and save them in the auth file
    Login {
        /// HOST[:PORT] (docker.io for Docker Hub)
        registry: String,
        /// User name (asked on a terminal when missing)
        #[arg(short, long)]
        username: Option<String>,
        /// Password (visible to other users in the process list: prefer --password-stdin)
        #[arg(short, long)]
        password: Option<String>,
        /// Read the password from stdin
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        conn: cli_registry::ConnArgs,
    },
    /// Remove a registry's credentials from the auth file
    Logout {
        /// HOST[:PORT]
        registry: Option<String>,
        /// Remove every registry's credentials
        #[arg(long)]
        all: bool,
        /// Credentials file (default: $REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json)
        #[arg(long, value_name = "FILE")]
        authfile: Option<PathBuf>,
    },
    /// Build an image from a recipe (images/NAME.toml); prints sha256:<ImageID>
    Build(build_cmd::BuildArgs),
    /// Remove layers no image uses, and stale staging folders
    Gc,
    /// Verify every stored digest (layer trees, image configs, tags) and read every hold
    Fsck {
        /// First rebuild tags.json from the tags that can be verified, saying what is dropped
        #[arg(long)]
        repair: bool,
    },
}

#[derive(Subcommand)]
enum LayerCmd {
    /// Import a .tar, .tar.gz/.tgz, .tar.zst file, a directory or an http(s):// URL; prints sha256:<DiffID>
    Add {
        /// File, directory or http(s) URL
        source: String,
        /// Expected sha256 of the bytes as received
        #[arg(long, value_name = "HEX")]
        sha256: Option<String>,
        /// Expected sha512 of the bytes as received
        #[arg(long, value_name = "HEX")]
        sha512: Option<String>,
    },
    /// One line per layer under a header: id, size (uncompressed, human units), source
    Ls(LsArgs),
    /// Remove layers (refused while an image uses them)
    Rm {
        /// Layers: sha256:<DiffID> or a unique prefix of at least 12 hex digits
        #[arg(required = true, value_name = "LAYER")]
        layers: Vec<String>,
    },
}

/// What `layer ls` and `image ls` print.
#[derive(clap::Args)]
struct LsArgs {
    /// Print only the ids (sha256:<hex>), one per line
    #[arg(short, long)]
    quiet: bool,
    /// table (default) or json (one JSON object per line, sizes in bytes)
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    format: String,
}

impl LsArgs {
    fn format(&self) -> rbuild::listing::Format {
        use rbuild::listing::Format;
        match (self.quiet, self.format.as_str()) {
            (true, _) => Format::Quiet,
            (false, "json") => Format::Json,
            _ => Format::Table,
        }
    }
}

#[derive(Subcommand)]
enum ImageCmd {
    /// Compose layers (bottom first) into an image; prints sha256:<ImageID>
    Create {
        /// Layers, bottom first: sha256:<DiffID> or a unique prefix of at least 12 hex digits
        #[arg(required = true, value_name = "LAYER")]
        layers: Vec<String>,
        /// Tag NAME[:TAG] (TAG defaults to latest); repeatable
        #[arg(long, value_name = "NAME[:TAG]")]
        tag: Vec<String>,
        /// Default command, one argument per --cmd
        #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
        cmd: Vec<String>,
        /// Entrypoint, one argument per --entrypoint
        #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
        entrypoint: Vec<String>,
        /// Environment KEY=VALUE; repeatable
        #[arg(long, value_name = "K=V")]
        env: Vec<String>,
        /// Working directory (absolute)
        #[arg(long, value_name = "DIR")]
        workdir: Option<String>,
        /// User UID[:GID]
        #[arg(long, value_name = "UID[:GID]")]
        user: Option<String>,
        /// OCI architecture (default amd64)
        #[arg(long, value_name = "ARCH")]
        arch: Option<String>,
    },
    /// One line per image under a header: id, tags, layers, size (human units)
    Ls(LsArgs),
    /// Print the image config JSON
    Inspect {
        /// sha256:<ImageID>, a unique prefix of at least 12 hex digits, or NAME[:TAG]
        image: String,
        /// Print the stored canonical bytes instead of indented JSON
        #[arg(long)]
        raw: bool,
    },
    /// Remove a tag, or an image with all its tags (refused while a container holds it, until `rrun rm`)
    Rm {
        /// Images: ids, prefixes or NAME[:TAG]
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
    },
    /// Point NAME[:TAG] at an image
    Tag {
        /// The image: id, prefix or NAME[:TAG]
        image: String,
        /// The new NAME[:TAG]
        tag: String,
    },
}

fn main() -> ExitCode {
    // a panic is a bug: one line, no backtrace, and never a second panic on a closed stderr
    std::panic::set_hook(Box::new(|info| {
        let p = info.payload();
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        say!("rbuild: internal error: {msg}{at}");
    }));
    // a re-executed rootless child: enter its user namespace while still single-threaded
    if std::env::var_os(rbuild::userns::CHILD_ENV).is_some() {
        if let Err(e) = rbuild::userns::enter_child() {
            say!("rbuild: {e}");
            return ExitCode::from(FAILURE);
        }
    }
    raise_nofile_limit();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return usage_exit(&e),
    };
    init_logging(cli.verbose);
    // a user with subordinate ids: run again inside a mapped user namespace, keeping owners
    let root = cli.root.clone().unwrap_or_else(store::default_root);
    if let Some(code) = rbuild::userns::reexec(&root) {
        return ExitCode::from(u8::try_from(code).unwrap_or(FAILURE));
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(StdoutError(io)) = e.chain().find_map(|c| c.downcast_ref::<StdoutError>()) {
                return stdout_failure(io);
            }
            say!("rbuild: {}", one_line(&e));
            ExitCode::from(FAILURE)
        }
    }
}

/// `--help` and `--version` print in full (exit 0); a usage error is one line, exit 1 like
/// every other failure of rbuild, naming the command whose `--help` tells more (as rrun does).
fn usage_exit(e: &clap::Error) -> ExitCode {
    if !e.use_stderr() {
        return match e.print() {
            Ok(()) => ExitCode::SUCCESS,
            Err(io) => stdout_failure(&io),
        };
    }
    say!("rbuild: {}", one_line_usage_error(e));
    ExitCode::from(FAILURE)
}

/// A clap error as one line: its first paragraph without `error: `, then the command to ask
/// for help, e.g. `unrecognized subcommand 'bogus' (see `rbuild image --help`)`.
fn one_line_usage_error(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let command: Vec<&str> = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Usage: "))
        .map(|u| {
            u.split_whitespace()
                .take_while(|w| {
                    !w.starts_with('-') && w.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                })
                .collect()
        })
        .filter(|c: &Vec<&str>| !c.is_empty())
        .unwrap_or_else(|| vec!["rbuild"]);
    use clap::error::ErrorKind;
    let first = if matches!(
        e.kind(),
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand
    ) {
        missing_subcommand(&command)
    } else {
        let first = text
            .lines()
            .map(str::trim)
            .skip_while(|l| l.is_empty())
            .take_while(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        first.strip_prefix("error: ").unwrap_or(&first).to_string()
    };
    format!("{first} (see `{} --help`)", command.join(" "))
}

/// `a subcommand is required: layer, image, …, gc or fsck` for the command path `words`.
fn missing_subcommand(words: &[&str]) -> String {
    let mut c = Cli::command();
    for w in words.iter().skip(1) {
        match c.find_subcommand(w) {
            Some(sub) => c = sub.clone(),
            None => break,
        }
    }
    let names: Vec<String> = c
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .filter(|n| n != "help")
        .collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => {
            format!("a subcommand is required: {} or {last}", rest.join(", "))
        }
        Some((last, _)) => format!("a subcommand is required: {last}"),
        None => "a subcommand is required".into(),
    }
}

/// The error chain on one line: `context: cause: cause`, without repeats.
fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in e.chain() {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}

/// Quiet by default (warnings only); colour only when stderr is a terminal.
fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .try_init();
}

fn source_date_epoch() -> Option<i64> {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse().ok())
}

/// RBUILD_HTTP_IDLE_TIMEOUT in seconds (fractions allowed); unset: the library default.
fn idle_timeout() -> Result<Option<Duration>> {
    let Ok(v) = std::env::var(IDLE_ENV) else {
        return Ok(None);
    };
    let secs: f64 = v
        .trim()
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s < 1e9)
        .ok_or_else(|| anyhow::anyhow!("{IDLE_ENV}={v:?} is not a number of seconds above 0"))?;
    Ok(Some(Duration::from_secs_f64(secs)))
}

/// How a command uses the store: it adds to it (made if missing), changes it (it must exist;
/// brought to the current format), or only reads it (it must exist; left as it is).
#[derive(Clone, Copy)]
enum Access {
    Add,
    Change,
    Read,
}

fn access(cmd: &Cmd) -> Access {
    match cmd {
        Cmd::Layer(LayerCmd::Add { .. }) | Cmd::Build(_) => Access::Add,
        Cmd::Layer(LayerCmd::Ls(_))
        | Cmd::Image(ImageCmd::Ls(_) | ImageCmd::Inspect { .. })
        | Cmd::Export { .. }
        | Cmd::Save { .. }
        | Cmd::Push { .. } => Access::Read,
        Cmd::Import { .. } | Cmd::Pull { .. } => Access::Add,
        Cmd::Fsck { repair: false } => Access::Read,
        _ => Access::Change,
    }
}

/// Listings and `gc` of a store that does not exist have nothing to do: they say so on stderr
/// and succeed (a script listing a fresh machine's images gets nothing, not an error).
fn nothing_to_do(cmd: &Cmd) -> bool {
    matches!(
        cmd,
        Cmd::Layer(LayerCmd::Ls(_)) | Cmd::Image(ImageCmd::Ls(_)) | Cmd::Gc
    )
}

fn run(cli: Cli) -> Result<()> {
    // login and logout touch no store
    match &cli.cmd {
        Cmd::Login {
            registry,
            username,
            password,
            password_stdin,
            conn,
        } => {
            return cli_registry::login(
                registry,
                username.clone(),
                password.clone(),
                *password_stdin,
                conn,
            )
        }
        Cmd::Logout {
            registry,
            all,
            authfile,
        } => return cli_registry::logout(registry.as_deref(), *all, authfile.as_deref()),
        _ => {}
    }
    let root = cli.root.clone().unwrap_or_else(store::default_root);
    let opened = match access(&cli.cmd) {
        Access::Add => Store::create(&root),
        Access::Change => Store::open(&root),
        Access::Read => Store::open_read(&root),
    };
    let store = match opened {
        Ok(s) => s,
        Err(e @ StoreError::NoStore(_)) if nothing_to_do(&cli.cmd) => {
            say!("rbuild: {e}");
            // an empty listing still has its header (as `docker images`)
            return match &cli.cmd {
                Cmd::Layer(LayerCmd::Ls(a)) => {
                    print_lines(rbuild::listing::layers(&[], a.format()))
                }
                Cmd::Image(ImageCmd::Ls(a)) => {
                    print_lines(rbuild::listing::images(&[], a.format()))
                }
                _ => Ok(()),
            };
        }
        Err(e @ StoreError::NoStore(_)) => return Err(e.into()),
        Err(e) => return Err(e).with_context(|| format!("store {}", root.display())),
    };
    match cli.cmd {
        Cmd::Layer(LayerCmd::Add {
            source,
            sha256,
            sha512,
        }) => layer_add(&store, &source, sha256, sha512),
        Cmd::Layer(LayerCmd::Ls(a)) => print_lines(rbuild::listing::layers(
            &rbuild::maint::layer_rows(&store).context("layer ls")?,
            a.format(),
        )),
        Cmd::Layer(LayerCmd::Rm { layers }) => layer_rm(&store, &layers),
        Cmd::Image(ImageCmd::Create {
            layers,
            tag,
            cmd,
            entrypoint,
            env,
            workdir,
            user,
            arch,
        }) => {
            let created = source_date_epoch().and_then(rbuild::image::rfc3339);
            let o = ImageOptions {
                cmd,
                entrypoint,
                env,
                workdir,
                user,
                created,
                arch,
                labels: Default::default(),
            };
            let id = rbuild::image::create(&store, &layers, &o, &tag).context("image create")?;
            out(format_args!("sha256:{id}"))
        }
        Cmd::Image(ImageCmd::Ls(a)) => image_ls(&store, a.format()),
        Cmd::Image(ImageCmd::Inspect { image, raw }) => image_inspect(&store, &image, raw),
        Cmd::Image(ImageCmd::Rm { images }) => image_rm(&store, &images),
        Cmd::Image(ImageCmd::Tag { image, tag }) => {
            let hex = store
                .resolve_image_hex(&image)
                .with_context(|| format!("image tag {image}"))?;
            let t = store
                .set_tag(&tag, &hex)
                .with_context(|| format!("image tag {image} {tag}"))?;
            out(t)
        }
        Cmd::Export { image, dest } => {
            let t = rbuild::oci::export::Target::parse(&dest)
                .with_context(|| format!("export {image} {dest}"))?;
            let m = rbuild::oci::export::export(&store, &image, &t)
                .with_context(|| format!("export {image} {dest}"))?;
            say!(
                "rbuild: exported to {}:{} (manifest sha256:{m})",
                t.dir.display(),
                t.name
            );
            Ok(())
        }
        Cmd::Import {
            source,
            tag,
            platform,
        } => {
            let o = rbuild::oci::import::ImportOptions {
                platform: platform
                    .as_deref()
                    .map(rbuild::oci::manifest::Platform::parse)
                    .transpose()
                    .with_context(|| format!("import {source}"))?,
                tags: tag,
                progress: std::io::stderr().is_terminal(),
            };
            let id = rbuild::oci::import::import(&store, &source, &o)
                .with_context(|| format!("import {source}"))?;
            out(format_args!("sha256:{id}"))
        }
        Cmd::Save { image, file } => rbuild::oci::save::save(&store, &image, &file)
            .with_context(|| format!("save {image} {}", file.display())),
        Cmd::Pull {
            reference,
            platform,
            creds,
            conn,
        } => cli_registry::pull(
            &store,
            &reference,
            platform.as_deref(),
            &conn,
            creds.as_deref(),
        ),
        Cmd::Push {
            image,
            reference,
            creds,
            conn,
        } => cli_registry::push(&store, &image, &reference, &conn, creds.as_deref()),
        Cmd::Login { .. } | Cmd::Logout { .. } => Ok(()),
        Cmd::Build(a) => build_cmd::run(&store, a, idle_timeout()?),
        Cmd::Gc => gc(&store),
        Cmd::Fsck { repair } => fsck(&store, repair),
    }
}

fn image_ls(store: &Store, format: rbuild::listing::Format) -> Result<()> {
    let listing = rbuild::maint::image_rows(store).context("image ls")?;
    if let Some(e) = &listing.tags_error {
        say!("rbuild: warning: {e}");
    }
    print_lines(rbuild::listing::images(&listing.rows, format))
}

fn print_lines(lines: Vec<String>) -> Result<()> {
    for line in lines {
        out(line)?;
    }
    Ok(())
}

fn layer_add(
    store: &Store,
    source: &str,
    sha256: Option<String>,
    sha512: Option<String>,
) -> Result<()> {
    let opts = AddOptions {
        sha256,
        sha512,
        progress: std::io::stderr().is_terminal(),
        source_date_epoch: source_date_epoch(),
        idle_timeout: idle_timeout()?,
        diff_id: None,
    };
    let added = rbuild::import::add_layer(store, &Source::parse(source), &opts)
        .with_context(|| format!("layer add {source}"))?;
    let s = &added.stats;
    if s.skipped_devices > 0 {
        say!(
            "rbuild: warning: {} device node(s) skipped: only root can create them",
            s.skipped_devices
        );
    }
    if s.unmapped_owners > 0 {
        say!(
            "rbuild: warning: {} member(s) owned by ids outside your subordinate range: owned by you instead",
            s.unmapped_owners
        );
    }
    if s.skipped_xattrs > 0 {
        say!(
            "rbuild: warning: {} extended attribute(s) could not be kept",
            s.skipped_xattrs
        );
    }
    out(&added.diff_id)
}

fn layer_rm(store: &Store, layers: &[String]) -> Result<()> {
    for l in layers {
        let id = rbuild::maint::remove_layer(store, l).with_context(|| format!("layer rm {l}"))?;
        out(format_args!("sha256:{id}"))?;
    }
    Ok(())
}

fn image_inspect(store: &Store, image: &str, raw: bool) -> Result<()> {
    let hex = store
        .resolve_image_hex(image)
        .with_context(|| format!("image inspect {image}"))?;
    // only bytes that hash to the id: a config changed behind the store's back is refused here
    // as rrun refuses to run it
    let bytes = store
        .verified_config_bytes(&hex)
        .with_context(|| format!("image inspect {image}"))?;
    if raw {
        out(String::from_utf8_lossy(&bytes))
    } else {
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("image inspect {image}: config of sha256:{hex}"))?;
        out(serde_json::to_string_pretty(&v)?)
    }
}

fn image_rm(store: &Store, images: &[String]) -> Result<()> {
    for i in images {
        let line =
            rbuild::maint::remove_image(store, i).with_context(|| format!("image rm {i}"))?;
        out(line)?;
    }
    Ok(())
}

fn gc(store: &Store) -> Result<()> {
    let r = rbuild::maint::gc(store).context("gc")?;
    for l in &r.layers {
        out(format_args!("sha256:{l}"))?;
    }
    say!(
        "rbuild: gc: {} layer(s) removed, {} stale staging folder(s) cleaned",
        r.layers.len(),
        r.staging
    );
    Ok(())
}

fn fsck(store: &Store, repair: bool) -> Result<()> {
    let r = rbuild::fsck::fsck(store, repair).context("fsck")?;
    for d in &r.dropped {
        out(format_args!("dropped {d}"))?;
    }
    if let Some(kept) = r.tags_kept {
        say!(
            "rbuild: fsck --repair: tags.json rebuilt: {kept} tag(s) kept, {} dropped",
            r.dropped.len()
        );
    }
    if r.problems.is_empty() {
        say!("rbuild: fsck: every digest verified");
        return Ok(());
    }
    for p in &r.problems {
        out(p)?;
    }
    anyhow::bail!("fsck: {} problem(s) found", r.problems.len())
}

/// Raises this process's soft limit of open files to its hard limit (setrlimit(2)
/// RLIMIT_NOFILE): deep trees and many layers never need more than a few descriptors at once,
/// but the tar, decoder and store paths then have room to spare.
fn raise_nofile_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut l = getrlimit(Resource::Nofile);
    if l.current != l.maximum {
        l.current = l.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, l) {
            tracing::debug!("cannot raise RLIMIT_NOFILE: {e}");
        }
    }
}
