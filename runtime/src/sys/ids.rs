//! Credentials: the uid, gid and supplementary groups a process runs as.
//! Kernel interfaces: setgroups(2), setresgid(2), setresuid(2) (credentials(7)).

use std::io;

use rustix::io::Errno;
use rustix::process::{Gid, Uid};
use rustix::thread::{set_thread_groups, set_thread_res_gid, set_thread_res_uid};

/// Sets real, effective and saved uid and gid (raw syscalls, for this thread: this process is
/// single-threaded where it matters) and clears the supplementary groups unless `groups` are
/// given.
pub fn set_ids(uid: u32, gid: u32, groups: &[u32]) -> io::Result<()> {
    let groups: Vec<Gid> = groups.iter().map(|g| Gid::from_raw(*g)).collect();
    set_ids_of(uid, gid, &groups)
}

/// [`set_ids`] with the groups already in rustix's type: it allocates nothing (for a process
/// that shares rrun's memory, see sys::spawn).
pub fn set_ids_of(uid: u32, gid: u32, groups: &[Gid]) -> io::Result<()> {
    // A rootless user namespace denies setgroups (see IdMaps::single): then there are no
    // supplementary groups to drop anyway.
    match set_thread_groups(groups) {
        Err(Errno::PERM) if groups.is_empty() => {}
        other => other?,
    }
    let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
    set_thread_res_gid(gid, gid, gid)?;
    set_thread_res_uid(uid, uid, uid)?;
    Ok(())
}
