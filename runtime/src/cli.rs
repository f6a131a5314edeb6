//! rrun's command line (clap derive), as in docs/CLI.md. No kernel interface.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "rrun",
    version,
    about = "Run a command from an image in its own namespaces on an overlay root",
    args_conflicts_with_subcommands = true
)]
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

/// Moves the global options given before a subcommand (`rrun --root DIR ps`) behind it.
/// Any option of the run form disables subcommands (so `rrun --image X ps` runs `ps` in the
/// container), and clap counts global options among them; behind the subcommand they are
/// that subcommand's (they are `global`). Anything else is returned unchanged.
pub fn hoist_globals(args: Vec<OsString>) -> Vec<OsString> {
    let mut i = 1;
    while let Some(a) = args.get(i).and_then(|a| a.to_str()) {
        match a {
            "--root" => i += 2,
            "--verbose" => i += 1,
            _ if a.starts_with("--root=") => i += 1,
            _ => break,
        }
    }
    let Some(sub) = args.get(i).and_then(|a| a.to_str()) else {
        return args;
    };
    let is_sub = i > 1
        && Cli::command()
            .get_subcommands()
            .any(|c| c.get_name() == sub || c.get_all_aliases().any(|n| n == sub));
    if !is_sub {
        return args;
    }
    let mut out = Vec::with_capacity(args.len());
    out.push(args[0].clone());
    out.push(args[i].clone());
    out.extend(args[1..i].iter().cloned());
    out.extend(args[i + 1..].iter().cloned());
    out
}

/// A clap usage error as one line: clap's first line without its "error: " prefix, and the
/// command whose `--help` explains it (clap's own text adds a usage block and a hint).
pub fn one_line_usage_error(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let first = first.strip_prefix("error: ").unwrap_or(&first);
    let command = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Usage: "))
        .map(|u| {
            u.split_whitespace()
                .take_while(|w| {
                    w.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !w.starts_with('-')
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "rrun".into());
    format!("{first} (see `{command} --help`)")
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command from an image, in Docker's order (the same as `rrun --image IMAGE`).
    #[command(override_usage = "rrun run [OPTIONS] IMAGE [COMMAND [ARG...]]")]
    Run(Box<RunArgs>),
    /// List containers (running ones; -a for all), newest first.
    Ps {
        /// Show exited containers (and damaged records) too.
        #[arg(short = 'a', long)]
        all: bool,
        /// Show full container ids and commands.
        #[arg(long)]
        no_trunc: bool,
        /// Print only the container ids.
        #[arg(short = 'q', long)]
        quiet: bool,
        /// table (default) or json (one JSON object per line, as `docker ps --format json`).
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
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
    /// Print a container's output (kept for every container not removed on exit).
    Logs {
        /// Keep following the output until the container exits.
        #[arg(short = 'f', long)]
        follow: bool,
        name: String,
    },
    /// Print a container's state as JSON.
    Inspect { name: String },
    /// List a container's published ports (80/tcp -> 0.0.0.0:8080).
    Port { name: String },
    /// User-defined networks (needs netd).
    #[command(subcommand)]
    Network(NetworkCmd),
}

#[derive(Debug, Subcommand)]
pub enum NetworkCmd {
    /// Create a network (a bridge of netd's with its own subnet and names).
    Create {
        name: String,
        /// IPv4 subnet (CIDR); default: the next free one from netd's pool.
        #[arg(long)]
        subnet: Option<String>,
        /// IPv6 too (a ULA /64 unless --subnet6).
        #[arg(long)]
        ipv6: bool,
        /// IPv6 subnet (CIDR); implies --ipv6.
        #[arg(long)]
        subnet6: Option<String>,
    },
    /// List networks.
    #[command(alias = "list")]
    Ls,
    /// Print a network as JSON, with its containers.
    Inspect { name: String },
    /// Remove networks (refused while a container uses one).
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Connect a running container to another network.
    Connect {
        /// Another name for the container on that network.
        #[arg(long)]
        alias: Vec<String>,
        network: String,
        container: String,
    },
    /// Disconnect a container from a network.
    Disconnect { network: String, container: String },
}

#[derive(Debug, Clone, Args)]
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
    pub env: Vec<OsString>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// User: UID[:GID] or a name from the image's /etc/passwd.
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Bind-mount HOSTDIR at DIR (":ro" for read-only).
    #[arg(short = 'v', long = "volume", value_name = "HOSTDIR:DIR[:ro]")]
    pub volumes: Vec<String>,
    /// Mount a fresh tmpfs at DIR; OPTIONS as Docker's: size=SIZE, mode=OCTAL, uid=N, gid=N,
    /// ro, rw, exec, noexec, nosuid, nodev (default noexec,nosuid,nodev).
    #[arg(long = "tmpfs", value_name = "DIR[:OPTIONS]")]
    pub tmpfs: Vec<String>,
    /// Make the root filesystem read-only.
    #[arg(long)]
    pub read_only: bool,
    /// Network: none, host, bridge, NETWORK, container:NAME, pasta or slirp4netns (user-mode,
    /// rootless: Debian's passt or slirp4netns package). Default: bridge; as a user whom
    /// netd's socket does not accept (or without netd): pasta where it is installed, else none,
    /// with a note.
    #[arg(long)]
    pub net: Option<String>,
    /// Publish a port: [HOSTIP:][HOSTPORT:]PORT[/tcp|/udp] (no HOSTPORT, or 0: a free one is picked).
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Another name the container answers to on a user network.
    #[arg(long = "network-alias", value_name = "NAME")]
    pub network_alias: Vec<String>,
    /// A nameserver for the container's /etc/resolv.conf (instead of netd's choice).
    #[arg(long = "dns", value_name = "IP")]
    pub dns: Vec<String>,
    /// An /etc/hosts entry NAME:IP (IP may be host-gateway).
    #[arg(long = "add-host", value_name = "NAME:IP")]
    pub add_host: Vec<String>,
    /// Memory limit (bytes, or with k, m, g).
    #[arg(long)]
    pub memory: Option<String>,
    /// CPU limit as a number of CPUs (0.5 = half a CPU).
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPUs the container may run on (e.g. 0-1,3).
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Maximum number of tasks (0 or -1: unlimited, as in Docker).
    #[arg(long, allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// remap (default as root: container root is an unprivileged host id) or host.
    #[arg(long)]
    pub userns: Option<String>,
    /// Add a capability to Docker's default set (NET_ADMIN or CAP_NET_ADMIN; ALL).
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a capability from Docker's default set (ALL drops every one).
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Every capability, no seccomp filter, no masked or read-only kernel paths (all inside the
    /// container's own user namespace under remap: host devices stay out).
    #[arg(long)]
    pub privileged: bool,
    /// Resource limit NAME=SOFT[:HARD] (nofile, nproc, core, ...; "unlimited").
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]")]
    pub ulimit: Vec<String>,
    /// no-new-privileges[=true|false] (default true), seccomp=unconfined|PROFILE.json.
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// COMMAND [ARG...] (default: the image's entrypoint + cmd).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<OsString>,
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
    pub env: Vec<OsString>,
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
    pub command: Vec<OsString>,
}
