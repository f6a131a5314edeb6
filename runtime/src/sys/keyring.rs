//! The kernel key retention service: joining a named session keyring and adding permission
//! bits to a keyring. Kernel interface: keyctl(2) KEYCTL_JOIN_SESSION_KEYRING,
//! KEYCTL_DESCRIBE and KEYCTL_SETPERM (keyrings(7), session-keyring(7)); rustix has no keyctl.

use std::ffi::CStr;
use std::io;

use super::check;

/// KEY_USR_SEARCH (include/uapi/linux/keyctl.h via linux/key.h): the owner may find the key.
pub const USR_SEARCH: u32 = 0x0008_0000;
/// KEY_OTH_SEARCH: anyone may find the key.
pub const OTH_SEARCH: u32 = 0x0000_0008;

/// Makes the calling process join the session keyring `name`, creating it if no keyring of
/// that name the caller may search exists (keyctl(2) KEYCTL_JOIN_SESSION_KEYRING). Returns the
/// keyring's serial. Errors: ENOSYS without key support, EDQUOT over the user's key quota.
pub fn join_session(name: &CStr) -> io::Result<i32> {
    // SAFETY: keyctl(KEYCTL_JOIN_SESSION_KEYRING, name) reads the NUL-terminated string `name`,
    // which outlives the call; it changes only this process's credentials.
    let r = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_JOIN_SESSION_KEYRING as libc::c_long,
            name.as_ptr(),
        )
    };
    Ok(check(r)? as i32)
}

/// ORs `bits` into the permission mask of key `serial` (keyctl(2) KEYCTL_DESCRIBE gives
/// "type;uid;gid;perm;description" with perm in hex, KEYCTL_SETPERM sets it).
pub fn add_perm(serial: i32, bits: u32) -> io::Result<()> {
    let mut buf = [0u8; 512];
    // SAFETY: KEYCTL_DESCRIBE writes at most `buf.len()` bytes into `buf`, which lives across
    // the call; it returns the full length the description needs.
    let n = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_DESCRIBE as libc::c_long,
            serial as libc::c_long,
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    let n = check(n)? as usize;
    let text = String::from_utf8_lossy(&buf[..n.min(buf.len())]);
    let perm = text
        .split(';')
        .nth(3)
        .and_then(|p| u32::from_str_radix(p, 16).ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "odd key description"))?;
    // SAFETY: KEYCTL_SETPERM takes two integers and touches no memory of ours.
    let r = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_SETPERM as libc::c_long,
            serial as libc::c_long,
            (perm | bits) as libc::c_long,
        )
    };
    check(r).map(drop)
}
