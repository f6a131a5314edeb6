//! The system-call boundary: every kernel call rinit makes, as small typed wrappers.
//! Drives Linux directly with the x86_64 `syscall` instruction (syscall(2), syscalls(2)); no libc.
//!
//! rinit links no C library (see the crate docs for why), so this module is its libc: raw calls
//! that return `Result<_, Errno>`, plus the few kernel ABI structs and constants it needs, with
//! values from the kernel's uapi headers (asm/unistd_64.h, asm-generic/errno*.h, linux/mount.h).

use core::arch::asm;
use core::ffi::CStr;

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
pub const AT_SYMLINK_NOFOLLOW: u32 = 0x100;
pub const O_RDONLY: u32 = 0;
pub const O_DIRECTORY: u32 = 0o200000;
pub const O_CLOEXEC: u32 = 0o2000000;
pub const S_IFMT: u32 = 0o170000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFLNK: u32 = 0o120000;
pub const MS_RDONLY: u64 = 1;
pub const MS_NOSUID: u64 = 2;
pub const MS_NODEV: u64 = 4;
pub const MS_NOEXEC: u64 = 8;
pub const MS_STRICTATIME: u64 = 1 << 24;
pub const WNOHANG: i32 = 1;
/// Also wait for children whose exit signal is not SIGCHLD (clone(2) with another exit signal).
pub const WALL: i32 = 0x4000_0000;
pub const PR_SET_NAME: usize = 15;
pub const PR_SET_CHILD_SUBREAPER: usize = 36;
const TIOCGPGRP: usize = 0x540F;
const TIOCSPGRP: usize = 0x5410;
const CLOCK_MONOTONIC: usize = 1;
const STATX_BASIC_STATS: u32 = 0x7ff;
pub const STATX_ATTR_MOUNT_ROOT: u64 = 0x2000;
pub const PROC_SUPER_MAGIC: i64 = 0x9fa0;
pub const TMPFS_MAGIC: i64 = 0x0102_1994;

/// Signal numbers (signal(7), x86_64).
pub mod sig {
    pub const SIGHUP: i32 = 1;
    pub const SIGINT: i32 = 2;
    pub const SIGQUIT: i32 = 3;
    pub const SIGKILL: i32 = 9;
    pub const SIGUSR1: i32 = 10;
    pub const SIGUSR2: i32 = 12;
    pub const SIGPIPE: i32 = 13;
    pub const SIGTERM: i32 = 15;
    pub const SIGCHLD: i32 = 17;
    pub const SIGCONT: i32 = 18;
    pub const SIGSTOP: i32 = 19;
    pub const SIGWINCH: i32 = 28;
    /// Highest signal number (SIGRTMAX).
    pub const MAX: i32 = 64;
}

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

pub fn write(fd: i32, buf: &[u8]) -> SysResult<usize> {
    // SAFETY: buf is a valid, readable slice of buf.len() bytes for the call.
    check(unsafe {
        syscall(
            nr::WRITE,
            [fd as usize, buf.as_ptr() as usize, buf.len(), 0, 0, 0],
        )
    })
}

/// Writes all of `buf`, retrying short writes and EINTR; gives up on any other error.
pub fn write_all(fd: i32, mut buf: &[u8]) -> SysResult<()> {
    while !buf.is_empty() {
        match write(fd, buf) {
            Ok(0) => return Err(Errno(5)),
            Ok(n) => buf = buf.get(n..).unwrap_or(&[]),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub fn read(fd: i32, buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: buf is a valid, writable slice of buf.len() bytes for the call.
    check(unsafe {
        syscall(
            nr::READ,
            [fd as usize, buf.as_mut_ptr() as usize, buf.len(), 0, 0, 0],
        )
    })
}

pub fn close(fd: i32) -> SysResult<()> {
    call_ints(nr::CLOSE, [fd as usize, 0, 0, 0, 0, 0]).map(drop)
}

/// close_range(2): closes every descriptor from `first` to `last` (Linux >= 5.9).
pub fn close_range(first: u32, last: u32) -> SysResult<()> {
    call_ints(nr::CLOSE_RANGE, [first as usize, last as usize, 0, 0, 0, 0]).map(drop)
}

/// openat(2) relative to the working directory; returns the new descriptor.
pub fn open(path: &CStr, flags: u32) -> SysResult<i32> {
    // SAFETY: path is a NUL-terminated string valid for the call.
    check(unsafe {
        syscall(
            nr::OPENAT,
            [AT_FDCWD as usize, cptr(path), flags as usize, 0, 0, 0],
        )
    })
    .map(|fd| fd as i32)
}

pub fn getpid() -> i32 {
    call_ints(nr::GETPID, [0; 6]).map_or(0, |p| p as i32)
}

pub fn getppid() -> i32 {
    call_ints(nr::GETPPID, [0; 6]).map_or(0, |p| p as i32)
}

pub fn getpgid(pid: i32) -> SysResult<i32> {
    call_ints(nr::GETPGID, [pid as usize, 0, 0, 0, 0, 0]).map(|p| p as i32)
}

pub fn setpgid(pid: i32, pgid: i32) -> SysResult<()> {
    call_ints(nr::SETPGID, [pid as usize, pgid as usize, 0, 0, 0, 0]).map(drop)
}

/// The result of [`fork`], seen from each side.
pub enum Fork {
    Child,
    Parent(i32),
}

/// fork(2).
///
/// # Safety
/// The caller must be single-threaded (rinit always is): the child gets a copy of this one
/// thread only. rinit has no allocator or locks, so the child can run any of its code.
pub unsafe fn fork() -> SysResult<Fork> {
    // SAFETY: fork takes no arguments and touches no memory of ours.
    let pid = check(unsafe { syscall(nr::FORK, [0; 6]) })?;
    Ok(if pid == 0 {
        Fork::Child
    } else {
        Fork::Parent(pid as i32)
    })
}

/// execve(2); returns only on failure.
///
/// # Safety
/// `argv` and `envp` must point to NULL-terminated arrays of pointers to NUL-terminated strings.
pub unsafe fn execve(path: &CStr, argv: *const *const u8, envp: *const *const u8) -> Errno {
    // SAFETY: path is NUL-terminated; the caller guarantees argv and envp.
    match check(unsafe {
        syscall(
            nr::EXECVE,
            [cptr(path), argv as usize, envp as usize, 0, 0, 0],
        )
    }) {
        Ok(_) => Errno(0),
        Err(e) => e,
    }
}

pub fn exit_group(code: i32) -> ! {
    let _ = call_ints(nr::EXIT_GROUP, [code as usize, 0, 0, 0, 0, 0]);
    // exit_group does not return; should it ever, do not fall through.
    loop {
        core::hint::spin_loop();
    }
}

/// wait4(2) without rusage: `Ok(None)` when WNOHANG found nothing, else `(pid, wait status)`.
pub fn wait4(pid: i32, options: i32) -> SysResult<Option<(i32, i32)>> {
    let mut status = 0i32;
    // SAFETY: status is a writable int; the rusage pointer is NULL (not wanted).
    let p = check(unsafe {
        syscall(
            nr::WAIT4,
            [
                pid as usize,
                &mut status as *mut i32 as usize,
                options as usize,
                0,
                0,
                0,
            ],
        )
    })?;
    Ok(if p == 0 {
        None
    } else {
        Some((p as i32, status))
    })
}

/// kill(2): `pid` > 0 a process, < -1 a process group, -1 every process we may signal.
pub fn kill(pid: i32, signal: i32) -> SysResult<()> {
    call_ints(nr::KILL, [pid as usize, signal as usize, 0, 0, 0, 0]).map(drop)
}

pub fn umask(mask: u32) -> u32 {
    call_ints(nr::UMASK, [mask as usize, 0, 0, 0, 0, 0]).map_or(0o022, |m| m as u32)
}

pub fn prctl_set_name(name: &CStr) -> SysResult<()> {
    // SAFETY: PR_SET_NAME reads at most 16 bytes from a NUL-terminated string, which name is.
    check(unsafe { syscall(nr::PRCTL, [PR_SET_NAME, cptr(name), 0, 0, 0, 0]) }).map(drop)
}

pub fn prctl_set_child_subreaper() -> SysResult<()> {
    call_ints(nr::PRCTL, [PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0, 0]).map(drop)
}

/// tcgetpgrp(3) on `fd`: the terminal's foreground process group (ENOTTY unless `fd` is our
/// controlling terminal).
pub fn tcgetpgrp(fd: i32) -> SysResult<i32> {
    let mut pgrp = 0i32;
    // SAFETY: TIOCGPGRP writes one pid_t (int) to the pointer, a writable local.
    check(unsafe {
        syscall(
            nr::IOCTL,
            [
                fd as usize,
                TIOCGPGRP,
                &mut pgrp as *mut i32 as usize,
                0,
                0,
                0,
            ],
        )
    })?;
    Ok(pgrp)
}

/// tcsetpgrp(3) on `fd`: makes `pgrp` the terminal's foreground process group.
pub fn tcsetpgrp(fd: i32, pgrp: i32) -> SysResult<()> {
    // SAFETY: TIOCSPGRP reads one pid_t (int) from the pointer, a readable local.
    check(unsafe {
        syscall(
            nr::IOCTL,
            [
                fd as usize,
                TIOCSPGRP,
                &pgrp as *const i32 as usize,
                0,
                0,
                0,
            ],
        )
    })
    .map(drop)
}

/// A set of signals 1..=64 as the kernel's rt_sig* calls take it (one bit per signal).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SigSet(pub u64);

impl SigSet {
    pub const EMPTY: SigSet = SigSet(0);
    /// Every signal (the kernel silently ignores SIGKILL and SIGSTOP in a mask).
    pub const FULL: SigSet = SigSet(u64::MAX);
    pub fn with(self, signal: i32) -> SigSet {
        SigSet(self.0 | 1u64 << (signal - 1))
    }
    pub fn contains(self, signal: i32) -> bool {
        (1..=sig::MAX).contains(&signal) && self.0 & (1u64 << (signal - 1)) != 0
    }
}

pub const SIG_SETMASK: usize = 2;

/// rt_sigprocmask(2) with SIG_SETMASK: installs `set`, returns the previous mask.
pub fn sigprocmask_set(set: SigSet) -> SysResult<SigSet> {
    let mut old = SigSet::EMPTY;
    // SAFETY: both pointers are to 8-byte sets, matching the sigsetsize argument (8).
    check(unsafe {
        syscall(
            nr::RT_SIGPROCMASK,
            [
                SIG_SETMASK,
                &set as *const SigSet as usize,
                &mut old as *mut SigSet as usize,
                8,
                0,
                0,
            ],
        )
    })?;
    Ok(old)
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: i64,
}

impl Timespec {
    pub fn from_millis(ms: u64) -> Timespec {
        Timespec {
            sec: (ms / 1000) as i64,
            nsec: ((ms % 1000) * 1_000_000) as i64,
        }
    }
    pub fn as_millis(self) -> u64 {
        (self.sec.max(0) as u64) * 1000 + (self.nsec.max(0) as u64) / 1_000_000
    }
}

/// rt_sigtimedwait(2): waits for one signal of `set` (which must be blocked) and returns its
/// number; EAGAIN when `timeout` passed first.
pub fn sigtimedwait(set: SigSet, timeout: Option<Timespec>) -> SysResult<i32> {
    // siginfo_t is 128 bytes; rinit only needs the signal number, which is the return value.
    let mut info = [0u64; 16];
    let ts = timeout.unwrap_or_default();
    let ts_ptr = if timeout.is_some() {
        &ts as *const Timespec as usize
    } else {
        0
    };
    // SAFETY: set is an 8-byte set (sigsetsize 8), info a writable 128-byte siginfo buffer,
    // ts_ptr NULL or a readable timespec; all live for the call.
    check(unsafe {
        syscall(
            nr::RT_SIGTIMEDWAIT,
            [
                &set as *const SigSet as usize,
                info.as_mut_ptr() as usize,
                ts_ptr,
                8,
                0,
                0,
            ],
        )
    })
    .map(|s| s as i32)
}

/// clock_gettime(2) of CLOCK_MONOTONIC, by the real syscall (no vDSO without a libc).
pub fn monotonic_now() -> Timespec {
    let mut ts = Timespec::default();
    // SAFETY: ts is a writable timespec.
    let _ = check(unsafe {
        syscall(
            nr::CLOCK_GETTIME,
            [
                CLOCK_MONOTONIC,
                &mut ts as *mut Timespec as usize,
                0,
                0,
                0,
                0,
            ],
        )
    });
    ts
}

/// mount(2). `data` is the filesystem's option string, if any.
pub fn mount(
    source: &CStr,
    target: &CStr,
    fstype: &CStr,
    flags: u64,
    data: Option<&CStr>,
) -> SysResult<()> {
    let data = data.map_or(0, cptr);
    // SAFETY: the three strings are NUL-terminated; data is NULL or a NUL-terminated string
    // (every filesystem rinit mounts takes a text option string).
    check(unsafe {
        syscall(
            nr::MOUNT,
            [
                cptr(source),
                cptr(target),
                cptr(fstype),
                flags as usize,
                data,
                0,
            ],
        )
    })
    .map(drop)
}

pub fn mkdir(path: &CStr, mode: u32) -> SysResult<()> {
    // SAFETY: path is NUL-terminated.
    check(unsafe {
        syscall(
            nr::MKDIRAT,
            [AT_FDCWD as usize, cptr(path), mode as usize, 0, 0, 0],
        )
    })
    .map(drop)
}

/// mknodat(2) of a character device `major:minor`.
pub fn mknod_char(path: &CStr, mode: u32, major: u32, minor: u32) -> SysResult<()> {
    // The kernel's new_encode_dev() layout of a dev_t in 32 bits.
    let dev = (minor & 0xff) | (major & 0xfff) << 8 | (minor & !0xff) << 12;
    // SAFETY: path is NUL-terminated.
    check(unsafe {
        syscall(
            nr::MKNODAT,
            [
                AT_FDCWD as usize,
                cptr(path),
                (S_IFCHR | mode) as usize,
                dev as usize,
                0,
                0,
            ],
        )
    })
    .map(drop)
}

pub fn symlink(target: &CStr, link: &CStr) -> SysResult<()> {
    // SAFETY: both strings are NUL-terminated.
    check(unsafe {
        syscall(
            nr::SYMLINKAT,
            [cptr(target), AT_FDCWD as usize, cptr(link), 0, 0, 0],
        )
    })
    .map(drop)
}

pub fn unlink(path: &CStr) -> SysResult<()> {
    // SAFETY: path is NUL-terminated.
    check(unsafe { syscall(nr::UNLINKAT, [AT_FDCWD as usize, cptr(path), 0, 0, 0, 0]) }).map(drop)
}

/// readlink(2) into `buf`; returns the bytes of the link target (not NUL-terminated).
pub fn readlink<'b>(path: &CStr, buf: &'b mut [u8]) -> SysResult<&'b [u8]> {
    // SAFETY: path is NUL-terminated; buf is writable for buf.len() bytes.
    let n = check(unsafe {
        syscall(
            nr::READLINKAT,
            [
                AT_FDCWD as usize,
                cptr(path),
                buf.as_mut_ptr() as usize,
                buf.len(),
                0,
                0,
            ],
        )
    })?;
    buf.get(..n).ok_or(Errno::ENAMETOOLONG)
}

/// `struct statx` (statx(2)), 256 bytes; only the fields rinit reads are named.
#[repr(C)]
pub struct Statx {
    pub mask: u32,
    pub blksize: u32,
    pub attributes: u64,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub mode: u16,
    _pad0: u16,
    pub ino: u64,
    pub size: u64,
    pub blocks: u64,
    pub attributes_mask: u64,
    _times: [u64; 8],
    pub rdev_major: u32,
    pub rdev_minor: u32,
    pub dev_major: u32,
    pub dev_minor: u32,
    _rest: [u64; 14],
}

impl Statx {
    pub fn file_type(&self) -> u32 {
        self.mode as u32 & S_IFMT
    }
}

/// statx(2) of `path`, not following a final symlink.
pub fn lstatx(path: &CStr) -> SysResult<Statx> {
    // SAFETY: Statx is plain integers, for which all-zero bytes are a valid value.
    let mut st: Statx = unsafe { core::mem::zeroed() };
    // SAFETY: path is NUL-terminated; st is a writable 256-byte struct statx.
    check(unsafe {
        syscall(
            nr::STATX,
            [
                AT_FDCWD as usize,
                cptr(path),
                AT_SYMLINK_NOFOLLOW as usize,
                STATX_BASIC_STATS as usize,
                &mut st as *mut Statx as usize,
                0,
            ],
        )
    })?;
    Ok(st)
}

/// statfs(2) of `path`: the filesystem's magic number (`f_type`).
pub fn statfs_type(path: &CStr) -> SysResult<i64> {
    // struct statfs on x86_64 is 15 64-bit words (120 bytes); f_type is the first.
    let mut buf = [0i64; 15];
    // SAFETY: path is NUL-terminated; buf is a writable 120-byte struct statfs.
    check(unsafe {
        syscall(
            nr::STATFS,
            [cptr(path), buf.as_mut_ptr() as usize, 0, 0, 0, 0],
        )
    })?;
    Ok(buf[0])
}

/// getdents64(2) into `buf`; returns how many bytes of `linux_dirent64` records were filled.
pub fn getdents64(fd: i32, buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: buf is writable for buf.len() bytes.
    check(unsafe {
        syscall(
            nr::GETDENTS64,
            [fd as usize, buf.as_mut_ptr() as usize, buf.len(), 0, 0, 0],
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statx_has_the_kernel_size() {
        assert_eq!(core::mem::size_of::<Statx>(), 256);
    }

    #[test]
    fn sigset_bits_match_signal_numbers() {
        let s = SigSet::EMPTY.with(sig::SIGHUP).with(sig::SIGCHLD);
        assert_eq!(s.0, 1 | 1 << 16);
        assert!(s.contains(sig::SIGCHLD));
        assert!(!s.contains(sig::SIGTERM));
        assert!(!s.contains(0) && !s.contains(65));
    }

    #[test]
    fn errors_come_back_as_errno() {
        assert_eq!(check(-2), Err(Errno::ENOENT));
        assert_eq!(check(5), Ok(5));
        assert_eq!(kill(i32::MAX, 0), Err(Errno::ESRCH));
    }

    #[test]
    fn timespec_converts_milliseconds() {
        let t = Timespec::from_millis(2_345);
        assert_eq!((t.sec, t.nsec), (2, 345_000_000));
        assert_eq!(t.as_millis(), 2_345);
    }
}
