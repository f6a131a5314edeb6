//! The command line, as runc has it: argument structs from liboci-cli (runc's flags), a few of
//! our own where runc's defaults differ from liboci-cli's (`kill ID` defaults to SIGTERM), and
//! the dispatch to the subcommands. No kernel interface.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};
use liboci_cli::GlobalOpts;

#[derive(Parser, Debug)]
#[command(
    name = "rrun-oci",
    version,
    about = "rbox's OCI runtime (runc's command line)"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Create a container from a bundle; its process waits until `start`.
    Create(liboci_cli::Create),
    /// Start the user process of a created container.
    Start(liboci_cli::Start),
    /// Print the OCI state of a container (JSON).
    State(liboci_cli::State),
    /// Send a signal (default SIGTERM) to the container's init, or with --all to every process.
    Kill(Kill),
    /// Delete a stopped container (with --force, a running one too).
    Delete(liboci_cli::Delete),
    /// Create and start a container, and wait for it unless --detach.
    Run(liboci_cli::Run),
    /// Run a process in a running container.
    Exec(liboci_cli::Exec),
    /// List the processes of a container.
    Ps(liboci_cli::Ps),
    /// Freeze every process of a container.
    Pause(liboci_cli::Pause),
    /// Thaw a paused container.
    Resume(liboci_cli::Resume),
    /// List the containers under --root.
    List(liboci_cli::List),
    /// Print the runtime-spec features document (JSON).
    Features(liboci_cli::Features),
    /// Update a running container's cgroup limits (--resources FILE or runc's flags).
    /// Negative numbers are values, as runc takes them (`--memory-swap -1`, `--pids-limit -1`).
    #[command(allow_negative_numbers = true)]
    Update(crate::update::UpdateArgs),
    /// Checkpoint (refused: not supported).
    Checkpoint(Refused),
    /// Restore (refused: not supported).
    Restore(Refused),
    /// Events (refused: not supported).
    Events(Refused),
}

/// `kill [--all] ID [SIGNAL]`: the signal defaults to SIGTERM as in runc.
#[derive(Args, Debug)]
pub struct Kill {
    /// Send the signal to every process in the container's cgroup.
    #[arg(short, long)]
    pub all: bool,
    pub container_id: String,
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

/// Subcommands we refuse in one line; their arguments are accepted and ignored.
#[derive(Args, Debug)]
pub struct Refused {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// The state directory from --root, else runc's default for this user (see rootless.rs).
pub fn root_dir(g: &GlobalOpts) -> PathBuf {
    g.root.clone().unwrap_or_else(crate::rootless::default_root)
}

/// Runs the subcommand; returns the process exit code.
pub fn dispatch(cli: Cli) -> Result<i32> {
    if cli.global.systemd_cgroup {
        bail!("--systemd-cgroup: the systemd cgroup driver is not supported (no systemd here); use cgroupfs (podman --cgroup-manager=cgroupfs)");
    }
    if let Some(f) = cli.global.log_format.as_deref() {
        if f != "text" && f != "json" {
            bail!("--log-format {f:?}: use text or json");
        }
    }
    let root = root_dir(&cli.global);
    match cli.cmd {
        Cmd::Create(a) => crate::create::create(&root, &a.into()).map(|()| 0),
        Cmd::Run(a) => crate::create::run(&root, &a),
        Cmd::Start(a) => crate::commands::start(&root, &a.container_id).map(|()| 0),
        Cmd::State(a) => crate::commands::state(&root, &a.container_id).map(|()| 0),
        Cmd::Kill(a) => crate::commands::kill(&root, &a.container_id, &a.signal, a.all).map(|()| 0),
        Cmd::Delete(a) => crate::commands::delete(&root, &a.container_id, a.force).map(|()| 0),
        Cmd::Exec(a) => crate::exec::exec(&root, &a),
        Cmd::Ps(a) => crate::commands::ps(&root, &a.container_id, &a.format).map(|()| 0),
        Cmd::Pause(a) => crate::commands::pause(&root, &a.container_id, true).map(|()| 0),
        Cmd::Resume(a) => crate::commands::pause(&root, &a.container_id, false).map(|()| 0),
        Cmd::List(a) => crate::commands::list(&root, &a.format, a.quiet).map(|()| 0),
        Cmd::Features(_) => crate::features::print().map(|()| 0),
        Cmd::Update(a) => crate::update::update(&root, &a).map(|()| 0),
        Cmd::Checkpoint(_) => bail!("checkpoint is not supported by rrun-oci"),
        Cmd::Restore(_) => bail!("restore is not supported by rrun-oci"),
        Cmd::Events(_) => bail!("events is not supported by rrun-oci"),
    }
}
