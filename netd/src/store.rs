//! netd's state on disk under `--state-dir`: one JSON file per network
//! (`networks/NAME.json`) and per attachment (`attachments/HOSTVETH.json`, which holds the
//! lease), each written to a temporary file and renamed into place, so netd killed at any
//! moment leaves every record whole or absent. Also the locks that make netd one per table
//! and one per state dir. Kernel interfaces: rename(2), flock(2).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ipnet::{Ipv4Net, Ipv6Net};
use netd_proto::PublishedPort;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// Where the per-table locks live (shared by every netd of the machine, whatever its
/// network namespace: a table name is one netd's).
pub const LOCK_DIR: &str = "/run/rbox/netd-locks";

/// A network as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRec {
    pub name: String,
    pub bridge: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub subnet6: Option<Ipv6Net>,
    pub gateway6: Option<Ipv6Addr>,
    pub default: bool,
}

/// An attachment (and its lease) as stored. Written with `ready: false` before anything is
/// made in the kernel, and `ready: true` once all of it is: a record found not ready at
/// start belongs to an attach that was cut short and is rolled back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachRec {
    pub host_ifname: String,
    /// The host end's ifindex (0 until the veth exists): a veth of the same name made later
    /// is another one.
    pub host_index: u32,
    pub container_id: String,
    pub container_name: String,
    pub aliases: Vec<String>,
    pub network: String,
    pub ifname: String,
    pub ipv4: Ipv4Addr,
    pub ipv6: Option<Ipv6Addr>,
    pub ports: Vec<PublishedPort>,
    pub owner_uid: u32,
    pub ready: bool,
}

/// The table and bridge prefix a state folder belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub table: String,
    pub bridge_prefix: String,
}

/// The state folder, locked for this netd.
pub struct Store {
    dir: PathBuf,
    _locks: Vec<File>,
}

impl Store {
    /// Opens (creating) `dir` and takes the locks of the folder and of `table`; a second
    /// netd for either gets one line naming the holder.
    pub fn open(dir: &Path, table: &str) -> Result<Store> {
        for d in [
            dir.to_path_buf(),
            dir.join("networks"),
            dir.join("attachments"),
        ] {
            fs::create_dir_all(&d).with_context(|| format!("create {}", d.display()))?;
        }
        let _ = fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700));
        fs::create_dir_all(LOCK_DIR).with_context(|| format!("create {LOCK_DIR}"))?;
        let table_lock = Path::new(LOCK_DIR).join(format!("{table}.lock"));
        let locks = vec![
            lock(&table_lock, &format!(
                "another netd already owns nftables table {table:?} (lock {}): stop it first, or give this one another table in its config",
                table_lock.display()
            ))?,
            lock(&dir.join("lock"), &format!(
                "another netd already uses the state dir {}: stop it first, or pass another --state-dir",
                dir.display()
            ))?,
        ];
        Ok(Store {
            dir: dir.into(),
            _locks: locks,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn networks(&self) -> Result<Vec<NetworkRec>> {
        read_all(&self.dir.join("networks"))
    }

    pub fn save_network(&self, n: &NetworkRec) -> Result<()> {
        write_atomic(
            &self.dir.join("networks").join(format!("{}.json", n.name)),
            n,
        )
    }

    pub fn remove_network(&self, name: &str) -> Result<()> {
        remove(&self.dir.join("networks").join(format!("{name}.json")))
    }

    pub fn attachments(&self) -> Result<Vec<AttachRec>> {
        read_all(&self.dir.join("attachments"))
    }

    pub fn save_attachment(&self, a: &AttachRec) -> Result<()> {
        write_atomic(
            &self
                .dir
                .join("attachments")
                .join(format!("{}.json", a.host_ifname)),
            a,
        )
    }

    pub fn remove_attachment(&self, host_ifname: &str) -> Result<()> {
        remove(
            &self
                .dir
                .join("attachments")
                .join(format!("{host_ifname}.json")),
        )
    }

    /// Remembers which table and bridge prefix this state belongs to, so that `netd down`
    /// with only `--state-dir` removes the right ones.
    pub fn save_identity(&self, id: &Identity) -> Result<()> {
        write_atomic(&self.dir.join("identity.json"), id)
    }

    /// This netd's ULA /48 (fd00::/8 + 40 random bits, RFC 4193), made once and kept.
    pub fn ula_prefix(&self) -> Result<Ipv6Net> {
        let p = self.dir.join("ula-prefix");
        if let Ok(s) = fs::read_to_string(&p) {
            if let Ok(n) = s.trim().parse() {
                return Ok(n);
            }
        }
        let mut b = [0u8; 5];
        File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
            .context("read /dev/urandom")?;
        let seg = |hi: u8, lo: u8| (u16::from(hi) << 8) | u16::from(lo);
        let net = Ipv6Net::new(
            Ipv6Addr::new(
                seg(0xfd, b[0]),
                seg(b[1], b[2]),
                seg(b[3], b[4]),
                0,
                0,
                0,
                0,
                0,
            ),
            48,
        )
        .expect("/48 is valid");
        write_text(&p, &format!("{net}\n"))?;
        Ok(net)
    }
}

/// What [`Store::save_identity`] saved in `dir`, if anything (read without the locks).
pub fn read_identity(dir: &Path) -> Option<Identity> {
    let bytes = fs::read(dir.join("identity.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn lock(path: &Path, busy: &str) -> Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("open lock {}", path.display()))?;
    match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(f),
        Err(rustix::io::Errno::WOULDBLOCK) => bail!("{busy}"),
        Err(e) => Err(std::io::Error::from(e)).with_context(|| format!("lock {}", path.display())),
    }
}

fn read_all<T: DeserializeOwned>(dir: &Path) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let e = e?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        // A temporary file (`.tmp.<name>.json`) is a write that netd did not finish: the
        // rename is what commits a record, so it is dropped, whole or not. Read only at start
        // and at `netd down`, under netd's lock: no writer of this netd is half-way.
        if name.starts_with(".tmp.") {
            let _ = fs::remove_file(e.path());
            continue;
        }
        if !name.ends_with(".json") {
            continue;
        }
        let bytes = fs::read(e.path()).with_context(|| format!("read {}", e.path().display()))?;
        match serde_json::from_slice(&bytes) {
            Ok(v) => out.push(v),
            Err(err) => tracing::warn!("ignoring damaged record {}: {err}", e.path().display()),
        }
    }
    Ok(out)
}

fn write_atomic<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(v).context("serialize a record")?;
    write_text(path, &text)
}

/// Writes `text` to a temporary file beside `path` and renames it over `path`. No fsync: the
/// records describe kernel objects that do not outlive a reboot either.
fn write_text(path: &Path, text: &str) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".tmp.{name}"));
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("write {}", tmp.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("write {}", tmp.display()))?;
    drop(f);
    fs::rename(&tmp, path)
        .with_context(|| format!("rename {} to {}", tmp.display(), path.display()))
}

fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("remove {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unfinished_write_is_dropped_at_start_even_when_whole() {
        let dir = std::env::temp_dir().join(format!("netd-store-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        write_text(&dir.join("kept.json"), "1").unwrap();
        // netd killed between the write and the rename: a whole record under the temporary name.
        fs::write(dir.join(".tmp.unfinished.json"), "2").unwrap();
        fs::write(dir.join(".tmp.half.json"), "{").unwrap();
        let got: Vec<u32> = read_all(&dir).unwrap();
        let mut left: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(got, [1]);
        assert_eq!(left, ["kept.json"]);
    }
}
