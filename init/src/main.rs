//! The rinit executable: a `_start` that hands the kernel's start-up data to [`rinit::main`].
//! There is no C runtime (see the crate docs): the ELF entry point is here, and build.rs links
//! with -nostartfiles. The process starts as execve(2) and the System V AMD64 ABI describe.
//!
//! `cargo clippy` replaces the workspace wrapper (so no panic=abort): under clippy this file is
//! checked as an ordinary std binary and only the library's code is linted.
#![cfg_attr(not(clippy), no_std, no_main)]

#[cfg(not(clippy))]
core::arch::global_asm!(
    ".globl _start",
    ".type _start, @function",
    "_start:",
    "xor ebp, ebp",  // the outermost frame: no frame pointer to follow
    "mov rdi, rsp",  // first argument: the initial stack pointer (argc, argv..., envp...)
    "and rsp, -16",  // the ABI wants rsp 16-byte aligned at the call
    "call {entry}",
    "ud2",           // entry never returns
    entry = sym entry,
);

#[cfg(clippy)]
fn main() {}

/// Called by `_start` with the initial stack pointer.
#[cfg(not(clippy))]
extern "C" fn entry(sp: *const usize) -> ! {
    // SAFETY: `_start` passes the stack pointer exactly as the kernel set it at execve, which
    // is what Startup::from_stack requires.
    let start = unsafe { rinit::startup::Startup::from_stack(sp) };
    rinit::main(&start)
}
