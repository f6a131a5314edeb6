//! Owns: the last steps of a container process before execve: rlimits, the user (uid, gid,
//! additional gids, umask), the capability sets, no_new_privs, the seccomp filter (at the
//! point runc installs it), oom_score_adj, and finding the command on the process's PATH.
//! Kernel interfaces: setrlimit(2), setresuid(2)/setresgid(2)/setgroups(2) (through the rrun
//! library's sys::ids), capset(2), prctl(2) (PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_SET_KEEPCAPS,
//! PR_SET_NO_NEW_PRIVS), capabilities(7), seccomp(2) (through the rrun library's security
//! module), execve(2).

use std::collections::HashSet;
use std::convert::Infallible;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{Capability, Process};
use rrun::security::Filter;
use rustix::process::{Resource, Rlimit};
use rustix::thread::{CapabilitySet, CapabilitySets};

/// Capability names by number (capabilities(7), include/uapi/linux/capability.h).
const CAPS: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The capability number of `CAP_NAME`.
fn cap_number(c: &Capability) -> Result<u32> {
    let name = serde_json::to_value(c)?;
    let name = name.as_str().unwrap_or_default();
    let short = name.strip_prefix("CAP_").unwrap_or(name);
    CAPS.iter()
        .position(|n| *n == short)
        .map(|i| i as u32)
        .with_context(|| format!("config.json: process.capabilities: unknown capability {name}"))
}

fn mask(set: &Option<HashSet<Capability>>) -> Result<u64> {
    let mut m = 0u64;
    for c in set.iter().flatten() {
        m |= 1u64 << cap_number(c)?;
    }
    Ok(m)
}

/// The resource of an `RLIMIT_*` name.
fn resource(name: &str) -> Result<Resource> {
    Ok(match name {
        "RLIMIT_CPU" => Resource::Cpu,
        "RLIMIT_FSIZE" => Resource::Fsize,
        "RLIMIT_DATA" => Resource::Data,
        "RLIMIT_STACK" => Resource::Stack,
        "RLIMIT_CORE" => Resource::Core,
        "RLIMIT_RSS" => Resource::Rss,
        "RLIMIT_NPROC" => Resource::Nproc,
        "RLIMIT_NOFILE" => Resource::Nofile,
        "RLIMIT_MEMLOCK" => Resource::Memlock,
        "RLIMIT_AS" => Resource::As,
        "RLIMIT_LOCKS" => Resource::Locks,
        "RLIMIT_SIGPENDING" => Resource::Sigpending,
        "RLIMIT_MSGQUEUE" => Resource::Msgqueue,
        "RLIMIT_NICE" => Resource::Nice,
        "RLIMIT_RTPRIO" => Resource::Rtprio,
        "RLIMIT_RTTIME" => Resource::Rttime,
        other => bail!("config.json: process.rlimits: unknown type {other}"),
    })
}

/// Sets the spec's rlimits (u64::MAX is RLIM_INFINITY).
fn set_rlimits(p: &Process) -> Result<()> {
    for r in p.rlimits().clone().unwrap_or_default() {
        let name = r.typ().to_string();
        let lim = |v: u64| (v != u64::MAX).then_some(v);
        rustix::process::setrlimit(
            resource(&name)?,
            Rlimit {
                current: lim(r.soft()),
                maximum: lim(r.hard()),
            },
        )
        .with_context(|| format!("config.json: process.rlimits {name}"))?;
    }
    Ok(())
}

/// oom_score_adj of this process (/proc/self/oom_score_adj, proc(5)).
pub fn set_oom_score_adj(p: &Process) -> Result<()> {
    if let Some(v) = p.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", v.to_string())
            .context("config.json: process.oomScoreAdj")?;
    }
    Ok(())
}

/// Checks the capability names before anything runs.
pub fn check_caps(p: &Process) -> Result<()> {
    if let Some(c) = p.capabilities() {
        for s in [
            c.bounding(),
            c.effective(),
            c.permitted(),
            c.inheritable(),
            c.ambient(),
        ] {
            mask(s)?;
        }
    }
    Ok(())
}

/// Becomes the spec's user with the spec's capabilities: bounding set first (needs
/// CAP_SETPCAP), then the ids (keeping the permitted set across the uid change), then the
/// effective, permitted and inheritable sets, the ambient set and no_new_privs.
fn become_user(p: &Process) -> Result<()> {
    let u = p.user();
    let caps = p.capabilities().as_ref();
    if let Some(c) = caps {
        let keep = mask(c.bounding())?;
        for n in 0..64u32 {
            if keep & (1 << n) != 0 {
                continue;
            }
            match rustix::thread::remove_capability_from_bounding_set(
                CapabilitySet::from_bits_retain(1 << n),
            ) {
                Ok(()) => {}
                Err(rustix::io::Errno::INVAL) => break,
                Err(e) => return Err(e).context("drop a capability from the bounding set"),
            }
        }
        rustix::thread::set_keep_capabilities(true).context("PR_SET_KEEPCAPS")?;
    }
    let groups = u.additional_gids().clone().unwrap_or_default();
    rrun::sys::ids::set_ids(u.uid(), u.gid(), &groups)
        .with_context(|| format!("config.json: process.user {}:{}", u.uid(), u.gid()))?;
    // runc's default when config.json sets none, whatever the caller's umask.
    let umask = u.umask().unwrap_or(rrun::child::CONTAINER_UMASK);
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(umask));
    if let Some(c) = caps {
        let set = |s| Ok::<_, anyhow::Error>(CapabilitySet::from_bits_retain(mask(s)?));
        rustix::thread::set_capabilities(
            None,
            CapabilitySets {
                effective: set(c.effective())?,
                permitted: set(c.permitted())?,
                inheritable: set(c.inheritable())?,
            },
        )
        .context("config.json: process.capabilities (capset)")?;
        let _ = rustix::thread::clear_ambient_capability_set();
        let ambient = mask(c.ambient())?;
        // A capability outside permitted or inheritable cannot be ambient (EPERM): runc
        // skips it with a warning, and so do we (runc's own `spec` asks for such ones).
        for n in (0..64).filter(|n| ambient & (1u64 << n) != 0) {
            match rustix::thread::configure_capability_in_ambient_set(
                CapabilitySet::from_bits_retain(1 << n),
                true,
            ) {
                Ok(()) | Err(rustix::io::Errno::PERM) => {}
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("config.json: process.capabilities.ambient CAP_{}", CAPS[n])
                    })
                }
            }
        }
        rustix::thread::set_keep_capabilities(false).context("PR_SET_KEEPCAPS")?;
    }
    if p.no_new_privileges() == Some(true) {
        rustix::thread::set_no_new_privs(true).context("config.json: process.noNewPrivileges")?;
    }
    Ok(())
}

/// The executable `args[0]` names, looked up on the PATH of `env` as execvp(3) does (the
/// message podman turns into exit code 127 when it is not found).
pub fn find_executable(arg0: &str, env: &[String]) -> Result<PathBuf> {
    let is_exec = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file())
            && rustix::fs::access(p, rustix::fs::Access::EXEC_OK).is_ok()
    };
    if arg0.contains('/') {
        return match Path::new(arg0).exists() {
            true => Ok(PathBuf::from(arg0)),
            false => bail!("exec: {arg0:?}: stat {arg0}: no such file or directory"),
        };
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let cand = Path::new(dir).join(arg0);
        if is_exec(&cand) {
            return Ok(cand);
        }
    }
    bail!("exec: {arg0:?}: executable file not found in $PATH")
}

/// C strings for execve; a NUL byte inside is an error naming the string.
fn cstrings<S: AsRef<std::ffi::OsStr>>(v: &[S]) -> Result<Vec<CString>> {
    v.iter()
        .map(|s| {
            CString::new(s.as_ref().as_bytes())
                .with_context(|| format!("{:?} contains a NUL byte", s.as_ref()))
        })
        .collect()
}

/// The last steps of a container process, the init's and an exec'd one's alike, in runc's
/// order: rlimits; the seccomp filter now if no_new_privs is off (the kernel wants
/// CAP_SYS_ADMIN to install it, which the process still has); the user and capability sets
/// ([`become_user`], which also sets no_new_privs); descriptors past 2 and the `preserve`
/// extra ones closed on exec; default signal handling; the filter now if no_new_privs is on;
/// execve(2) of `exe` with `args` and `env`. Returns only with the error. The C strings are
/// made first, so that nothing allocates behind the filter.
pub fn finish_and_exec(
    p: &Process,
    exe: &Path,
    args: &[String],
    env: &[String],
    preserve: u32,
    seccomp: Option<&Filter>,
) -> Result<Infallible> {
    use rrun::sys::process::{execve, CStrArray};
    let exe_c = rrun::sys::cstr(exe).with_context(|| format!("exec {}", exe.display()))?;
    let (argv, envp) = (cstrings(args)?, cstrings(env)?);
    let (argv, envp) = (CStrArray::new(&argv), CStrArray::new(&envp));
    let no_new_privs = p.no_new_privileges() == Some(true);
    set_rlimits(p)?;
    rrun::security::install_before_user(no_new_privs, seccomp)?;
    become_user(p)?;
    rrun::sys::fd::cloexec_from(3 + preserve).context("close inherited descriptors")?;
    rrun::sys::signal::reset_signals_for_exec();
    rrun::security::install_last(no_new_privs, seccomp)?;
    let e = execve(&exe_c, &argv, &envp);
    Err(anyhow::Error::new(e).context(format!("exec {}", exe.display())))
}

/// runc's session keyring: unless `--no-new-keyring`, the container's processes join a session
/// keyring of their own, `_ses.<id>` (made by the first, joined by `exec`'d ones), instead of
/// the caller's, and it is made searchable (by its owner, or by anyone with a new user
/// namespace, where the owner's uid is not the caller's). Must run before the seccomp filter,
/// which refuses keyctl(2). A kernel without keys (ENOSYS) is let be, as runc does.
/// linux.personality: the execution domain the process runs in, LINUX or LINUX32 (its flags
/// are refused by [`crate::spec::check`]), set as runc sets it, from the domain alone, before
/// the seccomp filter, for the container's process and `exec`'d ones. personality(2).
pub fn set_personality(p: Option<&oci_spec::runtime::LinuxPersonality>) -> Result<()> {
    use oci_spec::runtime::LinuxPersonalityDomain;
    let Some(p) = p else {
        return Ok(());
    };
    let persona = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    rrun::sys::process::set_personality(persona)
        .with_context(|| format!("config.json: linux.personality domain {}", p.domain()))
}

pub fn join_keyring(ring: Option<&str>, userns: bool) -> Result<()> {
    use rrun::sys::keyring;
    let Some(id) = ring else {
        return Ok(());
    };
    let name = rrun::sys::cstr(format!("_ses.{id}"))?;
    let serial = match keyring::join_session(&name) {
        Ok(s) => s,
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOSYS.raw_os_error()) => {
            return Ok(())
        }
        Err(e) => return Err(e).context("join a session keyring of the container's own"),
    };
    let bits = match userns {
        true => keyring::OTH_SEARCH,
        false => keyring::USR_SEARCH,
    };
    keyring::add_perm(serial, bits).context("make the container's session keyring searchable")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_numbers_match_the_kernel() {
        assert_eq!(cap_number(&Capability::Chown).unwrap(), 0);
        assert_eq!(cap_number(&Capability::SysAdmin).unwrap(), 21);
        assert_eq!(cap_number(&Capability::AuditRead).unwrap(), 37);
        assert_eq!(cap_number(&Capability::CheckpointRestore).unwrap(), 40);
    }

    #[test]
    fn rlimit_names() {
        assert!(resource("RLIMIT_NOFILE").is_ok());
        assert!(resource("RLIMIT_BOGUS").is_err());
    }
}
