//! Owns: a tiny eBPF assembler (the handful of instructions a device filter needs), and loading
//! such a program as a BPF_PROG_TYPE_CGROUP_DEVICE program and attaching it to a cgroup v2
//! directory. Kernel interface: bpf(2) BPF_PROG_LOAD / BPF_PROG_ATTACH / BPF_PROG_QUERY through
//! [`crate::sys::bpf`], the instruction set of Documentation/bpf/standardization/instruction-set.rst.

use std::io;
use std::os::fd::AsFd;

pub use crate::sys::bpf::Insn;
use crate::sys::bpf::{self as sysbpf, Program};

// include/uapi/linux/bpf.h: enum bpf_prog_type, bpf_attach_type and attach flags.
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Programs of this cgroup and of its ancestors all run; access needs every one to allow it.
pub const BPF_F_ALLOW_MULTI: u32 = 1 << 1;
/// BPF_PROG_QUERY: the programs in effect (own and inherited), not only those attached here.
#[cfg(test)]
pub const BPF_F_QUERY_EFFECTIVE: u32 = 1 << 0;

/// Registers: r0 return value, r1 the context pointer on entry, r2-r9 scratch for us.
pub type Reg = u8;

// Opcode parts (instruction-set.rst): class | operation | source.
const CLASS_LDX: u8 = 0x01;
const CLASS_ALU: u8 = 0x04; // 32-bit ALU: results are zero-extended to 64 bits
const CLASS_JMP: u8 = 0x05;
const MODE_MEM: u8 = 0x60;
const SIZE_W: u8 = 0x00;
const SRC_K: u8 = 0x00;
const SRC_X: u8 = 0x08;
const OP_AND: u8 = 0x50;
const OP_RSH: u8 = 0x70;
const OP_MOV: u8 = 0xb0;
const OP_JA: u8 = 0x00;
const OP_JEQ: u8 = 0x10;
const OP_JNE: u8 = 0x50;
const OP_EXIT: u8 = 0x90;

fn insn(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (dst & 0x0f) | ((src & 0x0f) << 4),
        off,
        imm,
    }
}

/// `dst = *(u32 *)(src + off)`
pub fn load_u32(dst: Reg, src: Reg, off: i16) -> Insn {
    insn(CLASS_LDX | MODE_MEM | SIZE_W, dst, src, off, 0)
}

/// `w_dst = w_src` (32-bit move, upper half cleared)
pub fn mov32_reg(dst: Reg, src: Reg) -> Insn {
    insn(CLASS_ALU | OP_MOV | SRC_X, dst, src, 0, 0)
}

/// `w_dst = imm`
pub fn mov32_imm(dst: Reg, imm: i32) -> Insn {
    insn(CLASS_ALU | OP_MOV | SRC_K, dst, 0, 0, imm)
}

/// `w_dst &= imm`
pub fn and32_imm(dst: Reg, imm: i32) -> Insn {
    insn(CLASS_ALU | OP_AND | SRC_K, dst, 0, 0, imm)
}

/// `w_dst >>= imm` (logical)
pub fn rsh32_imm(dst: Reg, imm: i32) -> Insn {
    insn(CLASS_ALU | OP_RSH | SRC_K, dst, 0, 0, imm)
}

/// `if dst != imm goto pc + 1 + off` (64-bit compare against the sign-extended immediate)
pub fn jne_imm(dst: Reg, imm: i32, off: i16) -> Insn {
    insn(CLASS_JMP | OP_JNE | SRC_K, dst, 0, off, imm)
}

/// `if dst == imm goto pc + 1 + off`
pub fn jeq_imm(dst: Reg, imm: i32, off: i16) -> Insn {
    insn(CLASS_JMP | OP_JEQ | SRC_K, dst, 0, off, imm)
}

/// `goto pc + 1 + off`
pub fn ja(off: i16) -> Insn {
    insn(CLASS_JMP | OP_JA, 0, 0, off, 0)
}

/// Whether `i` is a jump whose offset [`set_jump`] may point somewhere.
pub fn is_jump(i: &Insn) -> bool {
    matches!(i.code, 0x05 | 0x15 | 0x55)
}

/// `return r0`
pub fn exit() -> Insn {
    insn(CLASS_JMP | OP_EXIT, 0, 0, 0, 0)
}

/// Why the kernel refused a program: the errno and the verifier's last words.
#[derive(Debug)]
pub struct LoadError {
    pub source: io::Error,
    pub verifier: String,
}

/// Loads `prog` as a cgroup device program named `name` (at most 15 bytes). On a refusal the
/// load is repeated with the verifier log on, so the error says why.
pub fn load_device_program(prog: &[Insn], name: &str) -> Result<std::os::fd::OwnedFd, LoadError> {
    let p = Program {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insns: prog,
        license: c"Apache-2.0",
        name,
        expected_attach_type: BPF_CGROUP_DEVICE,
    };
    match sysbpf::prog_load(&p, None) {
        Ok(fd) => Ok(fd),
        Err(source) => {
            let mut log = vec![0u8; 64 * 1024];
            if let Ok(fd) = sysbpf::prog_load(&p, Some(&mut log)) {
                // the second attempt succeeded after all: keep its descriptor
                return Ok(fd);
            }
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            let verifier = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
                .to_string();
            Err(LoadError { source, verifier })
        }
    }
}

/// Attaches a loaded device program to the cgroup v2 directory `cgroup` (an open directory fd).
/// The attachment holds its own reference: it lasts until the cgroup is removed, whatever
/// becomes of `prog` and of this process.
pub fn attach_device_program(cgroup: &impl AsFd, prog: &impl AsFd, flags: u32) -> io::Result<()> {
    sysbpf::prog_attach(cgroup.as_fd(), prog.as_fd(), BPF_CGROUP_DEVICE, flags)
}

/// How many device programs are attached to the cgroup directory `dir` (with
/// [`BPF_F_QUERY_EFFECTIVE`]: how many run for its tasks, inherited ones included). Tests only.
#[cfg(test)]
pub fn device_program_count(dir: &std::path::Path, query_flags: u32) -> io::Result<u32> {
    let d = std::fs::File::open(dir)?;
    sysbpf::prog_query_count(d.as_fd(), BPF_CGROUP_DEVICE, query_flags)
}

/// Runs `prog` on a context of u32 fields the way the kernel would, for the instructions this
/// assembler emits (unit tests check the generated programs' logic without a kernel).
#[cfg(test)]
pub fn interpret(prog: &[Insn], ctx: &[u32]) -> Result<u64, String> {
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    for _ in 0..100_000 {
        let i = *prog.get(pc).ok_or(format!("pc {pc} ran off the end"))?;
        let (dst, src) = ((i.regs & 0x0f) as usize, (i.regs >> 4) as usize);
        pc += 1;
        match i.code {
            0x61 => {
                if src != 1 || i.off % 4 != 0 {
                    return Err(format!("load from r{src}{:+}", i.off));
                }
                r[dst] = *ctx
                    .get(i.off as usize / 4)
                    .ok_or(format!("ctx offset {}", i.off))? as u64;
            }
            0xb4 => r[dst] = i.imm as u32 as u64,
            0xbc => r[dst] = r[src] as u32 as u64,
            0x54 => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
            0x74 => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
            0x55 => {
                if r[dst] != i.imm as i64 as u64 {
                    pc = (pc as i64 + i.off as i64) as usize;
                }
            }
            0x15 => {
                if r[dst] == i.imm as i64 as u64 {
                    pc = (pc as i64 + i.off as i64) as usize;
                }
            }
            0x05 => pc = (pc as i64 + i.off as i64) as usize,
            0x95 => return Ok(r[0]),
            c => return Err(format!("opcode {c:#x} not supported")),
        }
    }
    Err("no exit".into())
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn instructions_encode_as_the_kernel_expects() {
        // Reference encodings: r2 = *(u32 *)(r1 + 4) is 61 12 04 00 00 00 00 00.
        let i = load_u32(2, 1, 4);
        assert_eq!((i.code, i.regs, i.off, i.imm), (0x61, 0x12, 4, 0));
        assert_eq!(jne_imm(5, 136, 3).code, 0x55);
        assert_eq!(exit().code, 0x95);
        assert_eq!(jeq_imm(5, 3, 1).code, 0x15);
        assert_eq!(ja(2).code, 0x05);
        assert_eq!(mov32_reg(3, 2).regs, 0x23);
        assert_eq!(mov32_imm(0, 1).code, 0xb4);
        assert_eq!(and32_imm(3, 0xffff).code, 0x54);
        assert_eq!(rsh32_imm(4, 16).code, 0x74);
    }

    #[test]
    fn the_interpreter_follows_jumps_and_exits() {
        let p = [
            load_u32(2, 1, 4),
            jne_imm(2, 7, 2),
            mov32_imm(0, 1),
            exit(),
            mov32_imm(0, 0),
            exit(),
        ];
        assert_eq!(interpret(&p, &[0, 7, 0]), Ok(1));
        assert_eq!(interpret(&p, &[0, 8, 0]), Ok(0));
    }
}
