//! Credentials: the uid, gid and supplementary groups a process runs as.
//! Kernel interfaces: setgroups(2), setresgid(2), setresuid(2) (credentials(7)).

use std::io;

use super::check;

/// Sets real, effective and saved uid and gid (raw syscalls: this process is single-threaded
/// where it matters) and clears the supplementary groups unless `groups` are given.
pub fn set_ids(uid: u32, gid: u32, groups: &[u32]) -> io::Result<()> {
    // SAFETY: `groups` is a valid slice of gid_t for its length.
    let r = check(unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) });
    // A rootless user namespace denies setgroups (see IdMaps::single): then there are no
    // supplementary groups to drop anyway.
    match r {
        Err(e) if groups.is_empty() && e.raw_os_error() == Some(libc::EPERM) => {}
        other => {
            other?;
        }
    }
    // SAFETY: integer arguments.
    check(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) })?;
    // SAFETY: integer arguments.
    check(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) })?;
    Ok(())
}
