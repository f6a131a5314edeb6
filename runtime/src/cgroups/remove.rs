//! Owns: removing a container's cgroup, child cgroups first, retrying while its last tasks
//! finish exiting. Kernel interface: rmdir(2) on cgroupfs (EBUSY while tasks remain).

use std::path::Path;
use std::time::{Duration, Instant};

use super::{fs, Cgroup, CgroupError};

/// How long remove() retries a cgroup whose last tasks are still exiting.
const REMOVE_WAIT: Duration = Duration::from_secs(2);

impl Cgroup {
    /// Removes the cgroup (and any child cgroups the container made) in every hierarchy,
    /// retrying for up to 2 s while the last tasks finish exiting. Tries every directory even
    /// after a failure and reports the first one.
    pub fn remove(self) -> Result<(), CgroupError> {
        let start = Instant::now();
        let mut first = None;
        for d in &self.dirs {
            for sub in fs::tree(&d.path).iter().rev() {
                if let Err(e) = rmdir_retry(sub, start) {
                    first.get_or_insert(e);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }
}

fn rmdir_retry(path: &Path, start: Instant) -> Result<(), CgroupError> {
    let mut nap = Duration::from_micros(500);
    loop {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error()) => {
                if start.elapsed() >= REMOVE_WAIT {
                    return Err(CgroupError::StillBusy {
                        path: path.to_path_buf(),
                        pids: fs::procs_recursive(path),
                    });
                }
                std::thread::sleep(nap);
                nap = (nap * 2).min(Duration::from_millis(20));
            }
            Err(source) => {
                return Err(CgroupError::Rmdir {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
}
