//! What a container's processes are allowed, as Docker's flags set it (`--cap-add`,
//! `--cap-drop`, `--privileged`, `--security-opt no-new-privileges[=BOOL]`): the capability
//! set ([`caps`]) and no_new_privs (prctl(2) PR_SET_NO_NEW_PRIVS, set by default as runc does).
//! Recorded in the container's state so that `rrun exec` applies the same. Applied by
//! [`apply_before_user`] and [`apply_last`], around the switch to the container's user.

use serde::{Deserialize, Serialize};

use crate::caps;
use crate::error::{user, Context, Result};

/// A container's security settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Security {
    /// Capabilities kept in the bounding, effective and permitted sets (bit = number).
    pub caps: u64,
    /// PR_SET_NO_NEW_PRIVS before the command: setuid files and file capabilities grant nothing.
    pub no_new_privs: bool,
    /// `--privileged`: every capability, and no masked or read-only kernel paths.
    pub privileged: bool,
}

impl Default for Security {
    /// Docker's defaults with no_new_privs (also what a state written before these settings
    /// existed gets, so `exec` into such a container is confined like a new one).
    fn default() -> Security {
        Security {
            caps: caps::default_mask(),
            no_new_privs: true,
            privileged: false,
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
        };
        let mut nnp = None;
        for o in opts {
            let (key, value) = split_opt(o);
            match key {
                "no-new-privileges" => nnp = Some(parse_bool(o, value.unwrap_or("true"))?),
                _ => {
                    return Err(user(format!(
                    "unsupported --security-opt {o:?}: rrun knows no-new-privileges[=true|false]"
                )))
                }
            }
        }
        if privileged {
            s.caps = caps::ALL;
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

/// While still root with every capability of the container's user namespace (or of the host,
/// under `--userns host`), before switching to the container's user: shrinks the bounding set.
pub fn apply_before_user(s: &Security) -> Result<()> {
    caps::drop_bounding_set(s.caps).ctx(|| "drop capabilities from the bounding set".into())
}

/// After switching to the container's user: lowers the effective and permitted sets, empties
/// inheritable and ambient, sets no_new_privs if asked.
pub fn apply_after_user(s: &Security) -> Result<()> {
    caps::limit_sets(s.caps).ctx(|| "limit the capability sets".into())?;
    if s.no_new_privs {
        rustix::thread::set_no_new_privs(true).ctx(|| "set no_new_privs".into())?;
    }
    Ok(())
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
