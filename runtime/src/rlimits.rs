//! `--ulimit NAME=SOFT[:HARD]` (Docker's flag and names): resource limits of the container's
//! processes, checked when the container is planned and set on its first process by rrun
//! (prlimit(2)) once that process has built the root and before it switches to the
//! container's user, the point where runc sets them (procReady): the setup's own descriptors
//! and memory never count against them, and nproc binds the switch (setuid(2)). Everything
//! else inherits rrun's own.
//! A hard limit above what rrun may set (its own hard limit unless it holds CAP_SYS_RESOURCE;
//! for `nofile`, fs.nr_open even then) is one clear error before anything is created. Kernel
//! doc: getrlimit(2), proc_sys_fs(5) (nr_open).

use rustix::process::{Pid, Resource, Rlimit};
use serde::{Deserialize, Serialize};

use crate::error::{user, Context, Result, Step, StepError};

/// One limit as asked for. `None` is unlimited (RLIM_INFINITY).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub name: String,
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

/// Docker's names (getrlimit(2) without RLIMIT_, lower case).
const NAMES: [(&str, Resource); 16] = [
    ("core", Resource::Core),
    ("cpu", Resource::Cpu),
    ("data", Resource::Data),
    ("fsize", Resource::Fsize),
    ("locks", Resource::Locks),
    ("memlock", Resource::Memlock),
    ("msgqueue", Resource::Msgqueue),
    ("nice", Resource::Nice),
    ("nofile", Resource::Nofile),
    ("nproc", Resource::Nproc),
    ("rss", Resource::Rss),
    ("rtprio", Resource::Rtprio),
    ("rttime", Resource::Rttime),
    ("sigpending", Resource::Sigpending),
    ("stack", Resource::Stack),
    ("as", Resource::As),
];

fn resource(name: &str) -> Option<Resource> {
    NAMES.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
}

/// `unlimited` or -1, else a decimal number.
fn value(s: &str) -> Option<Option<u64>> {
    match s {
        "unlimited" | "-1" => Some(None),
        _ => s.parse().ok().map(Some),
    }
}

impl Ulimit {
    /// Parses `NAME=SOFT[:HARD]` (HARD defaults to SOFT, as in Docker). Errors: one line.
    pub fn parse(arg: &str) -> Result<Ulimit> {
        let bad = |why: &str| user(format!("--ulimit {arg:?}: {why}"));
        let (name, vals) = arg
            .split_once('=')
            .ok_or_else(|| bad("use NAME=SOFT[:HARD], e.g. nofile=1024:4096"))?;
        if resource(name).is_none() {
            let known: Vec<&str> = NAMES.iter().map(|n| n.0).collect();
            return Err(bad(&format!("unknown limit; one of {}", known.join(", "))));
        }
        let (s, h) = vals.split_once(':').unwrap_or((vals, vals));
        let (Some(soft), Some(hard)) = (value(s), value(h)) else {
            return Err(bad("values are numbers or \"unlimited\""));
        };
        if soft.unwrap_or(u64::MAX) > hard.unwrap_or(u64::MAX) {
            return Err(bad("the soft limit is above the hard limit"));
        }
        Ok(Ulimit {
            name: name.to_string(),
            soft,
            hard,
        })
    }

    fn rlimit(&self) -> Rlimit {
        Rlimit {
            current: self.soft,
            maximum: self.hard,
        }
    }

    fn resource(&self) -> Resource {
        resource(&self.name).unwrap_or(Resource::Nofile)
    }

    /// Refuses a hard limit above what rrun may set: as root anything, but `nofile` above
    /// fs.nr_open; otherwise rrun's own hard limit.
    pub fn check_allowed(&self) -> Result<()> {
        let want = self.hard.unwrap_or(u64::MAX);
        let (max, why) = if may_raise() {
            match self.name.as_str() {
                "nofile" => (nr_open(), "the kernel's fs.nr_open".to_string()),
                _ => return Ok(()),
            }
        } else {
            let cur = rustix::process::getrlimit(self.resource()).maximum;
            (
                cur.unwrap_or(u64::MAX),
                "the hard limit rrun runs with (raising it needs CAP_SYS_RESOURCE)".to_string(),
            )
        };
        if want > max {
            return Err(user(format!(
                "--ulimit {}: hard limit {} is above {why}, {max}: ask for at most {max}",
                self.name,
                self.hard.map_or("unlimited".into(), |h| h.to_string()),
            )));
        }
        Ok(())
    }
}

/// Whether rrun holds CAP_SYS_RESOURCE (root normally does; a root without it, as in some
/// sandboxes, may only lower hard limits).
fn may_raise() -> bool {
    rustix::thread::capabilities(None).is_ok_and(|c| {
        c.effective
            .contains(rustix::thread::CapabilitySet::SYS_RESOURCE)
    })
}

/// fs.nr_open: the most descriptors any process may be allowed.
fn nr_open() -> u64 {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1 << 20)
}

/// Parses and checks every `--ulimit`.
pub fn from_flags(args: &[String]) -> Result<Vec<Ulimit>> {
    args.iter()
        .map(|a| {
            let u = Ulimit::parse(a)?;
            u.check_allowed()?;
            Ok(u)
        })
        .collect()
}

/// Sets the limits on process `pid`: the container's first process, once its setup is done
/// and before it executes rinit.
pub fn apply(pid: i32, limits: &[Ulimit]) -> Result<()> {
    let pid = Pid::from_raw(pid);
    for u in limits {
        rustix::process::prlimit(pid, u.resource(), u.rlimit())
            .ctx(|| format!("set --ulimit {} on the container", u.name))?;
    }
    Ok(())
}

/// `rrun exec`, before it joins the container's user namespace (past which raising a hard
/// limit would need CAP_SYS_RESOURCE of the initial one, setrlimit(2)): raises rrun's own
/// hard limits where the container's are higher, and lowers nothing, so that rrun's own work
/// never runs under the container's limits and the process it starts can then take them
/// itself with no privilege ([`take`]).
pub fn raise_hard_for(limits: &[Ulimit]) -> Result<()> {
    for u in limits {
        let own = rustix::process::getrlimit(u.resource());
        let higher = match (u.hard, own.maximum) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(want), Some(have)) => want > have,
        };
        if higher {
            let new = Rlimit {
                current: own.current,
                maximum: u.hard,
            };
            rustix::process::setrlimit(u.resource(), new)
                .ctx(|| format!("raise rrun's hard limit to --ulimit {}", u.name))?;
        }
    }
    Ok(())
}

/// In the process `rrun exec` starts, before it becomes the container's user: the container's
/// limits, only lowering hard limits after [`raise_hard_for`]. Allocates nothing (that
/// process shares rrun's memory, sys/spawn.rs).
pub fn take(limits: &[Ulimit]) -> std::result::Result<(), StepError> {
    for u in limits {
        rustix::process::setrlimit(u.resource(), u.rlimit())
            .step("set the container's --ulimit's")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_forms_parse() {
        let u = Ulimit::parse("nofile=1024:4096").unwrap();
        assert_eq!((u.soft, u.hard), (Some(1024), Some(4096)));
        let u = Ulimit::parse("nproc=50").unwrap();
        assert_eq!((u.soft, u.hard), (Some(50), Some(50)));
        let u = Ulimit::parse("core=unlimited:-1").unwrap();
        assert_eq!((u.soft, u.hard), (None, None));
        for bad in [
            "nofile",
            "nofiles=1",
            "nofile=x",
            "nofile=10:5",
            "nofile=unlimited:5",
        ] {
            let e = Ulimit::parse(bad).unwrap_err().to_string();
            assert!(!e.contains('\n') && e.contains("--ulimit"), "{bad}: {e}");
        }
    }

    #[test]
    fn nofile_above_nr_open_is_refused_in_one_line() {
        let u = Ulimit::parse(&format!("nofile={}", nr_open() + 1)).unwrap();
        let e = u.check_allowed().unwrap_err().to_string();
        assert!(e.contains("nofile") && !e.contains('\n'), "{e}");
    }
}
