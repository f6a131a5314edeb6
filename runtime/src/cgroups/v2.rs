//! Owns: what only the unified hierarchy has: enabling controllers down the tree (respecting the
//! "no internal processes" rule), cgroup.freeze, cgroup.kill and cgroup.events.
//! Kernel interface: cgroup.controllers, cgroup.subtree_control, cgroup.procs, cgroup.freeze,
//! cgroup.kill, cgroup.events (Documentation/admin-guide/cgroup-v2.rst).

use std::path::{Path, PathBuf};

use super::{fs, CgroupError};

/// The leaf rrun moves itself (and other rruns) into when its own cgroup must hand controllers to
/// children but only rruns live in it (e.g. under `systemd-run --scope -p Delegate=yes`).
pub const SELF_LEAF: &str = "rbox.rrun";

/// Makes `wanted` controllers available to children of `own`: enables each in
/// cgroup.subtree_control of every cgroup from the mount down to `own` that lacks it.
pub fn enable(mount: &Path, own: &Path, wanted: &[&'static str]) -> Result<(), CgroupError> {
    if wanted.is_empty() {
        return Ok(());
    }
    // Fast path: already enabled in our own cgroup (then in all its ancestors too).
    if let Ok(st) = fs::read(own, "cgroup.subtree_control") {
        if wanted.iter().all(|c| words(&st).any(|w| w == *c)) {
            return Ok(());
        }
    }
    let chain = chain(mount, own);
    let mut levels = Vec::with_capacity(chain.len());
    for d in &chain {
        let avail = fs::read(d, "cgroup.controllers")?;
        let enabled = fs::read(d, "cgroup.subtree_control")?;
        levels.push((
            words(&avail).map(str::to_string).collect(),
            words(&enabled).map(str::to_string).collect(),
        ));
    }
    let writes = plan(&levels, wanted).map_err(|c| CgroupError::ControllerMissing {
        controller: c,
        reason: format!(
            "the cgroup v2 hierarchy at {} does not offer it (cgroup.controllers)",
            mount.display()
        ),
    })?;
    for (i, c) in writes {
        enable_one(&chain[i], c, i + 1 == chain.len())?;
    }
    Ok(())
}

/// Which (level, controller) writes to cgroup.subtree_control make `wanted` available beneath
/// the last level. `levels` runs from the mount's top cgroup down to our own, each as
/// (cgroup.controllers, cgroup.subtree_control). Err names a controller the top does not offer.
pub fn plan(
    levels: &[(Vec<String>, Vec<String>)],
    wanted: &[&'static str],
) -> Result<Vec<(usize, &'static str)>, &'static str> {
    let mut out = Vec::new();
    for &c in wanted {
        let Some((top_avail, _)) = levels.first() else {
            return Err(c);
        };
        if !top_avail.iter().any(|a| a == c) {
            return Err(c);
        }
        for (i, (_, enabled)) in levels.iter().enumerate() {
            if !enabled.iter().any(|e| e == c) {
                out.push((i, c));
            }
        }
    }
    // Parents first: a controller can only be enabled where the parent already enables it.
    out.sort_by_key(|&(i, _)| i);
    Ok(out)
}

/// `mount`, then each directory down to `own` (inclusive).
fn chain(mount: &Path, own: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = own
        .ancestors()
        .take_while(|a| a.starts_with(mount))
        .map(Path::to_path_buf)
        .collect();
    v.reverse();
    v
}

/// Writes "+controller" to `dir`'s cgroup.subtree_control. `dir` must hold no processes (the
/// "no internal processes" rule, EBUSY otherwise). When `dir` is rrun's own cgroup and every
/// process in it is an rrun, they step aside into a leaf and the write is retried (a few times,
/// as another rrun may arrive in between).
fn enable_one(dir: &Path, c: &'static str, own: bool) -> Result<(), CgroupError> {
    let busy = || CgroupError::InternalProcesses {
        controller: c,
        path: dir.to_path_buf(),
    };
    for _ in 0..5 {
        match fs::write(dir, "cgroup.subtree_control", &format!("+{c}")) {
            Err(CgroupError::Write { source, .. }) if is_ebusy(&source) => {
                if !own || !move_rruns_to_leaf(dir)? {
                    return Err(busy());
                }
            }
            other => return other,
        }
    }
    Err(busy())
}

/// If every process in `own` runs the same executable as this one (rrun instances, or their
/// children not yet placed in a container), moves them into `own/rbox.rrun` so that `own` may
/// enable controllers for its children; false if some other process lives there. The leaf stays
/// while rruns live in it; a delegated systemd scope removes it with the scope.
fn move_rruns_to_leaf(own: &Path) -> Result<bool, CgroupError> {
    let me = std::fs::read_link("/proc/self/exe").ok();
    let procs = fs::procs(own)?;
    let ours = |p: &i32| me.is_some() && std::fs::read_link(format!("/proc/{p}/exe")).ok() == me;
    // A process that has exited since the listing is no obstacle either.
    if !procs
        .iter()
        .all(|p| ours(p) || !Path::new(&format!("/proc/{p}")).exists())
    {
        return Ok(false);
    }
    let leaf = own.join(SELF_LEAF);
    match std::fs::create_dir(&leaf) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(source) => return Err(CgroupError::Mkdir { path: leaf, source }),
    }
    tracing::debug!(leaf = %leaf.display(), ?procs, "moving rrun into a leaf cgroup so its own can delegate controllers");
    for p in procs {
        match fs::write(&leaf, "cgroup.procs", &p.to_string()) {
            Ok(()) => {}
            // Exited in the meantime.
            Err(CgroupError::Write { source, .. })
                if source.raw_os_error() == Some(rustix::io::Errno::SRCH.raw_os_error()) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn is_ebusy(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error())
}

fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split_whitespace()
}

/// cgroup.kill (kernel >= 5.14): SIGKILL to every task of the subtree in one write. False when
/// the kernel has no such file.
pub fn kill(dir: &Path) -> Result<bool, CgroupError> {
    if !dir.join("cgroup.kill").exists() {
        return Ok(false);
    }
    fs::write(dir, "cgroup.kill", "1")?;
    Ok(true)
}

/// Whether this kernel can freeze a v2 cgroup (cgroup.freeze, kernel >= 5.2).
pub fn can_freeze(dir: &Path) -> bool {
    dir.join("cgroup.freeze").exists()
}

/// Freezes (true) or thaws (false) the subtree; a freeze waits until cgroup.events says frozen,
/// or until `wait` has passed (a task stuck in the kernel may delay it; killing still proceeds).
pub fn freeze(dir: &Path, on: bool, wait: std::time::Duration) -> Result<(), CgroupError> {
    fs::write(dir, "cgroup.freeze", if on { "1" } else { "0" })?;
    if on {
        let until = std::time::Instant::now() + wait;
        while std::time::Instant::now() < until {
            if fs::keyed(&fs::read(dir, "cgroup.events")?, "frozen") == Some(1) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    Ok(())
}

#[cfg(test)]
mod unit {
    use super::*;

    fn lv(avail: &str, enabled: &str) -> (Vec<String>, Vec<String>) {
        (
            avail.split_whitespace().map(String::from).collect(),
            enabled.split_whitespace().map(String::from).collect(),
        )
    }

    #[test]
    fn enabling_walks_from_the_top_down_and_skips_what_is_on() {
        // root offers memory and pids; user.slice enables memory; the scope enables nothing.
        let levels = [
            lv("cpu memory pids", "memory pids"),
            lv("memory pids", "memory"),
            lv("memory", ""),
        ];
        assert_eq!(
            plan(&levels, &["memory", "pids"]).unwrap(),
            vec![(1, "pids"), (2, "memory"), (2, "pids")]
        );
        assert_eq!(
            plan(&levels, &["cpu"]).unwrap(),
            vec![(0, "cpu"), (1, "cpu"), (2, "cpu")]
        );
        assert!(plan(&levels, &[]).unwrap().is_empty());
    }

    #[test]
    fn enabling_refuses_a_controller_the_hierarchy_does_not_offer() {
        // Hybrid: every controller bound to v1, only hugetlb left on the unified hierarchy.
        let levels = [lv("hugetlb", "")];
        assert_eq!(plan(&levels, &["memory"]).unwrap_err(), "memory");
        assert_eq!(plan(&[], &["pids"]).unwrap_err(), "pids");
    }

    #[test]
    fn the_chain_runs_from_the_mount_to_our_cgroup() {
        let c = chain(
            Path::new("/sys/fs/cgroup"),
            Path::new("/sys/fs/cgroup/a.slice/b.scope"),
        );
        assert_eq!(
            c,
            vec![
                PathBuf::from("/sys/fs/cgroup"),
                "/sys/fs/cgroup/a.slice".into(),
                "/sys/fs/cgroup/a.slice/b.scope".into()
            ]
        );
        assert_eq!(
            chain(Path::new("/sys/fs/cgroup"), Path::new("/sys/fs/cgroup")),
            vec![PathBuf::from("/sys/fs/cgroup")]
        );
    }
}
