//! The capabilities a container's processes keep under `--userns host`: Docker's default set,
//! so container root (real root there) cannot undo the read-only and masked paths or change
//! host-wide kernel state. Drives prctl(2) (PR_CAPBSET_DROP, PR_CAP_AMBIENT) and capset(2);
//! see capabilities(7) ("Transformation of capabilities during execve()"). The calls go
//! through rustix.
//!
//! Under `--userns remap` (and rootless) nothing is dropped: container root holds capabilities
//! only over its own namespaces (e.g. `hostname x` works), and the kernel checks everything
//! host-wide against its unprivileged host id.

use std::io;

use rustix::io::Errno;
use rustix::thread::{
    capabilities, clear_ambient_capability_set, remove_capability_from_bounding_set,
    set_capabilities, CapabilitySet, CapabilitySets,
};

/// Docker's default capability set (moby oci/caps/defaults.go), by capability number:
/// CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE,
/// NET_RAW, SYS_CHROOT, MKNOD (device use is still governed by the devices cgroup and the
/// nodev mounts), AUDIT_WRITE, SETFCAP. Notably absent: SYS_ADMIN (mount, umount, setns,
/// sethostname), SYS_RAWIO (/proc/kcore), SYS_MODULE, SYS_PTRACE, SYS_TIME, NET_ADMIN.
pub const DEFAULT_SET: [u32; 14] = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31];

/// The default set as a 64-bit mask.
pub fn default_mask() -> u64 {
    DEFAULT_SET.iter().fold(0u64, |m, c| m | (1u64 << c))
}

/// Removes every capability outside [`DEFAULT_SET`] from this process's bounding set (needs
/// CAP_SETPCAP, so call it before switching to another user). After execve a root process
/// gets exactly the bounding set, any other user gets nothing.
pub fn drop_bounding_set() -> io::Result<()> {
    let keep = default_mask();
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

/// Lowers the effective and permitted sets to [`DEFAULT_SET`], empties the inheritable and
/// ambient sets (as Docker does since CVE-2022-24769). Only ever lowers, so it works as any user.
pub fn limit_sets() -> io::Result<()> {
    let sets = capabilities(None)?;
    let keep = CapabilitySet::from_bits_retain(default_mask());
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
        assert_eq!(m & (1 << 21), 0, "CAP_SYS_ADMIN");
        assert_eq!(m & (1 << 17), 0, "CAP_SYS_RAWIO");
        assert_ne!(m & (1 << 7), 0, "CAP_SETUID");
        assert_eq!(m, 0xa80425fb);
    }
}
