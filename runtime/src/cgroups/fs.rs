//! Owns: reading and writing single cgroupfs interface files, with errors that carry path and data.
//! Kernel interface: cgroupfs files (Documentation/admin-guide/cgroup-v1/, cgroup-v2.rst): one
//! value per write(2), which the kernel parses as a whole.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::CgroupError;

/// Writes `data` to the interface file `dir/file` in a single write(2) (cgroupfs takes a value
/// per write call; splitting it would hand the kernel two partial values).
pub(super) fn write(dir: &Path, file: &str, data: &str) -> Result<(), CgroupError> {
    let path = dir.join(file);
    let fail = |source| CgroupError::Write {
        path: path.clone(),
        data: data.to_string(),
        source,
    };
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(fail)?;
    let n = f.write(data.as_bytes()).map_err(fail)?;
    if n != data.len() {
        return Err(fail(std::io::Error::new(
            std::io::ErrorKind::WriteZero,
            "short write",
        )));
    }
    Ok(())
}

/// Reads the whole interface file `dir/file`.
pub(super) fn read(dir: &Path, file: &str) -> Result<String, CgroupError> {
    let path = dir.join(file);
    fs::read_to_string(&path).map_err(|source| CgroupError::Read { path, source })
}

/// Pids listed in `dir/cgroup.procs` (this cgroup only, not its children).
pub(super) fn procs(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    Ok(read(dir, "cgroup.procs")?
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect())
}

/// `dir` and every cgroup below it, parents before children. A container with a cgroup
/// namespace may create child cgroups; they must be emptied and removed too.
pub(super) fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if let Ok(entries) = fs::read_dir(&out[i]) {
            for e in entries.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    out.push(e.path());
                }
            }
        }
        i += 1;
    }
    out
}

/// Pids in `dir` and in every cgroup below it.
pub(super) fn procs_recursive(dir: &Path) -> Vec<i32> {
    tree(dir)
        .iter()
        .filter_map(|d| procs(d).ok())
        .flatten()
        .collect()
}

/// The value after `key` in a flat-keyed file such as memory.events or memory.oom_control
/// ("oom_kill 3" lines).
pub(super) fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key))
            .then(|| it.next()?.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod unit {
    use super::keyed;

    #[test]
    fn keyed_finds_the_value_of_a_flat_key() {
        let t = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed(t, "oom_kill"), Some(3));
        assert_eq!(keyed(t, "under_oom"), Some(0));
        assert_eq!(keyed(t, "oom"), None);
        assert_eq!(keyed("oom_kill x\n", "oom_kill"), None);
    }
}
