//! The netd binary: `netd [--socket PATH] [--state-dir DIR] [--config FILE]` serves in the
//! foreground; `netd down` removes everything netd made. Errors are one line, exit 1.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use netd::config::Config;
use netd::core::{lock, Core};
use netd::server::{self, Listen};
use netd::store::{self, Identity, Store};
use netd::{reconcile, sys, watch};

#[derive(Parser)]
#[command(
    name = "netd",
    version,
    about = "rbox's container networking service: bridges, veth pairs, leases, NAT, published ports, names",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    /// More log output (repeat for more); RUST_LOG works too.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Args, Clone)]
struct Common {
    /// The socket clients connect to.
    #[arg(long, env = "RBOX_NETD_SOCKET", default_value = netd_proto::DEFAULT_SOCKET, global = true)]
    socket: PathBuf,
    /// Where networks and leases are kept.
    #[arg(long, default_value = "/var/lib/rbox/netd", global = true)]
    state_dir: PathBuf,
    /// Settings (TOML): table, bridge prefix, subnets, resolvers, socket group, limits.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Remove every bridge, veth, lease and the nftables table this netd made (run it with
    /// netd stopped).
    Down,
}

fn main() {
    let cli = Cli::parse();
    let filter = match cli.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let env = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    tracing_subscriber::fmt()
        .with_env_filter(env)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let r = match cli.command {
        None => serve(&cli.common),
        Some(Cmd::Down) => down(&cli.common),
    };
    if let Err(e) = r {
        eprintln!("netd: {e:#}");
        std::process::exit(1);
    }
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("bad path {}", p.display()))
}

fn serve(c: &Common) -> Result<()> {
    if !rustix::process::geteuid().is_root() {
        anyhow::bail!("netd needs root (it makes bridges, veths and nftables rules)");
    }
    let cfg = Config::load(c.config.as_deref())?;
    let state_dir = absolute(&c.state_dir)?;
    let socket = absolute(&c.socket)?;
    let store = Store::open(&state_dir, &cfg.table)?;
    store.save_identity(&Identity {
        table: cfg.table.clone(),
        bridge_prefix: cfg.bridge_prefix.clone(),
    })?;
    let listen = Listen {
        path: socket.clone(),
        group: cfg
            .socket_group
            .as_deref()
            .map(server::group_id)
            .transpose()?,
        request_timeout: Duration::from_millis(cfg.request_timeout_ms.max(100)),
        max_connections: cfg.max_connections.max(1),
    };
    sys::signal::block_term();
    let mut core = Core::new(cfg.clone(), store)?;
    reconcile::start(&mut core)?;
    let shared = std::sync::Arc::new(std::sync::Mutex::new(core));
    watch::spawn(shared.clone(), cfg.bridge_prefix.clone())?;
    let weak = std::sync::Arc::downgrade(&shared);
    lock(&shared)
        .fw
        .watch(Box::new(move || {
            if let Some(core) = weak.upgrade() {
                lock(&core).rebuild_firewall();
            }
        }))
        .map_err(|e| anyhow::anyhow!("firewall watcher: {e}"))?;
    let listener = server::bind(&listen)?;
    {
        let core = lock(&shared);
        tracing::info!(
            "netd {} serving on {} (table {}, {} network(s), {} attachment(s), MTU {})",
            env!("CARGO_PKG_VERSION"),
            socket.display(),
            core.cfg.table,
            core.networks.len(),
            core.atts.len(),
            core.mtu
        );
    }
    let serving = shared.clone();
    std::thread::Builder::new()
        .name("accept".into())
        .spawn(move || server::serve(listener, serving, &listen))
        .context("start the accept thread")?;
    let sig = sys::signal::wait_term();
    // Wait for the request in progress; containers' networking stays as it is.
    let _held = lock(&shared);
    server::unbind(&socket);
    tracing::info!("signal {sig}: stopped; containers keep their networking");
    std::process::exit(0);
}

fn down(c: &Common) -> Result<()> {
    if !rustix::process::geteuid().is_root() {
        anyhow::bail!("netd down needs root");
    }
    let state_dir = absolute(&c.state_dir)?;
    let mut cfg = Config::load(c.config.as_deref())?;
    if c.config.is_none() {
        if let Some(id) = store::read_identity(&state_dir) {
            cfg.table = id.table;
            cfg.bridge_prefix = id.bridge_prefix;
        }
    }
    if std::os::unix::net::UnixStream::connect(&c.socket).is_ok() {
        anyhow::bail!(
            "a netd still listens on {}: stop it first (netd down removes what it serves)",
            c.socket.display()
        );
    }
    let store = reconcile::open_for_down(&state_dir, &cfg.table)?;
    let mut core = Core::new(cfg, store)?;
    reconcile::down(&mut core)?;
    let _ = std::fs::remove_file(&c.socket);
    eprintln!(
        "netd down: removed the bridges, veths, leases and table {} of {}",
        core.cfg.table,
        state_dir.display()
    );
    Ok(())
}
