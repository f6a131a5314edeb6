//! What a container's processes are allowed, as Docker's flags set it (`--cap-add`,
//! `--cap-drop`, `--privileged`, `--security-opt no-new-privileges[=BOOL]`,
//! `--security-opt seccomp=unconfined|FILE`): the capability set ([`caps`]), no_new_privs
//! (prctl(2) PR_SET_NO_NEW_PRIVS, set by default as runc does) and the seccomp filter
//! ([`seccomp`]). Recorded in the container's state so that `rrun exec` applies the same.
//! Applied by [`apply_before_user`], [`apply_after_user`] and [`apply_last`], around the
//! switch to the container's user. rrun-oci, which sets a bundle's capability sets itself,
//! takes the filter part alone: [`compile_filter`], [`install_before_user`], [`install_last`].

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{user, Result, Step, StepError};
use crate::seccomp::{self, Seccomp};
use crate::{caps, sys};

/// A container's security settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Security {
    /// Capabilities kept in the bounding, effective and permitted sets (bit = number).
    pub caps: u64,
    /// PR_SET_NO_NEW_PRIVS before the command: setuid files and file capabilities grant nothing.
    pub no_new_privs: bool,
    /// `--privileged`: every capability, no filter, no masked or read-only kernel paths.
    pub privileged: bool,
    /// The system-call filter.
    #[serde(default)]
    pub seccomp: Seccomp,
}

impl Default for Security {
    /// Docker's defaults with no_new_privs (also what a state written before these settings
    /// existed gets, so `exec` into such a container is confined like a new one).
    fn default() -> Security {
        Security {
            caps: caps::default_mask(),
            no_new_privs: true,
            privileged: false,
            seccomp: Seccomp::Default,
        }
    }
}

impl Security {
    /// From the command line. Errors: an unknown capability or `--security-opt`, one line.
    pub fn from_flags(
        cap_add: &[String],
        cap_drop: &[String],
        privileged: bool,
        opts: &[String],
    ) -> Result<Security> {
        let mut s = Security {
            caps: caps::tweak(cap_add, cap_drop)?,
            no_new_privs: true,
            privileged,
            seccomp: Seccomp::Default,
        };
        let mut nnp = None;
        for o in opts {
            let (key, value) = split_opt(o);
            match key {
                "no-new-privileges" => nnp = Some(parse_bool(o, value.unwrap_or("true"))?),
                "seccomp" if value.is_some_and(|v| !v.is_empty()) => {
                    s.seccomp = Seccomp::from_opt(value.unwrap_or_default())?
                }
                _ => {
                    return Err(user(format!(
                    "unsupported --security-opt {o:?}: rrun knows no-new-privileges[=true|false] \
                         and seccomp=unconfined|PROFILE.json"
                )))
                }
            }
        }
        if privileged {
            // as Docker: --privileged runs without a filter, whatever profile was named
            s.caps = caps::ALL;
            s.seccomp = Seccomp::Unconfined;
        }
        // --privileged lets setuid programs work (as Docker's default), unless asked otherwise.
        s.no_new_privs = nnp.unwrap_or(!privileged);
        Ok(s)
    }

    /// Whether the container's root may mount (so rinit can make its own /tmp, /dev/shm, ...).
    pub fn may_mount(&self) -> bool {
        self.caps & caps::SYS_ADMIN != 0
    }
}

/// `KEY=VALUE` or Docker's older `KEY:VALUE`; a bare `KEY` has no value.
fn split_opt(o: &str) -> (&str, Option<&str>) {
    match o.find(['=', ':']) {
        Some(i) => (&o[..i], Some(&o[i + 1..])),
        None => (o, None),
    }
}

fn parse_bool(opt: &str, v: &str) -> Result<bool> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(user(format!(
            "--security-opt {opt:?}: the value must be true or false"
        ))),
    }
}

/// Makes rrun (and the processes it forks, until they execute the container's command)
/// non-dumpable (prctl(2) PR_SET_DUMPABLE 0): a process of the container cannot ptrace them,
/// nor open their /proc/PID/exe (the host's rrun binary: CVE-2019-5736), mem or fds while they
/// hold host descriptors; execve of the command makes the command dumpable again. As root
/// only: a non-dumpable child's /proc files belong to the host's root until its id maps
/// exist, so rootless rrun could not write them (and rootless has no host root to protect).
pub fn make_non_dumpable() {
    if rustix::process::geteuid().is_root() {
        let _ =
            rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    }
}

/// A compiled filter with its seccomp(2) flags, ready to install between fork and exec (no
/// allocation left to do).
pub struct Filter {
    insns: Vec<libc::sock_filter>,
    flags: u32,
}

/// The container's filter, compiled (or taken from the cache under the store at `store_root`)
/// in rrun's own process, before the fork. None when unconfined.
pub fn filter(s: &Security, store_root: Option<&Path>) -> Result<Option<Filter>> {
    let cache = store_root.map(|r| r.join("seccomp"));
    compile_filter(&s.seccomp, s.caps, cache.as_deref())
}

/// The filter of `choice` for a process holding the capabilities `caps` (a Docker profile's
/// rules may depend on them), through the cache folder `cache` when given. None when
/// unconfined. Errors: one line naming the profile and what is wrong with it.
pub fn compile_filter(choice: &Seccomp, caps: u64, cache: Option<&Path>) -> Result<Option<Filter>> {
    let Some(prog) = seccomp::program(choice, caps, cache)? else {
        return Ok(None);
    };
    Ok(Some(Filter {
        insns: sys::seccomp::instructions(&prog.0),
        flags: choice.flags()?,
    }))
}

fn install(f: Option<&Filter>) -> Result<(), StepError> {
    match f {
        Some(f) => {
            sys::seccomp::install_filter(&f.insns, f.flags).step("install the seccomp filter")
        }
        None => Ok(()),
    }
}

/// The first of the two points where a filter may go on, as runc orders them: without
/// no_new_privs the kernel lets only a holder of CAP_SYS_ADMIN install a filter, so it goes
/// on now, while the process is still root with every capability, before it becomes the
/// container's user (the filter then allows what follows: setresuid, capset, execve, ...).
pub fn install_before_user(no_new_privs: bool, f: Option<&Filter>) -> Result<(), StepError> {
    if !no_new_privs {
        install(f)?;
    }
    Ok(())
}

/// The second point: with no_new_privs (set by then), the filter goes on last, just before
/// execve, so nothing of the runtime's own setup has to pass it.
pub fn install_last(no_new_privs: bool, f: Option<&Filter>) -> Result<(), StepError> {
    if no_new_privs {
        install(f)?;
    }
    Ok(())
}

/// While still root with every capability of the container's user namespace (or of the host,
/// under `--userns host`), before switching to the container's user: shrinks the bounding
/// set; without no_new_privs, installs the filter now ([`install_before_user`]).
pub fn apply_before_user(s: &Security, f: Option<&Filter>) -> Result<(), StepError> {
    caps::drop_bounding_set(s.caps).step("drop capabilities from the bounding set")?;
    install_before_user(s.no_new_privs, f)
}

/// After switching to the container's user: lowers the effective and permitted sets, empties
/// inheritable and ambient, sets no_new_privs if asked.
pub fn apply_after_user(s: &Security) -> Result<(), StepError> {
    caps::limit_sets(s.caps).step("limit the capability sets")?;
    if s.no_new_privs {
        rustix::thread::set_no_new_privs(true).step("set no_new_privs")?;
    }
    Ok(())
}

/// The last step before execve: with no_new_privs, installs the filter ([`install_last`]).
pub fn apply_last(s: &Security, f: Option<&Filter>) -> Result<(), StepError> {
    install_last(s.no_new_privs, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(x: &[&str]) -> Vec<String> {
        x.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_and_flags() {
        let d = Security::from_flags(&[], &[], false, &[]).unwrap();
        assert_eq!(d, Security::default());
        let p = Security::from_flags(&[], &[], true, &[]).unwrap();
        assert!(p.privileged && p.caps == caps::ALL && !p.no_new_privs);
        assert_eq!(p.seccomp, Seccomp::Unconfined);
        let u = Security::from_flags(&[], &[], false, &v(&["seccomp=unconfined"])).unwrap();
        assert_eq!(u.seccomp, Seccomp::Unconfined);
        assert!(Security::from_flags(&[], &[], false, &v(&["seccomp=/no/such.json"])).is_err());
        let n = Security::from_flags(&[], &[], false, &v(&["no-new-privileges=false"])).unwrap();
        assert!(!n.no_new_privs);
        let n = Security::from_flags(&[], &[], true, &v(&["no-new-privileges"])).unwrap();
        assert!(n.no_new_privs);
        assert!(Security::from_flags(&[], &[], false, &v(&["no-new-privileges=maybe"])).is_err());
        assert!(Security::from_flags(&[], &[], false, &v(&["label=disable"])).is_err());
        let a = Security::from_flags(&v(&["SYS_ADMIN"]), &[], false, &[]).unwrap();
        assert!(a.may_mount());
    }
}
