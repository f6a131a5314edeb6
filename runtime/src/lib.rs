//! rrun: runs a command from an rbox image in its own user, pid, mount, uts, ipc, net and cgroup
//! namespaces on an overlay root, with rinit as PID 1, and manages the container's lifecycle.
//! See docs/DESIGN.md and docs/CLI.md; each module says which kernel interface it drives.

pub mod cgroups;
pub mod channel;
pub mod child;
pub mod cli;
pub mod commands;
pub mod container;
pub mod detach;
pub mod error;
pub mod exec;
pub mod idmap;
pub mod image;
pub mod memfd;
pub mod mounts;
pub mod netns;
pub mod rootfs;
pub mod run;
pub mod spec;
pub mod state;
pub mod supervise;
pub mod sys;
pub mod tty;
pub mod users;

pub use error::{Error, Result};

/// Microseconds since rrun started, for `--verbose` timing lines of the start-up phases.
pub fn elapsed_us() -> u128 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed().as_micros()
}
