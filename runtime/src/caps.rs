//! The capabilities a container's processes keep under `--userns host`: Docker's default set,
//! so container root (real root there) cannot undo the read-only and masked paths or change
//! host-wide kernel state. Drives prctl(2) (PR_CAPBSET_DROP, PR_CAP_AMBIENT) and capset(2);
//! see capabilities(7) ("Transformation of capabilities during execve()").
//!
//! Under `--userns remap` (and rootless) nothing is dropped: container root holds capabilities
//! only over its own namespaces (e.g. `hostname x` works), and the kernel checks everything
//! host-wide against its unprivileged host id.

use std::io;

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
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } < 0 {
            let e = io::Error::last_os_error();
            // EINVAL: past the kernel's last capability (cap_last_cap): done.
            if e.raw_os_error() == Some(libc::EINVAL) {
                break;
            }
            return Err(e);
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Lowers the effective and permitted sets to [`DEFAULT_SET`], empties the inheritable and
/// ambient sets (as Docker does since CVE-2022-24769). Only ever lowers, so it works as any user.
pub fn limit_sets() -> io::Result<()> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: version-3 header and a two-element data array, as capget(2) requires.
    if unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    let keep = default_mask();
    for (i, d) in data.iter_mut().enumerate() {
        let k = (keep >> (32 * i)) as u32;
        d.permitted &= k;
        d.effective &= d.permitted;
        d.inheritable = 0;
    }
    // SAFETY: as above; capset(2) reads the same layout.
    if unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: prctl with integer arguments only.
    if unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
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
