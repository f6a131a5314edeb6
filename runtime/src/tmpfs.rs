//! `--tmpfs PATH[:OPTIONS]`, in Docker's syntax: the options parsed and checked once on the
//! command line (size, mode, uid, gid, ro/rw, exec/noexec, nosuid, nodev; anything else is
//! refused in one line), and the tmpfs made from them as a detached mount. Defaults are
//! Docker's and Podman's: `noexec,nosuid,nodev`, mode 1777, no size limit but the kernel's
//! (half of RAM). Kernel docs: Documentation/filesystems/tmpfs.rst, fsopen(2), fsconfig(2),
//! fsmount(2).

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};

use rustix::mount::MountAttrFlags;
use serde::{Deserialize, Serialize};

use crate::error::{user, Context, Result};
use crate::sys;

/// One `--tmpfs`, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Stored")]
pub struct Tmpfs {
    /// The mount point inside the container, as given.
    pub path: String,
    /// The tmpfs `size=`: bytes, or a percentage of RAM (`50%`); None: the kernel's default.
    pub size: Option<String>,
    /// The root directory's mode (default 1777).
    pub mode: u32,
    /// Owner of the root directory, in the container's ids.
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub readonly: bool,
    /// Programs on it cannot be executed (the default, as in Docker; `exec` lifts it).
    pub noexec: bool,
}

/// The options Docker's `--tmpfs` takes that rrun applies, for the error line.
const KNOWN: &str = "size=SIZE, mode=OCTAL, uid=N, gid=N, ro, rw, exec, noexec, nosuid, nodev";

impl Tmpfs {
    /// Parses `PATH[:OPTIONS]`, OPTIONS being comma-separated; a later option overrides an
    /// earlier one (`noexec,exec` is exec). nosuid and nodev are always on.
    pub fn parse(arg: &str) -> Result<Tmpfs> {
        let (path, opts) = arg.split_once(':').unwrap_or((arg, ""));
        let mut t = Tmpfs {
            path: path.to_string(),
            size: None,
            mode: 0o1777,
            uid: None,
            gid: None,
            readonly: false,
            noexec: true,
        };
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            t.apply(arg, o)?;
        }
        Ok(t)
    }

    fn apply(&mut self, arg: &str, o: &str) -> Result<()> {
        let bad = |why: String| user(format!("bad --tmpfs {arg:?}: {why}"));
        let (key, value) = match o.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (o, None),
        };
        let id = |v: &str| {
            v.parse::<u32>()
                .map_err(|_| bad(format!("{key}={v} is no number: use a numeric id")))
        };
        match (key, value) {
            ("ro", None) => self.readonly = true,
            ("rw", None) => self.readonly = false,
            ("noexec", None) => self.noexec = true,
            ("exec", None) => self.noexec = false,
            ("nosuid" | "nodev", None) => {}
            ("size", Some(v)) => self.size = Some(size(v).map_err(bad)?),
            ("mode", Some(v)) => {
                self.mode = u32::from_str_radix(v, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| bad(format!("mode={v}: use an octal mode such as 1777")))?
            }
            ("uid", Some(v)) => self.uid = Some(id(v)?),
            ("gid", Some(v)) => self.gid = Some(id(v)?),
            _ => return Err(bad(format!("option {o:?} is not supported: use {KNOWN}"))),
        }
        Ok(())
    }

    /// A new tmpfs with these options, as a detached mount (nosuid, nodev, and noexec and
    /// read-only as asked). Made in the container's user namespace, so uid and gid are the
    /// container's ids (the kernel refuses one without a mapping).
    pub fn new_mount(&self) -> Result<OwnedFd> {
        let what = format!("--tmpfs {}", self.path);
        let fs = sys::mount::fsopen(c"tmpfs").ctx(|| format!("fsopen tmpfs for {what}"))?;
        let set = |key: &std::ffi::CStr, value: String| -> Result<()> {
            let v = CString::new(value).map_err(|_| user(format!("bad {what}")))?;
            sys::mount::fsconfig_string(fs.as_fd(), key, &v)
                .ctx(|| format!("{what}: {}={}", key.to_string_lossy(), v.to_string_lossy()))
        };
        set(c"mode", format!("{:o}", self.mode))?;
        if let Some(s) = &self.size {
            set(c"size", s.clone())?;
        }
        if let Some(u) = self.uid {
            set(c"uid", u.to_string())?;
        }
        if let Some(g) = self.gid {
            set(c"gid", g.to_string())?;
        }
        sys::mount::fsconfig_create(fs.as_fd()).ctx(|| format!("create the tmpfs of {what}"))?;
        let mut attrs = MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV;
        if self.noexec {
            attrs |= MountAttrFlags::MOUNT_ATTR_NOEXEC;
        }
        if self.readonly {
            attrs |= MountAttrFlags::MOUNT_ATTR_RDONLY;
        }
        sys::mount::fsmount(fs.as_fd(), attrs).ctx(|| format!("fsmount the tmpfs of {what}"))
    }
}

/// A tmpfs `size=` as the kernel takes it: bytes (from a number with an optional k, m, g or t
/// suffix, as `--memory`) or a percentage of RAM.
fn size(v: &str) -> std::result::Result<String, String> {
    if let Some(p) = v.strip_suffix('%') {
        return match p.parse::<u32>() {
            Ok(n) if (1..=100).contains(&n) => Ok(v.to_string()),
            _ => Err(format!("size={v}: use a percentage from 1% to 100%")),
        };
    }
    crate::cgroups::parse_size(v)
        .map(|b| b.to_string())
        .map_err(|e| format!("size={v}: {e}"))
}

/// What state.json holds: the parsed options, or a plain path (records of rrun before
/// options existed, whose tmpfs were exec and mode 1777).
#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Path(String),
    Parsed {
        path: String,
        size: Option<String>,
        mode: u32,
        uid: Option<u32>,
        gid: Option<u32>,
        readonly: bool,
        noexec: bool,
    },
}

impl From<Stored> for Tmpfs {
    fn from(s: Stored) -> Tmpfs {
        match s {
            Stored::Path(path) => Tmpfs {
                path,
                size: None,
                mode: 0o1777,
                uid: None,
                gid: None,
                readonly: false,
                noexec: false,
            },
            Stored::Parsed {
                path,
                size,
                mode,
                uid,
                gid,
                readonly,
                noexec,
            } => Tmpfs {
                path,
                size,
                mode,
                uid,
                gid,
                readonly,
                noexec,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_options_parse_and_later_ones_win() {
        let t = Tmpfs::parse("/x:size=1m,mode=1770,uid=5,gid=6,ro,exec").unwrap();
        assert_eq!(t.path, "/x");
        assert_eq!(t.size.as_deref(), Some("1048576"));
        assert_eq!((t.mode, t.uid, t.gid), (0o1770, Some(5), Some(6)));
        assert!(t.readonly && !t.noexec);
        let d = Tmpfs::parse("/y").unwrap();
        assert!(d.noexec && !d.readonly && d.size.is_none() && d.mode == 0o1777);
        assert!(Tmpfs::parse("/y:exec,noexec").unwrap().noexec);
        assert_eq!(
            Tmpfs::parse("/y:size=50%").unwrap().size.as_deref(),
            Some("50%")
        );
    }

    #[test]
    fn unknown_or_malformed_options_are_refused_in_one_line() {
        for bad in [
            "/x:suid",
            "/x:dev",
            "/x:size=lots",
            "/x:size=0%",
            "/x:mode=999",
            "/x:mode=17777",
            "/x:uid=root",
            "/x:nr_inodes=5",
            "/x:ro=1",
        ] {
            let e = Tmpfs::parse(bad).unwrap_err().to_string();
            assert!(
                e.starts_with("bad --tmpfs") && !e.contains('\n'),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn old_records_holding_a_plain_path_still_read() {
        let t: Tmpfs = serde_json::from_str("\"/scratch\"").unwrap();
        assert_eq!(t.path, "/scratch");
        assert!(!t.noexec);
        let back: Tmpfs =
            serde_json::from_str(&serde_json::to_string(&Tmpfs::parse("/a:ro").unwrap()).unwrap())
                .unwrap();
        assert!(back.readonly && back.noexec);
    }
}
