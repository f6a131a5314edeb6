//! The capabilities a container's processes keep, in every mode (remapped, `--userns host`,
//! rootless): Docker's default set unless `--cap-add`, `--cap-drop` or `--privileged` change
//! it, in the bounding, effective and permitted sets, with the inheritable and ambient sets
//! empty (Docker since 20.10.14, CVE-2022-24769). Under remap and rootless these are
//! capabilities over the container's own namespaces only; dropping them still matters there:
//! without CAP_SYS_ADMIN container root cannot mount, make new namespaces that would give the
//! capabilities back, or change the hostname. Drives prctl(2) (PR_CAPBSET_DROP,
//! PR_CAP_AMBIENT) and capset(2) through rustix; see capabilities(7) ("Transformation of
//! capabilities during execve()"). Names are those of capabilities(7), as Docker takes them.

use std::io;

use rustix::io::Errno;
use rustix::thread::{
    capabilities, clear_ambient_capability_set, remove_capability_from_bounding_set,
    set_capabilities, CapabilitySet, CapabilitySets,
};

use crate::error::{user, Result};

/// Docker's default capability set (moby oci/caps/defaults.go), by capability number:
/// CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE,
/// NET_RAW, SYS_CHROOT, MKNOD (device use is still governed by the devices cgroup and the
/// nodev mounts), AUDIT_WRITE, SETFCAP. Notably absent: SYS_ADMIN (mount, umount, setns,
/// sethostname), SYS_RAWIO (/proc/kcore), SYS_MODULE, SYS_PTRACE, SYS_TIME, NET_ADMIN.
pub const DEFAULT_SET: [u32; 14] = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31];

/// Capability names by number (capabilities(7), <linux/capability.h>), without `CAP_`.
pub const NAMES: [&str; 41] = [
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

/// Every capability this build knows (`ALL`), as a mask.
pub const ALL: u64 = (1u64 << NAMES.len()) - 1;

/// CAP_SYS_ADMIN's bit.
pub const SYS_ADMIN: u64 = 1 << 21;

/// The default set as a 64-bit mask.
pub fn default_mask() -> u64 {
    DEFAULT_SET.iter().fold(0u64, |m, c| m | (1u64 << c))
}

/// One capability name as Docker accepts it (`NET_ADMIN`, `CAP_NET_ADMIN`, any case) as a mask;
/// `ALL` is every capability. Errors: an unknown name, one line naming it.
pub fn parse(name: &str) -> Result<u64> {
    let up = name.trim().to_ascii_uppercase();
    let bare = up.strip_prefix("CAP_").unwrap_or(&up);
    if bare == "ALL" {
        return Ok(ALL);
    }
    NAMES
        .iter()
        .position(|n| *n == bare)
        .map(|i| 1u64 << i)
        .ok_or_else(|| {
            user(format!(
                "unknown capability {name:?}: use a name of capabilities(7) such as NET_ADMIN, or ALL"
            ))
        })
}

/// The set after `--cap-drop` then `--cap-add` (Docker's order: an added capability is kept
/// even when also dropped; `--cap-drop ALL` starts from nothing). Each value may list several
/// names separated by commas.
pub fn tweak(adds: &[String], drops: &[String]) -> Result<u64> {
    let names = |v: &[String]| -> Result<u64> {
        let mut m = 0;
        for s in v
            .iter()
            .flat_map(|s| s.split(','))
            .filter(|s| !s.is_empty())
        {
            m |= parse(s)?;
        }
        Ok(m)
    };
    Ok((default_mask() & !names(drops)?) | names(adds)?)
}

/// `CAP_X` names of a mask, for `inspect` and messages.
pub fn names(mask: u64) -> Vec<String> {
    (0..NAMES.len())
        .filter(|i| mask & (1u64 << i) != 0)
        .map(|i| format!("CAP_{}", NAMES[i]))
        .collect()
}

/// Removes every capability outside `keep` from this process's bounding set (needs
/// CAP_SETPCAP, so call it before switching to another user). After execve a root process
/// gets exactly the bounding set, any other user gets nothing.
pub fn drop_bounding_set(keep: u64) -> io::Result<()> {
    for cap in 0..64u32 {
        if keep & (1u64 << cap) != 0 {
            continue;
        }
        match remove_capability_from_bounding_set(CapabilitySet::from_bits_retain(1u64 << cap)) {
            Ok(()) => {}
            // EINVAL: past the kernel's last capability (cap_last_cap): done.
            Err(Errno::INVAL) => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Lowers the effective and permitted sets to `keep`, empties the inheritable and ambient
/// sets (as Docker does since CVE-2022-24769). Only ever lowers, so it works as any user.
pub fn limit_sets(keep: u64) -> io::Result<()> {
    let sets = capabilities(None)?;
    let keep = CapabilitySet::from_bits_retain(keep);
    let permitted = sets.permitted & keep;
    set_capabilities(
        None,
        CapabilitySets {
            effective: sets.effective & permitted,
            permitted,
            inheritable: CapabilitySet::empty(),
        },
    )?;
    clear_ambient_capability_set()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_set_is_dockers_fourteen_without_sys_admin() {
        let m = default_mask();
        assert_eq!(m.count_ones(), 14);
        assert_eq!(m & SYS_ADMIN, 0, "CAP_SYS_ADMIN");
        assert_eq!(m & (1 << 17), 0, "CAP_SYS_RAWIO");
        assert_ne!(m & (1 << 7), 0, "CAP_SETUID");
        assert_eq!(m, 0xa80425fb);
    }

    #[test]
    fn names_parse_as_docker_takes_them() {
        assert_eq!(parse("SYS_ADMIN").unwrap(), SYS_ADMIN);
        assert_eq!(parse("cap_sys_admin").unwrap(), SYS_ADMIN);
        assert_eq!(parse("ALL").unwrap(), ALL);
        assert_eq!(parse("checkpoint_restore").unwrap(), 1 << 40);
        assert!(parse("SYS_ADMINS").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn drop_then_add() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(tweak(&[], &[]).unwrap(), default_mask());
        assert_eq!(
            tweak(&s(&["SYS_ADMIN"]), &[]).unwrap(),
            default_mask() | SYS_ADMIN
        );
        assert_eq!(tweak(&s(&["CHOWN"]), &s(&["ALL"])).unwrap(), 1);
        assert_eq!(tweak(&s(&["ALL"]), &s(&["CHOWN"])).unwrap(), ALL);
        assert_eq!(
            tweak(&[], &s(&["chown,KILL"])).unwrap(),
            default_mask() & !0b100001
        );
        assert!(tweak(&s(&["NOPE"]), &[]).is_err());
    }
}
