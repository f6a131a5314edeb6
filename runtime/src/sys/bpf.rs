//! The bpf(2) system call for the three commands rrun makes: loading a program, attaching it to
//! a cgroup, and (in tests) asking which programs a cgroup has. Kernel interface: bpf(2),
//! `union bpf_attr` and `struct bpf_insn` of include/uapi/linux/bpf.h.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

// include/uapi/linux/bpf.h: enum bpf_cmd.
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
#[cfg(test)]
const BPF_PROG_QUERY: libc::c_long = 16;

/// One 8-byte eBPF instruction (struct bpf_insn): opcode, dst_reg in the low nibble and src_reg
/// in the high nibble of `regs` (little-endian bitfields), signed offset, signed immediate.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

/// The bpf(2) system call with an attribute struct of the command's layout (union bpf_attr).
/// The kernel reads `size_of::<A>()` bytes and treats the rest of its union as zero.
///
/// # Safety
/// `A` must be a #[repr(C)] struct laid out as the prefix of union bpf_attr for `cmd`, and
/// every pointer stored in it must point to memory valid, for the kernel's reads and writes
/// that `cmd` makes, for the duration of the call.
unsafe fn bpf<A>(cmd: libc::c_long, attr: &mut A) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, exclusively borrowed struct of the layout the caller
    // guarantees; we pass its exact size, so the kernel reads and (for queries) writes only
    // within it, and the pointers inside it are valid as the caller guarantees.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut A as *mut libc::c_void,
            std::mem::size_of::<A>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// union bpf_attr for BPF_PROG_LOAD, up to expected_attach_type.
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// What BPF_PROG_LOAD loads.
pub struct Program<'a> {
    /// enum bpf_prog_type.
    pub prog_type: u32,
    pub insns: &'a [Insn],
    pub license: &'a CStr,
    /// At most 15 bytes are kept.
    pub name: &'a str,
    /// enum bpf_attach_type.
    pub expected_attach_type: u32,
}

/// BPF_PROG_LOAD: the new program's descriptor. With `log`, the verifier writes its log there
/// (log_level 1), NUL-terminated.
pub fn prog_load(p: &Program<'_>, log: Option<&mut [u8]>) -> io::Result<OwnedFd> {
    let mut attr = ProgLoad {
        prog_type: p.prog_type,
        insn_cnt: p.insns.len() as u32,
        insns: p.insns.as_ptr() as u64,
        license: p.license.as_ptr() as u64,
        expected_attach_type: p.expected_attach_type,
        ..ProgLoad::default()
    };
    let n = p.name.len().min(15);
    attr.prog_name[..n].copy_from_slice(&p.name.as_bytes()[..n]);
    if let Some(log) = log {
        attr.log_level = 1;
        attr.log_size = log.len() as u32;
        attr.log_buf = log.as_mut_ptr() as u64;
    }
    // SAFETY: ProgLoad is the BPF_PROG_LOAD prefix of union bpf_attr (its layout is checked in
    // the unit tests); insns, license and log_buf point to the caller's slices and C string,
    // borrowed for this call, with insn_cnt and log_size their lengths.
    let fd = unsafe { bpf(BPF_PROG_LOAD, &mut attr) }?;
    // SAFETY: a successful BPF_PROG_LOAD returns a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// union bpf_attr for BPF_PROG_ATTACH, up to attach_flags.
#[repr(C)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

/// BPF_PROG_ATTACH of the loaded program `prog` to `target` (a cgroup directory, say) as
/// `attach_type` with `flags`.
pub fn prog_attach(
    target: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
    flags: u32,
) -> io::Result<()> {
    let mut attr = ProgAttach {
        target_fd: target.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type,
        attach_flags: flags,
    };
    // SAFETY: ProgAttach is the BPF_PROG_ATTACH prefix of union bpf_attr and holds no
    // pointers; the descriptors are borrowed for the call.
    unsafe { bpf(BPF_PROG_ATTACH, &mut attr) }.map(|_| ())
}

/// union bpf_attr for BPF_PROG_QUERY, up to prog_cnt.
#[cfg(test)]
#[repr(C)]
#[derive(Default)]
struct ProgQuery {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

/// BPF_PROG_QUERY: how many programs of `attach_type` `target` has (tests only).
#[cfg(test)]
pub fn prog_query_count(
    target: BorrowedFd<'_>,
    attach_type: u32,
    query_flags: u32,
) -> io::Result<u32> {
    let mut attr = ProgQuery {
        target_fd: target.as_raw_fd() as u32,
        attach_type,
        query_flags,
        ..ProgQuery::default()
    };
    // SAFETY: ProgQuery is the BPF_PROG_QUERY prefix of union bpf_attr; prog_ids is NULL, so
    // the kernel only writes the counts inside the struct.
    unsafe { bpf(BPF_PROG_QUERY, &mut attr) }?;
    Ok(attr.prog_cnt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_structs_match_the_union_bpf_attr_layout() {
        assert_eq!(std::mem::size_of::<Insn>(), 8);
        assert_eq!(std::mem::offset_of!(ProgLoad, insns), 8);
        assert_eq!(std::mem::offset_of!(ProgLoad, log_buf), 32);
        assert_eq!(std::mem::offset_of!(ProgLoad, prog_name), 48);
        assert_eq!(std::mem::offset_of!(ProgLoad, expected_attach_type), 68);
        assert_eq!(std::mem::offset_of!(ProgQuery, prog_ids), 16);
        assert_eq!(std::mem::offset_of!(ProgQuery, prog_cnt), 24);
        assert_eq!(std::mem::size_of::<ProgAttach>(), 16);
    }
}
