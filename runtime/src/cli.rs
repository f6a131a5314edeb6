//! rrun's command line (clap derive), as in docs/CLI.md. No kernel interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "rrun", version, about = "Run a command from an image in its own namespaces on an overlay root", args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// The store (layers, images, containers).
    #[arg(long, env = "RBOX_ROOT", global = true)]
    pub root: Option<PathBuf>,
    /// More output on stderr (repeat for more); RUST_LOG works too (-v is --volume).
    #[arg(long = "verbose", action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List containers (running ones; -a for all).
    Ps {
        /// Show exited containers too.
        #[arg(short = 'a', long)]
        all: bool,
    },
    /// Run a command inside a running container.
    Exec(ExecArgs),
    /// Stop a container: SIGTERM, then SIGKILL after the grace period.
    Stop {
        /// Seconds to wait after SIGTERM before SIGKILL.
        #[arg(short = 't', long = "time", default_value_t = 10)]
        time: u64,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Send a signal to a container's init.
    Kill {
        /// Signal name or number (KILL, SIGTERM, 15, ...).
        #[arg(short = 's', long, default_value = "KILL")]
        signal: String,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove containers (-f: kill running ones first).
    Rm {
        /// Kill the container if it is running.
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Print a container's output (kept for detached containers).
    Logs {
        /// Keep following the output until the container exits.
        #[arg(short = 'f', long)]
        follow: bool,
        name: String,
    },
    /// Print a container's state as JSON.
    Inspect { name: String },
    /// User-defined networks (needs netd).
    #[command(subcommand)]
    Network(NetworkCmd),
}

#[derive(Debug, Subcommand)]
pub enum NetworkCmd {
    /// Create a network.
    Create {
        name: String,
        #[arg(long)]
        subnet: Option<String>,
    },
    /// List networks.
    Ls,
    /// Remove a network.
    Rm { name: String },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// IMAGE: sha256:<64 hex>, a unique hex prefix of >= 12 digits, or NAME[:TAG].
    #[arg(long)]
    pub image: Option<String>,
    /// Name the container; a named container is kept after it exits until `rrun rm`.
    #[arg(long)]
    pub name: Option<String>,
    /// Run in the background and print the container id.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Remove the container when it exits (default for unnamed, non-detached runs).
    #[arg(long)]
    pub rm: bool,
    /// Keep stdin open.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Hostname (default: the first 12 hex digits of the container id).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Set an environment variable (K=V, or K to copy it from rrun's environment).
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// User: UID[:GID] or a name from the image's /etc/passwd.
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Bind-mount HOSTDIR at DIR (":ro" for read-only).
    #[arg(short = 'v', long = "volume", value_name = "HOSTDIR:DIR[:ro]")]
    pub volumes: Vec<String>,
    /// Mount a fresh tmpfs at DIR.
    #[arg(long = "tmpfs", value_name = "DIR")]
    pub tmpfs: Vec<String>,
    /// Make the root filesystem read-only.
    #[arg(long)]
    pub read_only: bool,
    /// Network: none, host, bridge, NETWORK or container:NAME.
    #[arg(long, default_value = "bridge")]
    pub net: String,
    /// Publish a port: [HOSTIP:]HOSTPORT:PORT[/tcp|/udp].
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Memory limit (bytes, or with k, m, g).
    #[arg(long)]
    pub memory: Option<String>,
    /// CPU limit as a number of CPUs (0.5 = half a CPU).
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPUs the container may run on (e.g. 0-1,3).
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Maximum number of tasks.
    #[arg(long)]
    pub pids_limit: Option<u64>,
    /// remap (default as root: container root is an unprivileged host id) or host.
    #[arg(long)]
    pub userns: Option<String>,
    /// COMMAND [ARG...] (default: the image's entrypoint + cmd).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Keep stdin open.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Set an environment variable (K=V).
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Working directory.
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// User: UID[:GID] or a name.
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// The container (name or id).
    pub name: String,
    /// COMMAND [ARG...].
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}
