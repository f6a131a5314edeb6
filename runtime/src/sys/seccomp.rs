//! Installing a compiled seccomp filter on the calling thread: seccomp(2)
//! SECCOMP_SET_MODE_FILTER with a `struct sock_fprog` (linux/filter.h) and the filter flags
//! (SECCOMP_FILTER_FLAG_*, linux/seccomp.h). Needs no_new_privs set, or CAP_SYS_ADMIN in the
//! caller's user namespace. Makes no allocation, so it is safe between fork and exec. Also
//! asks the kernel which filter flags it knows, without installing anything.

use std::io;

/// seccomp(2) operation (linux/seccomp.h).
const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;

/// Installs `insns`, sock_filter instructions as libc's `struct sock_filter`, with `flags`
/// (SECCOMP_FILTER_FLAG_* bits). Errors: the kernel's (EACCES without no_new_privs or
/// CAP_SYS_ADMIN, EINVAL for a malformed program or a flag this kernel does not know).
pub fn install_filter(insns: &[libc::sock_filter], flags: u32) -> io::Result<()> {
    let len = u16::try_from(insns.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let prog = libc::sock_fprog {
        len,
        filter: insns.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `len` initialised sock_filter structs that live until the call
    // returns; the kernel copies the program and writes nothing through the pointer.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags as libc::c_uint,
            &prog as *const libc::sock_fprog,
        )
    };
    super::check(r).map(|_| ())
}

/// Whether this kernel accepts the filter flag `flag` (one SECCOMP_FILTER_FLAG_* bit): the
/// kernel checks the flags before it reads the program, so a NULL program fails with EFAULT
/// for a known flag and EINVAL for an unknown one (how runc probes them). Installs nothing.
pub fn flag_supported(flag: u32) -> bool {
    // SAFETY: the NULL program is never dereferenced by us; the kernel's copy_from_user of it
    // fails with EFAULT, and no filter is installed whatever the answer.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flag as libc::c_uint,
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
}

/// The instructions of an exported program (8 bytes each, native byte order: u16 code, u8 jt,
/// u8 jf, u32 k); trailing bytes short of an instruction are ignored.
pub fn instructions(bytes: &[u8]) -> Vec<libc::sock_filter> {
    bytes
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()
}
