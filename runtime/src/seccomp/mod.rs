//! The container's system-call filter (seccomp(2) SECCOMP_SET_MODE_FILTER, kernel doc
//! Documentation/userspace-api/seccomp_filter.rst): by default a profile equivalent to
//! Docker's (`default.json`: EPERM for every call it does not allow; keyctl, add_key,
//! kexec_load, open_by_handle_at, bpf, perf_event_open, mount, unshare and namespace flags of
//! clone refused without the matching capability; clone3 ENOSYS so that libcs fall back to
//! clone; i386 numbers go through the same rules, x32 and every other architecture's fail
//! closed), `--security-opt seccomp=unconfined`, or a profile in Docker's JSON format
//! (`seccomp=FILE`, [`profile`]).
//!
//! Built with the `libseccomp` crate over Debian's libseccomp (libseccomp-dev, linked
//! statically, see .cargo/config.toml): it is the library Docker, runc, crun and podman use,
//! so a profile means here what it means there (names resolved per architecture, multiplexed
//! socketcall/ipc, argument comparisons on 32-bit arches), with no syscall table of ours to
//! keep up to date. rrun only compiles with it, in rrun's own process: the child gets the
//! finished BPF program and installs it with one seccomp(2) call ([`crate::sys::seccomp`]),
//! just before it executes rinit (or before it leaves root, when no_new_privs is off and the
//! kernel wants CAP_SYS_ADMIN for the install). Compiled programs are cached in the store,
//! keyed by a digest of everything the compilation reads ([`cache`]). What this build and
//! kernel can honour, for rrun-oci's features document, is in [`support`].

pub mod cache;
pub mod profile;
pub mod support;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{user, Context, Result};

/// The built-in profile.
pub const DEFAULT_PROFILE: &str = include_str!("default.json");

/// Which filter a container gets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Seccomp {
    /// [`DEFAULT_PROFILE`].
    #[default]
    Default,
    /// No filter.
    Unconfined,
    /// A profile in Docker's JSON format, its text as read from the file named.
    Profile { file: String, json: String },
}

impl Seccomp {
    /// The value of `--security-opt seccomp=VALUE`: `unconfined`, `default` or a file, read
    /// and checked now. Errors: one line naming the file and what is wrong with it.
    pub fn from_opt(value: &str) -> Result<Seccomp> {
        match value {
            "unconfined" => return Ok(Seccomp::Unconfined),
            "default" | "builtin" => return Ok(Seccomp::Default),
            _ => {}
        }
        let json = std::fs::read_to_string(value)
            .ctx(|| format!("read the seccomp profile {value} (--security-opt seccomp=FILE)"))?;
        profile::Profile::parse(&json)
            .map_err(|e| user(format!("seccomp profile {value}: {e}")))?;
        Ok(Seccomp::Profile {
            file: value.to_string(),
            json,
        })
    }

    /// The SECCOMP_FILTER_FLAG_* bits its profile asks for (its `flags`; the built-in profile
    /// has none), for seccomp(2) when the filter is installed. Errors: as [`program`]'s.
    pub fn flags(&self) -> Result<u32> {
        let Seccomp::Profile { file, json } = self else {
            return Ok(0);
        };
        profile::Profile::parse(json)
            .and_then(|p| p.flags())
            .map_err(|e| user(format!("{file}: {e}")))
    }

    /// The profile's text, None when unconfined.
    fn json(&self) -> Option<&str> {
        match self {
            Seccomp::Default => Some(DEFAULT_PROFILE),
            Seccomp::Unconfined => None,
            Seccomp::Profile { json, .. } => Some(json),
        }
    }
}

/// A compiled filter: `struct sock_filter` instructions (8 bytes each, native byte order),
/// as seccomp_export_bpf(3) writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program(pub Vec<u8>);

impl Program {
    /// Checks the shape the kernel accepts: a whole number of instructions, 1 to BPF_MAXINSNS.
    pub fn new(bytes: Vec<u8>) -> Option<Program> {
        let n = bytes.len() / 8;
        (bytes.len().is_multiple_of(8) && (1..=4096).contains(&n)).then_some(Program(bytes))
    }
}

/// The program for `choice` and the container's capabilities `caps` (a profile's rules may
/// depend on them), from the cache at `cache_dir` when there, else compiled and stored there
/// (a cache that cannot be written is skipped). None when unconfined.
pub fn program(choice: &Seccomp, caps: u64, cache_dir: Option<&Path>) -> Result<Option<Program>> {
    let Some(json) = choice.json() else {
        return Ok(None);
    };
    let key = cache::key(json, caps);
    if let Some(p) = cache_dir.and_then(|d| cache::load(d, &key)) {
        return Ok(Some(p));
    }
    let what = match choice {
        Seccomp::Profile { file, .. } => file.as_str(),
        _ => "the default seccomp profile",
    };
    let prof = profile::Profile::parse(json).map_err(|e| user(format!("{what}: {e}")))?;
    let prog = prof
        .compile(caps)
        .map_err(|e| user(format!("compile {what}: {e}")))?;
    if let Some(d) = cache_dir {
        cache::store(d, &key, &prog);
    }
    Ok(Some(prog))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_profile_compiles_and_unconfined_has_none() {
        let p = program(&Seccomp::Default, crate::caps::default_mask(), None)
            .unwrap()
            .unwrap();
        assert!(p.0.len() > 100 * 8, "{}", p.0.len());
        assert!(program(&Seccomp::Unconfined, 0, None).unwrap().is_none());
    }

    #[test]
    fn podmans_profile_compiles_when_installed() {
        let f = "/usr/share/containers/seccomp.json";
        let s = Seccomp::from_opt(f).expect("golang-github-containers-common is in .ci/deps.sh");
        assert!(program(&s, crate::caps::default_mask(), None)
            .unwrap()
            .is_some());
    }

    #[test]
    fn bad_files_are_one_line() {
        let e = Seccomp::from_opt("/nonexistent/p.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/nonexistent/p.json") && !e.contains('\n'),
            "{e}"
        );
    }
}
