//! Docker's seccomp profile format (moby profiles/seccomp, the `default.json` Docker and
//! podman ship: `defaultAction`, `defaultErrnoRet`, `architectures` or `archMap`, `flags`,
//! `syscalls` with `names`, `action`, `errnoRet`, `args` and `includes`/`excludes` by `caps`,
//! `arches` and `minKernel`; runtime-spec's `linux.seccomp`, config-linux.md "Seccomp", is the
//! same format without `archMap`, `includes` and `excludes`) read with serde and compiled with
//! libseccomp (seccomp_rule_add(3),
//! seccomp_export_bpf(3)) as Docker compiles it: a rule applies when the container holds all
//! its `includes.caps` and none of its `excludes.caps`; arguments on distinct indexes are all
//! required, several on one index are alternatives; names this libseccomp does not know are
//! left out (they cannot be called through a number the filter knows, so they get the
//! default action).

use std::io::{Read, Seek};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use serde::Deserialize;

use super::Program;
use crate::caps;

/// A profile, as parsed.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<i32>,
    #[serde(default)]
    architectures: Option<Vec<String>>,
    #[serde(default)]
    arch_map: Option<Vec<ArchMap>>,
    #[serde(default)]
    syscalls: Option<Vec<Rule>>,
    #[serde(default)]
    flags: Option<Vec<String>>,
    #[serde(default)]
    listener_path: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    names: Option<Vec<String>>,
    #[serde(default)]
    name: Option<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<i32>,
    #[serde(default)]
    args: Option<Vec<Arg>>,
    #[serde(default)]
    includes: Option<Filter>,
    #[serde(default)]
    excludes: Option<Filter>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: u32,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// EPERM, the errno of an `SCMP_ACT_ERRNO` without `errnoRet` (as in Docker).
const EPERM: i32 = 1;

/// The filter flags a profile may name (`flags`) and their bits for seccomp(2)
/// (linux/seccomp.h): log what the filter does not allow (Linux 4.14), leave speculative store
/// bypass unmitigated (4.17), apply to every thread (3.17; rrun's processes have one).
/// SECCOMP_FILTER_FLAG_NEW_LISTENER and WAIT_KILLABLE_RECV belong to SCMP_ACT_NOTIFY, which
/// rrun does not support.
pub const FLAGS: [(&str, u32); 3] = [
    ("SECCOMP_FILTER_FLAG_TSYNC", 1),
    ("SECCOMP_FILTER_FLAG_LOG", 2),
    ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", 4),
];

/// This machine's architecture in Docker's names (`includes.arches`) and libseccomp's.
#[cfg(target_arch = "x86_64")]
const NATIVE: (&str, &str) = ("amd64", "SCMP_ARCH_X86_64");
#[cfg(target_arch = "aarch64")]
const NATIVE: (&str, &str) = ("arm64", "SCMP_ARCH_AARCH64");

impl Profile {
    /// Parses and checks a profile. Errors: a message naming what is wrong (no newline).
    pub fn parse(json: &str) -> Result<Profile, String> {
        let p: Profile = serde_json::from_str(json).map_err(|e| e.to_string())?;
        action(&p.default_action, p.default_errno_ret)?;
        if p.listener_path.as_deref().is_some_and(|l| !l.is_empty()) {
            return Err("listenerPath (SCMP_ACT_NOTIFY) is not supported by rrun".into());
        }
        for r in p.syscalls.iter().flatten() {
            action(&r.action, r.errno_ret)?;
            for a in r.args.iter().flatten() {
                op(a)?;
            }
        }
        for a in p.arches() {
            a.parse::<ScmpArch>()
                .map_err(|_| format!("unknown architecture {a:?}"))?;
        }
        p.flags()?;
        Ok(p)
    }

    /// The SECCOMP_FILTER_FLAG_* bits of `flags`, for seccomp(2) when the filter is installed.
    /// Errors: a flag not in [`FLAGS`], named.
    pub fn flags(&self) -> Result<u32, String> {
        let mut bits = 0;
        for f in self.flags.iter().flatten() {
            let Some((_, b)) = FLAGS.iter().find(|(n, _)| n == f) else {
                return Err(format!("unsupported filter flag {f:?} in flags"));
            };
            bits |= b;
        }
        Ok(bits)
    }

    /// The architectures the filter covers: the `archMap` entry of this machine's, with its
    /// sub-architectures, else `architectures`, else this machine's alone.
    fn arches(&self) -> Vec<String> {
        if let Some(m) = &self.arch_map {
            return m
                .iter()
                .filter(|a| a.architecture == NATIVE.1)
                .flat_map(|a| {
                    std::iter::once(a.architecture.clone())
                        .chain(a.sub_architectures.iter().flatten().cloned())
                })
                .collect();
        }
        self.architectures.clone().unwrap_or_default()
    }

    /// Compiles the profile for a container holding the capabilities `held` (a mask).
    pub fn compile(&self, held: u64) -> Result<Program, String> {
        let default = action(&self.default_action, self.default_errno_ret)?;
        let e = |what: &str, err: libseccomp::error::SeccompError| format!("{what}: {err}");
        let mut ctx = ScmpFilterContext::new(default).map_err(|x| e("seccomp_init", x))?;
        // Numbers of an architecture the profile does not list fail closed, the same way.
        ctx.set_act_badarch(default)
            .map_err(|x| e("bad-architecture action", x))?;
        ctx.set_ctl_nnp(false).map_err(|x| e("nnp attribute", x))?;
        // A binary tree of syscall numbers instead of a linear list: each call runs a few
        // comparisons, and the kernel's per-syscall action cache (computed by emulating the
        // filter for every number of every architecture when it is installed) is built faster.
        ctx.set_ctl_optimize(2)
            .map_err(|x| e("optimize attribute", x))?;
        for a in self.arches() {
            let arch: ScmpArch = a.parse().map_err(|_| format!("architecture {a}"))?;
            if arch != ScmpArch::native() {
                ctx.add_arch(arch)
                    .map_err(|x| e(&format!("architecture {a}"), x))?;
            }
        }
        let kernel = kernel_version();
        for r in self.syscalls.iter().flatten() {
            if !applies(r, held, kernel) {
                continue;
            }
            let act = action(&r.action, r.errno_ret)?;
            if act == default {
                continue; // libseccomp refuses a rule that repeats the default action
            }
            let names = r.names.iter().flatten().chain(r.name.iter());
            for name in names {
                let Ok(nr) = ScmpSyscall::from_name(name) else {
                    continue;
                };
                for conds in conditions(r.args.as_deref().unwrap_or(&[]))? {
                    ctx.add_rule_conditional(act, nr, &conds)
                        .map_err(|x| e(&format!("rule for {name}"), x))?;
                }
            }
        }
        export(&ctx)
    }
}

/// A Docker action name and errno as libseccomp's action.
fn action(name: &str, errno: Option<i32>) -> Result<ScmpAction, String> {
    match name {
        "SCMP_ACT_NOTIFY" => Err("SCMP_ACT_NOTIFY is not supported by rrun".into()),
        "SCMP_ACT_ERRNO" | "SCMP_ACT_TRACE" => {
            ScmpAction::from_str(name, Some(errno.unwrap_or(EPERM))).map_err(|e| e.to_string())
        }
        _ => ScmpAction::from_str(name, None).map_err(|_| format!("unknown action {name:?}")),
    }
}

fn op(a: &Arg) -> Result<ScmpCompareOp, String> {
    let o: ScmpCompareOp =
        a.op.parse()
            .map_err(|_| format!("unknown comparison {:?}", a.op))?;
    Ok(match o {
        ScmpCompareOp::MaskedEqual(_) => ScmpCompareOp::MaskedEqual(a.value),
        o => o,
    })
}

/// The rule's argument checks as alternatives to add one rule each: all of them in one rule
/// when their indexes differ, else one rule per check (Docker's reading).
fn conditions(args: &[Arg]) -> Result<Vec<Vec<ScmpArgCompare>>, String> {
    let cmp = |a: &Arg| -> Result<ScmpArgCompare, String> {
        let datum = match op(a)? {
            ScmpCompareOp::MaskedEqual(_) => a.value_two,
            _ => a.value,
        };
        Ok(ScmpArgCompare::new(a.index, op(a)?, datum))
    };
    let mut idx: Vec<u32> = args.iter().map(|a| a.index).collect();
    idx.sort_unstable();
    idx.dedup();
    if idx.len() == args.len() {
        Ok(vec![args.iter().map(cmp).collect::<Result<_, _>>()?])
    } else {
        args.iter().map(|a| Ok(vec![cmp(a)?])).collect()
    }
}

/// Whether a rule is for this container: its capabilities, this architecture, this kernel.
fn applies(r: &Rule, held: u64, kernel: (u32, u32)) -> bool {
    let has = |c: &String| caps::parse(c).is_ok_and(|m| held & m == m);
    let inc = r.includes.as_ref();
    let exc = r.excludes.as_ref();
    fn native(f: Option<&Filter>) -> Option<&Vec<String>> {
        f.and_then(|f| f.arches.as_ref())
    }
    inc.and_then(|f| f.caps.as_ref())
        .is_none_or(|c| c.iter().all(has))
        && exc
            .and_then(|f| f.caps.as_ref())
            .is_none_or(|c| !c.iter().any(has))
        && native(inc).is_none_or(|a| a.iter().any(|x| x == NATIVE.0))
        && native(exc).is_none_or(|a| !a.iter().any(|x| x == NATIVE.0))
        && inc
            .and_then(|f| f.min_kernel.as_deref())
            .is_none_or(|m| kernel >= parse_version(m))
}

/// `MAJOR.MINOR` of a version string ("6.18.0-1-amd64" -> (6, 18)); unparsable parts are 0.
fn parse_version(s: &str) -> (u32, u32) {
    let mut it = s.split(|c: char| !c.is_ascii_digit());
    let n = |x: Option<&str>| x.and_then(|v| v.parse().ok()).unwrap_or(0);
    (n(it.next()), n(it.next()))
}

/// The running kernel's `MAJOR.MINOR` (uname(2)).
pub fn kernel_version() -> (u32, u32) {
    parse_version(&rustix::system::uname().release().to_string_lossy())
}

/// The filter as BPF instructions, through a memfd (seccomp_export_bpf(3) writes to a
/// descriptor; libseccomp 2.5 has no in-memory export).
fn export(ctx: &ScmpFilterContext) -> Result<Program, String> {
    let fd = rustix::fs::memfd_create(c"seccomp-bpf", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|e| format!("memfd_create: {e}"))?;
    ctx.export_bpf(&fd)
        .map_err(|e| format!("seccomp_export_bpf: {e}"))?;
    let mut f = std::fs::File::from(fd);
    let mut bytes = Vec::new();
    f.rewind()
        .and_then(|_| f.read_to_end(&mut bytes))
        .map_err(|e| format!("read the exported filter: {e}"))?;
    Program::new(bytes).ok_or_else(|| "libseccomp exported no valid filter".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_major_and_minor() {
        assert_eq!(parse_version("6.18.0-1-amd64"), (6, 18));
        assert_eq!(parse_version("4.8"), (4, 8));
        assert!((6, 18) >= parse_version("4.8"));
    }

    #[test]
    fn rules_apply_by_capability_and_arch() {
        let r: Rule = serde_json::from_str(
            r#"{"names":["x"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}}"#,
        )
        .unwrap();
        assert!(!applies(&r, caps::default_mask(), (6, 18)));
        assert!(applies(&r, caps::default_mask() | caps::SYS_ADMIN, (6, 18)));
        let r: Rule = serde_json::from_str(
            r#"{"names":["x"],"action":"SCMP_ACT_ALLOW","excludes":{"caps":["CAP_SYS_ADMIN"]},"includes":{"arches":["amd64"],"minKernel":"4.8"}}"#,
        )
        .unwrap();
        assert!(applies(&r, caps::default_mask(), (6, 18)));
        assert!(!applies(&r, caps::default_mask(), (4, 4)));
        assert!(!applies(&r, caps::ALL, (6, 18)));
    }

    #[test]
    fn bad_profiles_are_refused_with_what_is_wrong() {
        assert!(Profile::parse("{").is_err());
        let e = Profile::parse(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#).unwrap_err();
        assert!(e.contains("SCMP_ACT_NOPE"), "{e}");
        let e = Profile::parse(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_NOPE"}]}]}"#,
        )
        .unwrap_err();
        assert!(e.contains("SCMP_CMP_NOPE"), "{e}");
        let e = Profile::parse(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_NEW_LISTENER"]}"#,
        )
        .unwrap_err();
        assert!(e.contains("SECCOMP_FILTER_FLAG_NEW_LISTENER"), "{e}");
    }

    #[test]
    fn flags_are_the_kernels_bits() {
        let p = Profile::parse(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW","SECCOMP_FILTER_FLAG_TSYNC"]}"#,
        )
        .unwrap();
        assert_eq!(
            p.flags().unwrap(),
            (libc::SECCOMP_FILTER_FLAG_LOG
                | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
                | libc::SECCOMP_FILTER_FLAG_TSYNC) as u32
        );
        let d = Profile::parse(super::super::DEFAULT_PROFILE).unwrap();
        assert_eq!(d.flags().unwrap(), 0);
    }
}
