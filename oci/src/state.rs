//! Owns: the record of each container under `--root` (`<root>/<id>/state.json` and the exec
//! fifo `<root>/<id>/exec.fifo`), the container's status as runtime-spec defines it
//! (creating, created, running, paused, stopped), and the OCI state document `state` prints.
//! Kernel interfaces: /proc/PID/stat (is the init still the same process), flock(2) through
//! the rrun library's lock module.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

pub const RECORD: &str = "state.json";
pub const FIFO: &str = "exec.fifo";
/// The runtime-spec version our state documents and features follow.
pub const OCI_VERSION: &str = "1.0.2";

/// What rrun-oci keeps about a container between invocations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// Host pid of the init (0 while creating).
    pub pid: i32,
    /// Its start time (clock ticks since boot, /proc/PID/stat field 22), against pid reuse.
    pub pid_start: u64,
    pub created: String,
    pub annotations: BTreeMap<String, String>,
    pub cgroup_paths: Vec<PathBuf>,
    /// The bundle's hooks (poststart and poststop run after `create` returned).
    #[serde(default)]
    pub hooks: Option<oci_spec::runtime::Hooks>,
    #[serde(default)]
    pub paused: bool,
    /// The bundle's linux.seccomp, which `exec` applies to the processes it starts (as runc).
    #[serde(default)]
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    /// Created with --no-new-keyring: `exec`'d processes keep the caller's session keyring too.
    #[serde(default)]
    pub no_new_keyring: bool,
    /// The bundle's linux.personality, which `exec` applies too (as runc 1.2).
    #[serde(default)]
    pub personality: Option<oci_spec::runtime::LinuxPersonality>,
}

/// runtime-spec's container statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// A container id as runc accepts it: `[A-Za-z0-9_+.-]`, 1 to 1024 bytes, not `.` or `..`.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+.-".contains(&b));
    if !ok {
        bail!("invalid container id {id:?}: use letters, digits, _ + . -");
    }
    Ok(())
}

/// The directory of container `id` under `root`.
pub fn dir(root: &Path, id: &str) -> Result<PathBuf> {
    check_id(id)?;
    Ok(root.join(id))
}

impl Record {
    /// Loads the record of `id`; a missing container is an error naming it.
    pub fn load(root: &Path, id: &str) -> Result<Record> {
        let path = dir(root, id)?.join(RECORD);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("container {id} does not exist")
            }
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        };
        serde_json::from_slice(&text).with_context(|| format!("parse {}", path.display()))
    }

    /// Writes the record atomically (a temporary file renamed over the old one).
    pub fn save(&self, root: &Path) -> Result<()> {
        let d = dir(root, &self.id)?;
        let tmp = d.join(format!(".{RECORD}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec(self)?)
            .with_context(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, d.join(RECORD)).with_context(|| format!("save {}", d.display()))
    }

    /// Whether the init process is still the one we started (and not a zombie).
    pub fn init_alive(&self) -> bool {
        self.pid > 0
            && matches!(rrun::sys::procfs::proc_state_and_start(self.pid),
                Some((st, start)) if st != 'Z' && start == self.pid_start)
    }

    pub fn status(&self, root: &Path) -> Status {
        if self.pid == 0 {
            return Status::Creating;
        }
        if !self.init_alive() {
            return Status::Stopped;
        }
        if self.paused {
            return Status::Paused;
        }
        let fifo = root.join(&self.id).join(FIFO);
        if fifo.exists() {
            return Status::Created;
        }
        Status::Running
    }

    /// The OCI state document (runtime-spec "State"), with runc's extra fields.
    pub fn document(&self, root: &Path) -> serde_json::Value {
        let status = self.status(root);
        let pid = match status {
            Status::Stopped => 0,
            _ => self.pid,
        };
        serde_json::json!({
            "ociVersion": OCI_VERSION,
            "id": self.id,
            "pid": pid,
            "status": status.as_str(),
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": "",
            "annotations": self.annotations,
        })
    }
}

/// Now as RFC 3339 in UTC with nanoseconds, as runc's `created`.
pub fn rfc3339_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day) (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn ids() {
        for ok in ["a", "abc-1.2_3+x", &"x".repeat(1024)] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "é"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }
}
