//! Holds: who uses which image. A client (rrun for its containers) records through this API
//! that holder H uses image X, and releases the hold when it is done; `rbuild image rm`,
//! `layer rm` and `gc` ask here what is held and never read another program's files.
//! Kernel interfaces: rename(2) (a hold appears whole), unlink(2), getdents64(2), and /proc
//! for the liveness of process-bound holds (see process.rs).
//!
//! # Layout
//!
//! One file per hold: `holds/<image hex>.<holder>`, so that the image and the holder are known
//! from the name alone (a damaged file still holds its image, and is released by name). It
//! holds JSON: the image's layers (hex DiffIDs, so a layer stays protected whatever becomes of
//! the image's config), the process it is bound to, if any, and when it was made.
//!
//! # Lifetimes
//!
//! - [`Lifetime::UntilReleased`]: until [`Store::release`]. rrun's hold for a container lasts
//!   until `rrun rm`, as in Docker, where a kept, exited container blocks `image rm`.
//! - [`Lifetime::WhileProcessRuns`]: bound to a process (pid, start time, boot id). Once that
//!   process is gone the hold is dropped by the first reader of the holds ([`Store::holds`]), so
//!   a client killed half-way leaves nothing that blocks a removal. rrun holds an image this
//!   way from the moment it resolves it until the container's record is saved, then makes the
//!   hold [`Lifetime::UntilReleased`].
//!
//! A hold is written under the store lock taken shared (see the crate docs), so a removal,
//! which takes it exclusive, sees it. Holds are written without fsync(2): a process-bound hold
//! is moot after a crash, and the change to `UntilReleased` replaces an existing file, which
//! ext4 flushes before the rename.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::digest::is_id_hex;
use crate::error::StoreError;
use crate::files::{read_store_file, write_atomic, Durability};
use crate::layout::Store;
use crate::process::ProcessId;
use crate::resolve::ResolvedImage;

/// The longest holder name.
const MAX_HOLDER: usize = 128;

/// Who holds an image: a name the client chooses, unique among its holders (rrun:
/// [`Holder::container`]). 1 to 128 of `[A-Za-z0-9_.-]`, starting with a letter or digit, so
/// it is a safe file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder(String);

impl Holder {
    pub fn new(name: &str) -> Result<Holder, StoreError> {
        let ok = (1..=MAX_HOLDER).contains(&name.len())
            && name.as_bytes()[0].is_ascii_alphanumeric()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if ok {
            Ok(Holder(name.to_string()))
        } else {
            Err(StoreError::InvalidHolder(name.to_string()))
        }
    }

    /// The holder of a container's image: `container-<id>`, the one name rrun (and the
    /// migration of the previous format) give it.
    pub fn container(id: &str) -> Result<Holder, StoreError> {
        Holder::new(&format!("container-{id}"))
    }

    pub fn name(&self) -> &str {
        &self.0
    }

    /// The container id of a [`Holder::container`] holder.
    pub fn container_id(&self) -> Option<&str> {
        self.0.strip_prefix("container-")
    }
}

/// How long a hold lasts (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lifetime {
    UntilReleased,
    WhileProcessRuns(ProcessId),
}

impl Lifetime {
    /// Bound to the calling process.
    pub fn this_process() -> Result<Lifetime, StoreError> {
        ProcessId::current()
            .map(Lifetime::WhileProcessRuns)
            .ok_or_else(|| StoreError::Io {
                path: PathBuf::from("/proc/self/stat"),
                source: io::Error::other("cannot read this process's start time"),
            })
    }
}

/// What a hold file holds.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    /// Hex DiffIDs of the image's layers.
    #[serde(default)]
    layers: Vec<String>,
    /// The process it is bound to; absent: until released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    process: Option<ProcessId>,
    /// Seconds since the epoch.
    #[serde(default)]
    created: u64,
}

/// One hold, as [`Store::holds`] reads it.
#[derive(Debug, Clone)]
pub struct Hold {
    pub holder: Holder,
    /// The image's hex id.
    pub image: String,
    /// Its layers' hex DiffIDs (empty when the file is damaged).
    pub layers: Vec<String>,
    /// None when the file is damaged: the hold then lasts until released.
    pub lifetime: Option<Lifetime>,
    /// Why the file could not be read, if it could not.
    pub damaged: Option<String>,
    pub path: PathBuf,
}

impl Hold {
    /// Who holds it, for messages: `container <id>`, `holder <name>`, with the process or the
    /// damage it is known by.
    pub fn by(&self) -> String {
        let who = match self.holder.container_id() {
            Some(id) => format!("container {id}"),
            None => format!("holder {}", self.holder.name()),
        };
        match (&self.lifetime, &self.damaged) {
            (_, Some(why)) => format!("{who} (its hold {} is damaged: {why})", self.path.display()),
            (Some(Lifetime::WhileProcessRuns(p)), _) => {
                format!("{who}, for as long as process {} runs", p.pid)
            }
            _ => who,
        }
    }

    /// What releases it, for messages.
    pub fn fix(&self) -> String {
        match self.holder.container_id() {
            Some(_) => "remove the container first (`rrun rm`)".into(),
            None => "release the hold first".into(),
        }
    }

    /// True when nothing but a release ends it.
    pub fn until_released(&self) -> bool {
        !matches!(self.lifetime, Some(Lifetime::WhileProcessRuns(_)))
    }
}

/// `<image hex>.<holder>` -> (image hex, holder); None for any other name.
fn parse_name(name: &str) -> Option<(String, Holder)> {
    let (image, holder) = (name.get(..64)?, name.get(64..)?.strip_prefix('.')?);
    if !is_id_hex(image) {
        return None;
    }
    Holder::new(holder).ok().map(|h| (image.to_string(), h))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Store {
    /// Records that `holder` uses `image` for `lifetime`, replacing a hold it had on the same
    /// image. Take it under [`Store::lock_shared`], in which the image was resolved.
    pub fn hold(
        &self,
        image: &ResolvedImage,
        holder: &Holder,
        lifetime: Lifetime,
    ) -> Result<(), StoreError> {
        self.hold_layers(image.hex(), &image.layers, holder, lifetime)
    }

    /// [`Store::hold`] of the image `hex` whose layers are `layers` (hex DiffIDs).
    pub(crate) fn hold_layers(
        &self,
        hex: &str,
        layers: &[String],
        holder: &Holder,
        lifetime: Lifetime,
    ) -> Result<(), StoreError> {
        let dir = self.holds_dir();
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                return Err(StoreError::Io {
                    path: dir,
                    source: e,
                })
            }
            _ => {}
        }
        let record = Record {
            layers: layers.to_vec(),
            process: match lifetime {
                Lifetime::UntilReleased => None,
                Lifetime::WhileProcessRuns(p) => Some(p),
            },
            created: now(),
        };
        let dest = dir.join(format!("{hex}.{}", holder.name()));
        let mut bytes = serde_json::to_vec(&record).map_err(|e| StoreError::Corrupt {
            path: dest.clone(),
            reason: e.to_string(),
        })?;
        bytes.push(b'\n');
        write_atomic(&self.tmp_dir(), &dest, &bytes, Durability::Unsynced)
    }

    /// Ends every hold of `holder`; returns how many there were. Missing is fine.
    pub fn release(&self, holder: &Holder) -> Result<usize, StoreError> {
        let dir = self.holds_dir();
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => {
                return Err(StoreError::Io {
                    path: dir,
                    source: e,
                })
            }
        };
        let mut n = 0;
        for e in rd {
            let e = e.map_err(StoreError::io(&dir))?;
            let name = e.file_name();
            let Some((_, h)) = name.to_str().and_then(parse_name) else {
                continue;
            };
            if h == *holder {
                match fs::remove_file(e.path()) {
                    Ok(()) => n += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(err) => {
                        return Err(StoreError::Io {
                            path: e.path(),
                            source: err,
                        })
                    }
                }
            }
        }
        Ok(n)
    }

    /// Every hold whose holder is still there, sorted by image and holder. Holds bound to a
    /// process that is gone are dropped on the way; a damaged hold file counts as a hold until
    /// released (its name says which image and which holder). Files of other names are not
    /// holds and are skipped. A store without `holds/` has none.
    pub fn holds(&self) -> Result<Vec<Hold>, StoreError> {
        let dir = self.holds_dir();
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(StoreError::Io {
                    path: dir,
                    source: e,
                })
            }
        };
        let mut out = Vec::new();
        for e in rd {
            let e = e.map_err(StoreError::io(&dir))?;
            let name = e.file_name();
            let Some((image, holder)) = name.to_str().and_then(parse_name) else {
                continue;
            };
            let path = e.path();
            let read = match read_store_file(&path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // released meanwhile
                Err(e) => Err(e.to_string()),
                Ok(b) => serde_json::from_slice::<Record>(&b).map_err(|e| e.to_string()),
            };
            let hold = match read {
                Ok(r) => {
                    if let Some(p) = r.process.as_ref().filter(|p| !p.alive()) {
                        tracing::debug!(
                            pid = p.pid,
                            "dropping the hold {}: its process is gone",
                            path.display()
                        );
                        match fs::remove_file(&path) {
                            Ok(()) => continue,
                            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                            Err(e) => return Err(StoreError::Io { path, source: e }),
                        }
                    }
                    Hold {
                        holder,
                        image,
                        layers: r.layers.into_iter().filter(|l| is_id_hex(l)).collect(),
                        lifetime: Some(match r.process {
                            Some(p) => Lifetime::WhileProcessRuns(p),
                            None => Lifetime::UntilReleased,
                        }),
                        damaged: None,
                        path,
                    }
                }
                Err(why) => Hold {
                    holder,
                    image,
                    layers: Vec::new(),
                    lifetime: None,
                    damaged: Some(why),
                    path,
                },
            };
            out.push(hold);
        }
        out.sort_by(|a, b| (&a.image, a.holder.name()).cmp(&(&b.image, b.holder.name())));
        Ok(out)
    }

    /// The holds on image `hex` (see [`Store::holds`]).
    pub fn holds_on(&self, hex: &str) -> Result<Vec<Hold>, StoreError> {
        Ok(self
            .holds()?
            .into_iter()
            .filter(|h| h.image == hex)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_names_are_safe_file_names() {
        for ok in ["a", "container-0123", "oci.abc_d-e", &"x".repeat(128)] {
            assert!(Holder::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "-a",
            "a/b",
            "../x",
            "a b",
            "a\n",
            &"x".repeat(129),
            "é",
        ] {
            assert!(Holder::new(bad).is_err(), "{bad:?}");
        }
        let c = Holder::container(&"ab".repeat(32)).unwrap();
        assert_eq!(c.container_id(), Some("ab".repeat(32).as_str()));
        assert!(Holder::container("../../x").is_err());
    }

    #[test]
    fn hold_file_names_name_the_image_and_the_holder() {
        let img = "c".repeat(64);
        let (i, h) = parse_name(&format!("{img}.container-x.y")).unwrap();
        assert_eq!((i.as_str(), h.name()), (img.as_str(), "container-x.y"));
        assert!(parse_name(&format!("{img}container-x")).is_none());
        assert!(parse_name(&format!("{}.x", "C".repeat(64))).is_none());
        assert!(parse_name(&format!("{img}.")).is_none());
        assert!(parse_name("w-1-2-x").is_none());
    }
}
