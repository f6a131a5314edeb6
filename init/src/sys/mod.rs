//! The system-call boundary: every kernel call rinit makes, as small typed wrappers, one module
//! per kernel interface: [`io`] (descriptors), [`process`], [`signal`], [`time`], [`tty`] and
//! [`fs`] (files and mounts). Drives Linux directly with the x86_64 `syscall` instruction
//! (syscall(2), syscalls(2)); no libc.
//!
//! rinit links no C library (see the crate docs for why), so these modules are its libc: raw
//! calls that return `Result<_, Errno>`, plus the few kernel ABI structs and constants it needs,
//! with values from the kernel's uapi headers (asm/unistd_64.h, asm-generic/errno*.h,
//! linux/mount.h). This module holds the errors, the syscall numbers and the `syscall`
//! instruction itself.

use core::arch::asm;
use core::ffi::CStr;

pub mod fs;
pub mod io;
pub mod process;
pub mod signal;
pub mod time;
pub mod tty;

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
compile_error!("rinit makes raw Linux system calls and supports x86_64 Linux only");

/// An error number from the kernel (errno(3)), always positive.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Errno(pub i32);

impl Errno {
    pub const EPERM: Errno = Errno(1);
    pub const ENOENT: Errno = Errno(2);
    pub const ESRCH: Errno = Errno(3);
    pub const EINTR: Errno = Errno(4);
    pub const ECHILD: Errno = Errno(10);
    pub const EAGAIN: Errno = Errno(11);
    pub const EACCES: Errno = Errno(13);
    pub const EEXIST: Errno = Errno(17);
    pub const ENOTDIR: Errno = Errno(20);
    pub const EPIPE: Errno = Errno(32);
    pub const EINVAL: Errno = Errno(22);
    pub const ENAMETOOLONG: Errno = Errno(36);
    pub const ELOOP: Errno = Errno(40);
    pub const ESTALE: Errno = Errno(116);

    /// The strerror(3)-style text, lowercase, for the errors rinit can meet.
    pub fn text(self) -> &'static str {
        match self.0 {
            1 => "operation not permitted",
            2 => "no such file or directory",
            3 => "no such process",
            4 => "interrupted system call",
            5 => "input/output error",
            6 => "no such device or address",
            7 => "argument list too long",
            8 => "exec format error",
            9 => "bad file descriptor",
            10 => "no child processes",
            11 => "resource temporarily unavailable",
            12 => "cannot allocate memory",
            13 => "permission denied",
            14 => "bad address",
            16 => "device or resource busy",
            17 => "file exists",
            19 => "no such device",
            20 => "not a directory",
            21 => "is a directory",
            22 => "invalid argument",
            23 => "too many open files in system",
            24 => "too many open files",
            25 => "inappropriate ioctl for device",
            26 => "text file busy",
            28 => "no space left on device",
            30 => "read-only file system",
            32 => "broken pipe",
            36 => "file name too long",
            38 => "function not implemented",
            40 => "too many levels of symbolic links",
            116 => "stale file handle",
            _ => "unknown error",
        }
    }
}

pub type SysResult<T> = Result<T, Errno>;

/// Syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl).
mod nr {
    pub const READ: usize = 0;
    pub const WRITE: usize = 1;
    pub const CLOSE: usize = 3;
    pub const RT_SIGPROCMASK: usize = 14;
    pub const IOCTL: usize = 16;
    pub const GETPID: usize = 39;
    pub const FORK: usize = 57;
    pub const EXECVE: usize = 59;
    pub const WAIT4: usize = 61;
    pub const KILL: usize = 62;
    pub const UMASK: usize = 95;
    pub const SETPGID: usize = 109;
    pub const GETPPID: usize = 110;
    pub const GETPGID: usize = 121;
    pub const RT_SIGTIMEDWAIT: usize = 128;
    pub const STATFS: usize = 137;
    pub const PRCTL: usize = 157;
    pub const MOUNT: usize = 165;
    pub const GETDENTS64: usize = 217;
    pub const CLOCK_GETTIME: usize = 228;
    pub const EXIT_GROUP: usize = 231;
    pub const OPENAT: usize = 257;
    pub const MKDIRAT: usize = 258;
    pub const MKNODAT: usize = 259;
    pub const UNLINKAT: usize = 263;
    pub const SYMLINKAT: usize = 266;
    pub const READLINKAT: usize = 267;
    pub const STATX: usize = 332;
    pub const CLOSE_RANGE: usize = 436;
}

pub const AT_FDCWD: i32 = -100;

/// Turns a raw syscall return value into a result: -4095..-1 are negated errno values.
#[inline]
fn check(ret: isize) -> SysResult<usize> {
    if (-4095..0).contains(&ret) {
        Err(Errno(-ret as i32))
    } else {
        Ok(ret as usize)
    }
}

/// Makes system call `n` with up to six arguments.
///
/// # Safety
/// The arguments must be valid for system call `n`: any pointer among them must point to memory
/// of the size and mutability the kernel expects for that call, for the duration of the call.
#[inline]
unsafe fn syscall(n: usize, a: [usize; 6]) -> isize {
    let ret: isize;
    // SAFETY: the x86_64 syscall ABI: number in rax, arguments in rdi, rsi, rdx, r10, r8, r9,
    // result in rax; the instruction clobbers rcx and r11 and nothing else. The kernel may read
    // or write memory the arguments point to, so the asm is not marked `nomem`/`readonly`; the
    // caller guarantees that memory is valid (see above). `nostack`: the kernel does not touch
    // our stack below rsp (there is no red-zone use by the instruction itself).
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") a[0],
            in("rsi") a[1],
            in("rdx") a[2],
            in("r10") a[3],
            in("r8") a[4],
            in("r9") a[5],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// A call whose arguments are all plain integers (no pointers): always memory-safe.
#[inline]
fn call_ints(n: usize, a: [usize; 6]) -> SysResult<usize> {
    // SAFETY: callers pass only integer arguments (numbers, fds, pids, flags), never pointers,
    // so the kernel reads or writes no memory of ours on their behalf.
    check(unsafe { syscall(n, a) })
}

fn cptr(s: &CStr) -> usize {
    s.as_ptr() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_come_back_as_errno() {
        assert_eq!(check(-2), Err(Errno::ENOENT));
        assert_eq!(check(5), Ok(5));
        assert_eq!(process::kill(i32::MAX, 0), Err(Errno::ESRCH));
    }
}
