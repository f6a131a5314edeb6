//! Container records under `<root>/containers/<id>/`: state.json (input like any other file:
//! validated when read, never a source of paths), written under a flock of the container's
//! folder, lookup by name or id, status with pid-reuse detection, orphan reaping and removal.
//! Kernel interfaces: flock(2), rename(2), pwrite(2), /proc/PID/stat and /proc/PID/status (proc(5)).
//!
//! Life of a record: [`Containers::reserve`] makes the folder and a placeholder state (pid 0,
//! the cgroup directories about to be made) before anything else exists, so a crash at any
//! later moment leaves a record that `ps -a` lists and `rm -f` removes completely. The pid is
//! then written in place (one page, under the lock: no block is freed on the start-up path).
//! Removal deletes the cgroup, the upper dir, state.json and then the rest of the folder, under
//! the container's lock, then releases the container's hold on its image (see image.rs): a
//! folder without a state holds nothing but files, and the next `ps`, run or `rm` that finds it
//! so (under the folder lock and then its own) removes it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::OFlags;
use rustix::io::Errno;
use rustix::rand::GetRandomFlags;
use serde::{Deserialize, Serialize};

use crate::cgroups::Cgroup;
use crate::error::{Context, Error, Result};
use crate::lock::{flock, Lock};
use crate::spec::ContainerConfig;
use crate::{sys, upper};

pub const STATE_FILE: &str = "state.json";

/// What state.json holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    /// 64 lowercase hex digits, the name of the container's folder.
    pub id: String,
    pub name: String,
    /// `sha256:<hex>`. The container holds it in the store (see image.rs) until it is removed.
    pub image: String,
    /// The image as the user named it (`alpine:3.15`, an id prefix), shown by `ps`.
    #[serde(default)]
    pub image_ref: String,
    /// Seconds since the epoch (older records have only this; see [`State::created_ns`]).
    pub created: u64,
    /// When the record was made, in nanoseconds since the epoch (0 in older records).
    #[serde(default)]
    pub created_at_ns: u64,
    /// When its init was started, in nanoseconds since the epoch (0 before).
    #[serde(default)]
    pub started_at_ns: u64,
    /// When its end was recorded, in nanoseconds since the epoch (0 before, or unknown).
    #[serde(default)]
    pub finished_at_ns: u64,
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
    /// Removed when it exits (unnamed foreground runs and --rm).
    pub auto_remove: bool,
    /// The cgroup's directories (one per hierarchy), for `exec` and `rm`. Recorded before they
    /// are made (every directory the cgroup may get), so some may never exist.
    #[serde(default)]
    pub cgroup_paths: Vec<PathBuf>,
    pub config: ContainerConfig,
}

/// created / running / exited, as `ps` and `inspect` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Its rrun is still setting it up.
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
        if self.pid > 0 && init_alive(self.pid, self.pid_start) {
            return Status::Running;
        }
        if self.pid == 0 && self.owner_alive() {
            return Status::Created;
        }
        Status::Exited
    }

    /// When the record was made, in nanoseconds since the epoch.
    pub fn created_ns(&self) -> u64 {
        match self.created_at_ns {
            0 => self.created.saturating_mul(1_000_000_000),
            ns => ns,
        }
    }

    /// Where the overlay's upper and work dirs live (derived, see [`upper::choose`]).
    pub fn upper_place(&self) -> upper::Place {
        upper::choose(self.auto_remove, self.config.rootless)
    }

    pub fn owner_alive(&self) -> bool {
        alive(self.owner_pid, self.owner_start)
            && sys::procfs::comm(self.owner_pid).as_deref() == Some("rrun")
    }

    /// Its rrun died before recording the end (the exit code is then unknown).
    pub fn orphaned(&self) -> bool {
        !self.finished && !self.owner_alive()
    }

    /// Checks what rrun relies on when it acts on a record: the id is the folder's name, the
    /// other identifiers are well formed, the cgroup directories are this container's own.
    pub fn validate(&self, folder: &str) -> std::result::Result<(), String> {
        if self.id != folder || !is_id(folder) {
            return Err("its id is not its folder's name".into());
        }
        if check_name(&self.name).is_err() {
            return Err("bad name".into());
        }
        if !self.image.strip_prefix("sha256:").is_some_and(is_id) {
            return Err("bad image id".into());
        }
        if self.image_ref.len() > 512 || self.image_ref.chars().any(char::is_control) {
            return Err("bad image reference".into());
        }
        if self.pid < 0 || self.owner_pid < 0 {
            return Err("bad pid".into());
        }
        let own = format!("rbox-{}", self.id);
        let ours = |p: &PathBuf| {
            p.is_absolute()
                && p.file_name().and_then(|n| n.to_str()) == Some(own.as_str())
                && !p
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
        };
        if !self.cgroup_paths.iter().all(ours) {
            return Err("a cgroup path that is not the container's".into());
        }
        Ok(())
    }
}

/// True when `s` is a container id: 64 lowercase hex digits.
pub fn is_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// True when `pid` exists, started at `start` (not a reused pid) and has not exited (a zombie
/// waiting for a parent that reaps slowly, such as a container whose rrun died, is dead).
pub fn alive(pid: i32, start: u64) -> bool {
    pid > 0
        && matches!(sys::procfs::proc_state_and_start(pid), Some((state, s)) if s == start && state != 'Z' && state != 'X')
}

/// [`alive`], and the process is PID 1 of a pid namespace below ours (a container's init).
pub fn init_alive(pid: i32, start: u64) -> bool {
    alive(pid, start) && sys::procfs::is_child_ns_init(pid)
}

/// One folder of the containers folder.
#[derive(Debug, Clone)]
pub enum Entry {
    Valid(Box<State>),
    /// A folder named like an id whose state is missing or refused; `why` says which.
    Corrupt {
        id: String,
        why: String,
    },
}

/// The folder of containers of one store.
#[derive(Debug, Clone)]
pub struct Containers {
    root: PathBuf,
    dir: PathBuf,
}

impl Containers {
    /// The containers of the store at `root`. Nothing is created: the folder is made with the
    /// store, and a store that does not exist has no containers.
    pub fn open(root: &Path) -> Result<Containers> {
        Ok(Containers {
            root: root.to_path_buf(),
            dir: crate::image::containers_dir(root),
        })
    }

    /// The store's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of container `id` (a validated id: never a name from a file).
    pub fn dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Locks the whole containers folder: name reservation, and listings that remove orphans.
    /// Lock order: this one first, then a container's.
    pub fn lock_all(&self) -> Result<Lock> {
        flock(&self.dir).ctx(|| format!("lock {}", self.dir.display()))
    }

    /// Locks one container's folder; `NoSuchContainer` when it is gone.
    pub fn lock(&self, id: &str) -> Result<Lock> {
        let d = self.dir(id);
        match flock(&d) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::NoSuchContainer(id.to_string()))
            }
            other => other.ctx(|| format!("lock {}", d.display())),
        }
    }

    /// Reads and validates a container's state; a file that does not parse is read again under
    /// the container's lock (its writer holds it while writing in place).
    pub fn load(&self, id: &str) -> Result<State> {
        match self.read_state(id) {
            Err(Error::Json { .. }) => {
                let _l = self.lock(id)?;
                self.read_state(id)
            }
            other => other,
        }
    }

    /// One read of state.json, validated: for callers holding the container's lock.
    pub fn load_locked(&self, id: &str) -> Result<State> {
        self.read_state(id)
    }

    fn read_state(&self, id: &str) -> Result<State> {
        if !is_id(id) {
            return Err(Error::NoSuchContainer(id.to_string()));
        }
        let p = self.dir(id).join(STATE_FILE);
        let bytes = match read_regular(&p, MAX_STATE) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NoSuchContainer(id.to_string()))
            }
            other => other.ctx(|| format!("read {}", p.display()))?,
        };
        let st: State = serde_json::from_slice(&bytes).map_err(|source| Error::Json {
            what: format!("parse {}", p.display()),
            source,
        })?;
        st.validate(id).map_err(|why| Error::BadState {
            path: p.clone(),
            why,
        })?;
        Ok(st)
    }

    /// Writes state.json: in place when the old and the new text fit in one page (the new one
    /// padded with spaces to the old length, so the file never shrinks: one pwrite, which a
    /// signal cannot cut in two), else through a temporary file renamed over it. Callers hold
    /// the container's lock (or, for a new container, the lock of the whole folder).
    pub fn save(&self, st: &State) -> Result<()> {
        const PAGE: usize = 4096;
        let dir = self.dir(&st.id);
        let p = dir.join(STATE_FILE);
        let mut bytes = serde_json::to_vec_pretty(st).map_err(|source| Error::Json {
            what: "serialize state".into(),
            source,
        })?;
        bytes.push(b'\n');
        if let Ok(f) = OpenOptions::new()
            .write(true)
            .custom_flags(OFlags::NOFOLLOW.bits() as i32)
            .open(&p)
        {
            let old = f.metadata().map(|m| m.len() as usize).unwrap_or(usize::MAX);
            if old <= PAGE && bytes.len() <= PAGE {
                bytes.resize(bytes.len().max(old), b' ');
                return f
                    .write_all_at(&bytes, 0)
                    .ctx(|| format!("write {}", p.display()));
            }
        }
        let tmp = dir.join(".state.json.tmp");
        let mut f = File::create(&tmp).ctx(|| format!("create {}", tmp.display()))?;
        f.write_all(&bytes)
            .ctx(|| format!("write {}", tmp.display()))?;
        drop(f);
        std::fs::rename(&tmp, &p).ctx(|| format!("rename {} into place", p.display()))
    }

    /// [`Containers::entries`] under the folder lock, after removing the orphans of
    /// containers removed on exit and abandoned folders (see [`Containers::tidy`]) and releasing
    /// the holds of containers that are gone. A store without a containers folder has none.
    pub fn entries_reaped(&self) -> Result<Vec<Entry>> {
        let _all = match self.lock_all() {
            Err(Error::Sys { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Vec::new())
            }
            other => other?,
        };
        crate::image::release_orphan_holds(&self.root, &self.dir);
        let entries = self.entries();
        Ok(if self.tidy(&entries) > 0 {
            self.entries()
        } else {
            entries
        })
    }

    /// Removes what nobody else will: orphans of containers removed on exit
    /// ([`Containers::reap_orphans`]) and folders left without a state by an rrun killed while
    /// it made or removed them ([`Containers::remove_abandoned`]). Called with the folder lock
    /// held; returns how many went.
    fn tidy(&self, entries: &[Entry]) -> usize {
        self.reap_orphans(entries) + self.remove_abandoned(entries)
    }

    /// Removes the folders without a state.json whose maker or remover is proven gone: a
    /// folder and its first state are made under the folder lock (held by the caller, so no
    /// creation is under way), and every removal holds the container's lock (taken here, so
    /// none is under way either); whoever left the folder so was killed. What such a folder
    /// holds is files only (an upper dir, logs): its cgroup and processes, if it had any, went
    /// before its state did. A folder whose state.json exists but is damaged is left for
    /// `rrun rm -f`.
    fn remove_abandoned(&self, entries: &[Entry]) -> usize {
        let mut n = 0;
        for e in entries {
            let Entry::Corrupt { id, .. } = e else {
                continue;
            };
            if self.is_abandoned(id) {
                tracing::info!(%id, "removing a folder whose creation or removal was cut short");
                match self.remove_dir(id) {
                    Ok(()) => n += 1,
                    Err(e) => {
                        eprintln!("rrun: warning: removing abandoned container folder {id}: {e}")
                    }
                }
            }
        }
        n
    }

    /// True when container `id`'s folder exists without a state.json and nobody is removing it
    /// (checked under its lock, which is released again). The caller holds the folder lock.
    pub fn is_abandoned(&self, id: &str) -> bool {
        if !is_id(id) {
            return false;
        }
        let Ok(_l) = self.lock(id) else { return false };
        let d = self.dir(id);
        d.is_dir()
            && std::fs::symlink_metadata(d.join(STATE_FILE))
                .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
    }

    /// Makes the folder of a new container and its placeholder state under the folder lock,
    /// after removing orphans of containers removed on exit and checking the name is free.
    pub fn reserve(&self, st: &State) -> Result<()> {
        let _all = self.lock_all()?;
        let mut entries = self.entries();
        if self.tidy(&entries) > 0 {
            entries = self.entries();
        }
        if entries
            .iter()
            .any(|e| matches!(e, Entry::Valid(s) if s.name == st.name))
        {
            return Err(Error::User(format!(
                "container name {} is in use: choose another --name or `rrun rm {}`",
                st.name, st.name
            )));
        }
        let dir = self.dir(&st.id);
        std::fs::create_dir(&dir).ctx(|| format!("create {}", dir.display()))?;
        self.save(st).inspect_err(|_| {
            let _ = remove_tree(&dir);
        })
    }

    /// Loads, changes and saves one container's state under its lock. Ok(None) when the
    /// container is gone meanwhile.
    pub fn update<F: FnOnce(&mut State)>(&self, id: &str, f: F) -> Result<Option<State>> {
        let _l = match self.lock(id) {
            Err(Error::NoSuchContainer(_)) => return Ok(None),
            other => other?,
        };
        let mut st = match self.read_state(id) {
            Err(Error::NoSuchContainer(_)) => return Ok(None),
            other => other?,
        };
        f(&mut st);
        self.save(&st)?;
        Ok(Some(st))
    }

    /// Every folder named like a container id, valid or not, oldest first. Other names are
    /// skipped with one warning line each.
    pub fn entries(&self) -> Vec<Entry> {
        let mut out = vec![];
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return out;
        };
        for e in rd.flatten() {
            let name = e.file_name();
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            let Some(id) = name.to_str().filter(|n| is_id(n) && is_dir) else {
                eprintln!(
                    "rrun: warning: {} is not a container folder: ignored (remove it by hand)",
                    e.path().display()
                );
                continue;
            };
            out.push(match self.load(id) {
                Ok(st) => Entry::Valid(Box::new(st)),
                Err(Error::NoSuchContainer(_)) => Entry::Corrupt {
                    id: id.to_string(),
                    why: "no state.json (creation or removal was cut short)".into(),
                },
                Err(Error::Json { .. }) => Entry::Corrupt {
                    id: id.to_string(),
                    why: "state.json does not parse".into(),
                },
                Err(Error::BadState { why, .. }) => Entry::Corrupt {
                    id: id.to_string(),
                    why: format!("state.json refused: {why}"),
                },
                Err(e) => Entry::Corrupt {
                    id: id.to_string(),
                    why: e.to_string(),
                },
            });
        }
        let key = |e: &Entry| match e {
            Entry::Valid(s) => (s.created, s.id.clone()),
            Entry::Corrupt { id, .. } => (0, id.clone()),
        };
        out.sort_by_key(key);
        out
    }

    /// Every container with a valid state.
    pub fn list(&self) -> Vec<State> {
        self.entries()
            .into_iter()
            .filter_map(|e| {
                if let Entry::Valid(s) = e {
                    Some(*s)
                } else {
                    None
                }
            })
            .collect()
    }

    /// Finds a container by exact name, full id, or unique id prefix (at least 3 digits).
    pub fn find(&self, key: &str) -> Result<State> {
        let all = self.list();
        if let Some(s) = all.iter().find(|s| s.name == key || s.id == key) {
            return Ok(s.clone());
        }
        let m: Vec<&State> = if key.len() >= 3 {
            all.iter().filter(|s| s.id.starts_with(key)).collect()
        } else {
            vec![]
        };
        match m.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Error::NoSuchContainer(key.to_string())),
            _ => Err(Error::User(format!(
                "container id prefix {key} is ambiguous: give more digits or the name"
            ))),
        }
    }

    /// Removes what is left of a container whose processes are gone: its cgroup (killing any
    /// task still in it), its upper dir, its folder. The caller holds the container's lock.
    pub fn destroy(&self, st: &State) -> Result<()> {
        if !st.cgroup_paths.is_empty() {
            let cg = Cgroup::from_paths(&st.cgroup_paths)?;
            if !cg.pids().is_empty() {
                let _ = cg.kill_all();
            }
            cg.remove()?;
        }
        self.remove_dir(&st.id)
    }

    /// Removes the containers removed on exit whose rrun died (SIGKILL, OOM) and whose
    /// processes are gone: nobody else will. Called with the folder lock held.
    fn reap_orphans(&self, entries: &[Entry]) -> usize {
        let mut n = 0;
        for e in entries {
            let Entry::Valid(s) = e else { continue };
            if s.orphaned() && s.status() == Status::Exited && s.config.net.user_mode() {
                // Its rrun died and so could not stop the network helper (pasta, slirp4netns).
                crate::netrecord::stop_helper(&self.dir(&s.id));
            }
            if !(s.auto_remove && s.orphaned() && s.status() == Status::Exited) {
                continue;
            }
            let Ok(_l) = self.lock(&s.id) else { continue };
            match self.read_state(&s.id) {
                Ok(now) if now.auto_remove && now.orphaned() && now.status() == Status::Exited => {
                    tracing::info!(id = %now.id, "removing a container whose rrun died");
                    match self.destroy(&now) {
                        Ok(()) => n += 1,
                        Err(e) => eprintln!(
                            "rrun: warning: removing orphaned container {}: {e}",
                            now.name
                        ),
                    }
                }
                _ => {}
            }
        }
        n
    }

    /// Removes a container's upper dir (outside the store when it is in rrun's tmpfs), its
    /// state.json and then the rest of its folder, then releases its hold on its image. Its
    /// processes and cgroup must be gone, and the caller holds the container's lock (see
    /// [`Containers::remove_abandoned`]).
    pub fn remove_dir(&self, id: &str) -> Result<()> {
        self.remove_folder(id)?;
        crate::image::release(&self.root, id)
    }

    fn remove_folder(&self, id: &str) -> Result<()> {
        if let Some(run) = is_id(id).then(|| upper::run_dir_of(id)).flatten() {
            remove_tree(&run)?;
            upper::unmount_run_if_unused()?;
        }
        let d = self.dir(id);
        crate::netrecord::release(&d, id);
        if std::fs::symlink_metadata(&d).is_ok_and(|m| !m.is_dir()) {
            return std::fs::remove_file(&d).ctx(|| format!("remove {}", d.display()));
        }
        match std::fs::remove_file(d.join(STATE_FILE)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).ctx(|| format!("remove {}", d.join(STATE_FILE).display()))
            }
            _ => {}
        }
        remove_tree(&d)
    }
}

/// The largest state.json rrun reads.
const MAX_STATE: u64 = 1 << 20;

/// Reads a regular file of at most `max` bytes, refusing symlinks, FIFOs and devices (a
/// damaged store must not make rrun hang or read without end).
fn read_regular(p: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let f = OpenOptions::new()
        .read(true)
        .custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32)
        .open(p)?;
    let m = f.metadata()?;
    if !m.is_file() || m.len() > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a regular file of at most 1 MiB",
        ));
    }
    let mut v = Vec::with_capacity(m.len() as usize);
    f.take(max).read_to_end(&mut v)?;
    Ok(v)
}

/// Removes a directory tree, NotFound being success: the store's removal, which never follows
/// symlinks, opens up directories left unreadable (overlayfs's work/work is mode 0 when
/// rootless) and holds a bounded number of descriptors whatever the depth.
pub fn remove_tree(d: &Path) -> Result<()> {
    store::remove_tree(d).ctx(|| format!("remove {}", d.display()))
}

/// A new random container id: 64 hex digits.
pub fn new_id() -> Result<String> {
    let mut b = [0u8; 32];
    match rustix::rand::getrandom(&mut b, GetRandomFlags::empty()) {
        Ok(n) if n == b.len() => {}
        Ok(_) => return Err(Errno::IO).ctx(|| "getrandom for a container id: short read".into()),
        Err(e) => return Err(e).ctx(|| "getrandom for a container id".into()),
    }
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The longest container name rrun takes (Docker sets none; this one keeps state.json small).
pub const MAX_NAME: usize = 1024;

/// Valid container names: like Docker's, `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, of any length up to
/// [`MAX_NAME`] characters.
pub fn check_name(n: &str) -> Result<()> {
    if n.len() > MAX_NAME {
        return Err(Error::User(format!(
            "container name is {} characters long: use at most {MAX_NAME}",
            n.len()
        )));
    }
    let ok = !n.is_empty()
        && n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::User(format!("bad container name {n:?}: use letters, digits, '_', '.', '-' (starting with a letter or digit)")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_lowercase_hex_digits() {
        assert!(is_id(&"a1".repeat(32)));
        assert!(!is_id(&"A1".repeat(32)));
        assert!(!is_id(&"a1".repeat(31)));
        assert!(!is_id("../../tmp/x"));
        assert!(!is_id(&"é".repeat(32)));
    }
}
