//! Container records under `<root>/containers/<id>/`: state.json (written atomically, under a
//! flock of the container's folder), lookup by name or id, status with pid-reuse detection.
//! Kernel interfaces: flock(2), rename(2), /proc/PID/stat (start time), proc(5).

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};
use crate::spec::ContainerConfig;
use crate::sys;

pub const STATE_FILE: &str = "state.json";

/// What state.json holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub name: String,
    /// `sha256:<hex>`: rbuild refuses to remove an image while a container references it.
    pub image: String,
    /// Seconds since the epoch.
    pub created: u64,
    /// Host pid of the container's PID 1 (0 before it exists).
    pub pid: i32,
    /// Its start time (clock ticks after boot), to tell it from a reused pid.
    pub pid_start: u64,
    /// The rrun process (foreground run or detached monitor) that owns the container.
    pub owner_pid: i32,
    pub owner_start: u64,
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub finished: bool,
    #[serde(default)]
    pub oom_killed: bool,
    pub detached: bool,
    pub auto_remove: bool,
    /// The overlay's upper and work dirs live in memory (containers removed on exit).
    #[serde(default)]
    pub upper_in_memory: bool,
    /// The cgroup's directories (one per hierarchy), for `exec` and `rm` (Cgroup::from_paths).
    #[serde(default)]
    pub cgroup_paths: Vec<PathBuf>,
    pub config: ContainerConfig,
}

/// running / exited / created, as `ps` and `inspect` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Exited,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
        }
    }
}

impl State {
    pub fn status(&self) -> Status {
        if self.finished {
            return Status::Exited;
        }
        if self.pid > 0 && alive(self.pid, self.pid_start) {
            return Status::Running;
        }
        if self.pid == 0 && alive(self.owner_pid, self.owner_start) {
            return Status::Created;
        }
        Status::Exited
    }

    pub fn owner_alive(&self) -> bool {
        alive(self.owner_pid, self.owner_start)
    }
}

/// True when `pid` exists and started at `start` (not a reused pid).
pub fn alive(pid: i32, start: u64) -> bool {
    pid > 0 && sys::proc_start_time(pid) == Some(start)
}

/// The folder of containers of one store.
#[derive(Debug, Clone)]
pub struct Containers {
    dir: PathBuf,
}

/// An exclusive flock held until dropped.
pub struct Lock {
    _file: File,
}

fn flock(path: &Path) -> Result<Lock> {
    let f = File::open(path).ctx(|| format!("open {} to lock it", path.display()))?;
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(Lock { _file: f });
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e).ctx(|| format!("lock {}", path.display()));
        }
    }
}

impl Containers {
    pub fn open(root: &Path) -> Result<Containers> {
        let dir = crate::image::containers_dir(root);
        std::fs::create_dir_all(&dir).ctx(|| format!("create {}", dir.display()))?;
        Ok(Containers { dir })
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Locks the whole containers folder (name allocation, listing against removal).
    pub fn lock_all(&self) -> Result<Lock> {
        flock(&self.dir)
    }

    /// Locks one container's folder.
    pub fn lock(&self, id: &str) -> Result<Lock> {
        flock(&self.dir(id))
    }

    /// Reads a container's state; a file that does not parse is read again under the
    /// container's lock (writers hold it).
    pub fn load(&self, id: &str) -> Result<State> {
        match self.read_state(id) {
            Err(Error::Json { .. }) => {
                let _l = self.lock(id)?;
                self.read_state(id)
            }
            other => other,
        }
    }

    /// One read of state.json (callers holding the lock use this directly).
    fn read_state(&self, id: &str) -> Result<State> {
        let p = self.dir(id).join(STATE_FILE);
        let bytes = std::fs::read(&p).ctx(|| format!("read {}", p.display()))?;
        serde_json::from_slice(&bytes).map_err(|source| Error::Json { what: format!("parse {}", p.display()), source })
    }

    /// Writes state.json atomically (temp file + rename). Callers hold the container's lock
    /// (or, for a new container, the lock of the whole folder).
    pub fn save(&self, st: &State) -> Result<()> {
        let dir = self.dir(&st.id);
        let tmp = dir.join(".state.json.tmp");
        let p = dir.join(STATE_FILE);
        let bytes = serde_json::to_vec_pretty(st).map_err(|source| Error::Json { what: "serialize state".into(), source })?;
        let mut f = File::create(&tmp).ctx(|| format!("create {}", tmp.display()))?;
        f.write_all(&bytes).ctx(|| format!("write {}", tmp.display()))?;
        drop(f);
        std::fs::rename(&tmp, &p).ctx(|| format!("rename {} into place", p.display()))
    }

    /// Loads, changes and saves one container's state under its lock. Ok(None) when the
    /// container is gone meanwhile.
    pub fn update<F: FnOnce(&mut State)>(&self, id: &str, f: F) -> Result<Option<State>> {
        if !self.dir(id).is_dir() {
            return Ok(None);
        }
        let _l = self.lock(id)?;
        let mut st = match self.read_state(id) {
            Ok(s) => s,
            Err(_) if !self.dir(id).join(STATE_FILE).exists() => return Ok(None),
            Err(e) => return Err(e),
        };
        f(&mut st);
        self.save(&st)?;
        Ok(Some(st))
    }

    /// Every container with a readable state.json.
    pub fn list(&self) -> Vec<State> {
        let mut out = vec![];
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                if let Ok(st) = self.load(&id) {
                    out.push(st);
                }
            }
        }
        out.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        out
    }

    /// Finds a container by exact name, full id, or unique id prefix.
    pub fn find(&self, key: &str) -> Result<State> {
        let all = self.list();
        if let Some(s) = all.iter().find(|s| s.name == key || s.id == key) {
            return Ok(s.clone());
        }
        let m: Vec<&State> = if key.len() >= 3 { all.iter().filter(|s| s.id.starts_with(key)).collect() } else { vec![] };
        match m.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Error::NoSuchContainer(key.to_string())),
            _ => Err(Error::User(format!("container id prefix {key} is ambiguous: give more digits or the name"))),
        }
    }

    /// True when a container other than `except` already uses `name`.
    pub fn name_taken(&self, name: &str) -> bool {
        self.list().iter().any(|s| s.name == name)
    }

    /// Removes a container's folder (upper dir, logs, state). The container must be dead.
    /// Unprivileged, overlayfs leaves directories we cannot read (work/work is mode 0): they
    /// are opened up (they are ours) and the removal retried.
    pub fn remove_dir(&self, id: &str) -> Result<()> {
        let d = self.dir(id);
        match std::fs::remove_dir_all(&d) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                open_up(&d);
                std::fs::remove_dir_all(&d).ctx(|| format!("remove {}", d.display()))
            }
            Err(e) => Err(e).ctx(|| format!("remove {}", d.display())),
        }
    }
}

/// A new random container id: 64 hex digits.
pub fn new_id() -> Result<String> {
    let mut b = [0u8; 32];
    // SAFETY: the buffer is valid for its length.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        return Err(std::io::Error::last_os_error()).ctx(|| "getrandom for a container id".into());
    }
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Valid container names: like Docker's, `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 64.
pub fn check_name(n: &str) -> Result<()> {
    let ok = !n.is_empty()
        && n.len() <= 64
        && n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::User(format!("bad container name {n:?}: use letters, digits, '_', '.', '-' (starting with a letter or digit)")))
    }
}

/// Gives the owner rwx on every directory below `dir` (never following symlinks).
fn open_up(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(m) = std::fs::symlink_metadata(dir) else { return };
    if !m.is_dir() {
        return;
    }
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode((m.permissions().mode() | 0o700) & 0o7777));
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                open_up(&e.path());
            }
        }
    }
}
