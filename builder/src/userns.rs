//! Rootless runs with subordinate ids: when a non-root user has /etc/subuid and /etc/subgid
//! ranges and newuidmap/newgidmap exist, rbuild re-executes itself in a new user namespace
//! mapping 0 -> the user and 1..=N -> the subordinate range (as rootless Podman does), so image
//! owners are kept instead of collapsed. Kernel interfaces: unshare(2) CLONE_NEWUSER,
//! /proc/<pid>/ns/user and /proc/self/uid_map (user_namespaces(7)); the maps are written by
//! newuidmap(1)/newgidmap(1).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use store::subid::{self, SubRange};

/// The marker telling a re-executed rbuild that it must enter its user namespace first.
pub const CHILD_ENV: &str = "RBUILD_USERNS_CHILD";
/// Set to 0 to collapse owners even when subordinate ids are available.
pub const SUBIDS_ENV: &str = "RBUILD_SUBIDS";

/// What extraction may do with owners, devices and xattrs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    /// real root: everything kept
    Root,
    /// root of a user namespace with subordinate ids: owners kept, no devices, user.* overlay xattrs
    UserNs,
    /// a plain user: owners collapse to the user
    Unprivileged,
}

/// The privilege of this process.
pub fn privilege() -> Privilege {
    if !rustix::process::geteuid().is_root() {
        Privilege::Unprivileged
    } else if in_initial_userns() {
        Privilege::Root
    } else {
        Privilege::UserNs
    }
}

fn in_initial_userns() -> bool {
    // the initial namespace maps every id: "0 0 4294967295"
    fs::read_to_string("/proc/self/uid_map")
        .map(|m| m.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
        .unwrap_or(true)
}

/// The uid and gid maps of this process, `inside:outside:count` joined by commas.
pub fn id_maps() -> (String, String) {
    let read = |p: &str| {
        fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(":"))
            .collect::<Vec<_>>()
            .join(",")
    };
    (read("/proc/self/uid_map"), read("/proc/self/gid_map"))
}

fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Everything needed to map a child: the tools and both ranges; None when not applicable.
fn plan() -> Option<(PathBuf, PathBuf, SubRange, SubRange)> {
    if rustix::process::geteuid().is_root() || std::env::var_os(CHILD_ENV).is_some() {
        return None;
    }
    if std::env::var(SUBIDS_ENV).map(|v| v == "0").unwrap_or(false) {
        return None;
    }
    let uid = rustix::process::geteuid().as_raw();
    let name = subid::user_name(uid);
    let owner = subid::Owner::user(name.as_deref(), uid);
    let u = subid::first(&fs::read_to_string(subid::SUBUID).ok()?, &owner)?;
    let g = subid::first(&fs::read_to_string(subid::SUBGID).ok()?, &owner)?;
    Some((find_tool("newuidmap")?, find_tool("newgidmap")?, u, g))
}

/// In a non-root process with subordinate ids: runs this very command again inside a mapped
/// user namespace and returns its exit code. None when not applicable, or when the namespace
/// could not be set up (the caller then goes on without it, collapsing owners).
pub fn reexec(root: &Path) -> Option<i32> {
    let (newuidmap, newgidmap, u, g) = plan()?;
    let exe = std::env::current_exe().ok()?;
    let mut child = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(CHILD_ENV, "1")
        .env("RBOX_ROOT", root)
        .spawn()
        .ok()?;
    let pid = child.id().to_string();
    let own = fs::read_link("/proc/self/ns/user").ok();
    let started = Instant::now();
    // wait for the child to have unshared its user namespace
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st.code().unwrap_or(1));
        }
        let theirs = fs::read_link(format!("/proc/{pid}/ns/user")).ok();
        if theirs.is_some() && theirs != own {
            break;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let uid = rustix::process::geteuid().as_raw().to_string();
    let gid = rustix::process::getegid().as_raw().to_string();
    let map = |tool: &Path, id: &str, r: SubRange| {
        Command::new(tool)
            .args([
                pid.as_str(),
                "0",
                id,
                "1",
                "1",
                &r.start.to_string(),
                &r.count.to_string(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if !(map(&newuidmap, &uid, u) && map(&newgidmap, &gid, g)) {
        tracing::warn!("newuidmap/newgidmap failed: owners are collapsed to the user");
        let _ = child.kill();
        let _ = child.wait();
        return None;
    }
    let st = child.wait().ok()?;
    Some(st.code().unwrap_or(1))
}

/// First thing a re-executed child does (still single-threaded): unshare the user namespace
/// and wait until the parent has written both maps.
pub fn enter_child() -> Result<(), String> {
    // the process has no other thread yet: this runs first in main
    crate::sys::unshare_user_namespace()
        .map_err(|e| format!("cannot create a user namespace: {e}"))?;
    let started = Instant::now();
    loop {
        let u = fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
        let g = fs::read_to_string("/proc/self/gid_map").unwrap_or_default();
        if !u.trim().is_empty() && !g.trim().is_empty() {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(10) {
            return Err("the user namespace maps were not written in time".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
