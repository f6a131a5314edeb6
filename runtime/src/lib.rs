//! rrun: runs a command from an rbox image in its own user, pid, mount, uts, ipc, net and cgroup
//! namespaces on an overlay root, with rinit as PID 1, and manages the container's lifecycle.
//! See docs/DESIGN.md and docs/CLI.md; each module says which kernel interface it drives.
//!
//! Choices worth knowing (details in the modules named):
//! - `--userns remap` (default as root): container ids 0..N are the `rbox` entry of
//!   /etc/subuid and /etc/subgid, else 100000..165535 ([`idmap`]). Image layers are idmapped
//!   mounts (open_tree + mount_setattr MOUNT_ATTR_IDMAP) under one overlay built with the new
//!   mount API, layers passed as fds to "lowerdir+" (no option-length limit; a layer listed
//!   twice is kept once, the kernel refuses duplicates) ([`mounts`], [`container`]).
//! - Rootless (non-root caller): container root is the caller (single-id map); the child builds
//!   the overlay itself with `userxattr`; no cgroup unless limits are asked for.
//! - Every mode (remap, host, rootless): Docker's default capabilities, inheritable and
//!   ambient empty, no_new_privs; `--cap-add`, `--cap-drop`, `--privileged` and
//!   `--security-opt` change it as in Docker ([`security`], [`caps`]). `--userns host`
//!   (Docker's `--userns=host`): no user namespace; container root is host root, so without
//!   CAP_SYS_ADMIN it cannot unmount the read-only /proc/sys, /proc/bus, ... and the masked
//!   /proc/kcore, /proc/keys, /sys/firmware, ... ([`masks`]). Remap applies the same; there
//!   the kernel also checks host-wide changes against container root's unprivileged host id.
//! - The container's init and `exec`'d processes get a session of their own (no controlling
//!   terminal but the container's pty with -t) and only descriptors 0-2; files of the image
//!   rrun reads or mounts over (/etc/passwd, /etc/hosts, volume targets) are resolved inside
//!   the root, never opened when they are FIFOs, and read with a 1 MiB cap ([`inroot`]).
//! - Containers removed on exit (unnamed, not detached, or `--rm`) keep their upper dir in
//!   rrun's tmpfs at /run/rbox/containers/<id>/ (one mount for all, `size=25%`, charged to each
//!   container's memory cgroup, unmounted by the removal of the last container in it): nothing
//!   is written to or freed on disk; named/detached
//!   containers, and rootless ones, keep it under `<root>/containers/<id>/upper` ([`upper`]).
//!   `inspect` shows the host path either way.
//! - A record is saved before anything else of a container exists ([`state`]): rrun killed at
//!   any moment leaves something `ps -a` lists and `rm -f` removes; containers removed on exit
//!   whose rrun died are removed by the next `rrun` run or `ps` once their processes are gone.
//! - /etc/hostname, /etc/hosts and /etc/resolv.conf come from a small tmpfs of the container
//!   ([`rootfs`]); /proc and /sys instances are made before pivot_root (a user namespace may only
//!   mount them while the host's are visible), rinit keeps them and adds the rest.
//! - The child starts inside its cgroup v2 directory (clone3 CLONE_INTO_CGROUP); v1 hierarchies
//!   (limits on hybrid machines) are joined through cgroup.procs.
//! - With `-u` other than root, rrun makes the kernel filesystems itself and starts rinit as
//!   that user (as `docker run --init -u` does), since rinit has no user option.
//! - Detached containers: a double-forked monitor owns the container and writes its stdout and
//!   stderr, in order, to `container.log` (`rrun logs`).
//!   A kept (named) container run in the foreground keeps the same log: without -t its stdout
//!   and stderr are pipes rrun relays to its own and copies to the log ([`supervise`]).
//! - /sys/fs/cgroup inside shows the container's own cgroups, read-only, through its cgroup
//!   namespace ([`cgroupfs`]); only hierarchies it has a cgroup of its own in.

pub mod caps;
pub mod cgroupfs;
pub mod cgroups;
pub mod channel;
pub mod child;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod container;
pub mod detach;
pub mod error;
pub mod exec;
pub mod finish;
pub mod idmap;
pub mod image;
pub mod inroot;
pub mod lock;
pub mod masks;
pub mod memfd;
pub mod mounts;
pub mod net;
pub mod nethelper;
pub mod netns;
pub mod netopts;
pub mod netrecord;
pub mod output;
pub mod ps;
pub mod rlimits;
pub mod rootfs;
pub mod run;
pub mod seccomp;
pub mod security;
pub mod spec;
pub mod state;
pub mod supervise;
pub mod sys;
pub mod tmpfs;
pub mod tty;
pub mod upper;
pub mod users;

pub use error::{Error, Result};

/// Microseconds since rrun started, for `--verbose` timing lines of the start-up phases.
pub fn elapsed_us() -> u128 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_micros()
}
