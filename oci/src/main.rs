//! rrun-oci: rbox's runtime behind runc's command line, for engines that drive an OCI runtime
//! (podman with conmon, containerd's shim). It reads a bundle's `config.json` (OCI runtime-spec
//! 1.x) and builds the container with the rrun library's kernel code (namespaces, id maps,
//! cgroups, mounts, pivot_root, capabilities). Like runc it leaves no process of its own
//! behind: after `create` the container's init waits on an exec fifo until `start`, and the
//! engine (its conmon or shim, a subreaper) is its parent. State lives under `--root`
//! (default /run/rrun-oci), one directory per container.

mod cli;
mod commands;
mod console;
mod create;
mod exec;
mod features;
mod hooks;
mod init;
mod log;
mod mounts;
mod process;
mod rootless;
mod spec;
mod state;
mod update;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let log = log::Log::open(&cli.global);
    let code = match cli::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            log.error(&format!("{e:#}"));
            1
        }
    };
    std::process::exit(code)
}
