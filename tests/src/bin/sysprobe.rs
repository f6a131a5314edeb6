//! `sysprobe CALL...`: makes each named system call once, with arguments the kernel rejects
//! before any permission check where possible (a NULL or bad pointer: EFAULT, a too-small
//! size: EINVAL), each in a forked child, and prints `CALL RESULT` per line: `ok` or the errno
//! name. So a seccomp filter's own answer (EPERM, or ENOSYS for clone3) tells apart from the
//! kernel's, and calls compiled out of the kernel (modules, kexec, x32) still show the
//! filter's errno. Built static (tools/rustc-workspace-wrapper) so it runs in any image; the
//! escape tests bind it into Alpine containers. Kernel docs: syscalls(2), seccomp(2).

fn main() {
    for name in std::env::args().skip(1) {
        let r = sys::in_child(|| probe(&name));
        println!("{name} {r}");
    }
}

/// The call's result: 0 when it succeeded, else its errno (a negative value: unknown call).
fn probe(name: &str) -> i32 {
    match name {
        "keyctl" => sys::call(libc::SYS_keyctl, [0, -3i64 as u64, 0, 0, 0]),
        "add_key" => sys::add_key(),
        "bpf" => sys::call(libc::SYS_bpf, [0, 0, 8, 0, 0]),
        "perf_event_open" => sys::call(libc::SYS_perf_event_open, [0, 0, u64::MAX, u64::MAX, 0]),
        "mount" => sys::call(libc::SYS_mount, [1, 1, 1, 0, 0]),
        "unshare_user" => sys::call(libc::SYS_unshare, [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0]),
        "clone_newuser" => sys::clone_newuser(),
        "clone3" => sys::call(libc::SYS_clone3, [0, 0, 0, 0, 0]),
        "kexec_load" => sys::call(libc::SYS_kexec_load, [0, 0, 0, 0, 0]),
        "finit_module" => sys::call(libc::SYS_finit_module, [u64::MAX, 0, 0, 0, 0]),
        "open_by_handle_at" => sys::call(libc::SYS_open_by_handle_at, [u64::MAX, 0, 0, 0, 0]),
        // getpid(2) by its x32 number (__X32_SYSCALL_BIT | 39)
        "x32_getpid" => sys::call(0x4000_0000 | libc::SYS_getpid, [0; 5]),
        "i386_getpid" => sys::i386(20, 0, 0, 0),
        // keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0) by its i386 number
        "i386_keyctl" => sys::i386(288, 0, -3i32 as u32, 0),
        "clock_settime" => sys::call(libc::SYS_clock_settime, [0, 0, 0, 0, 0]),
        "chroot_escape" => sys::chroot_escape(),
        // ptrace(PTRACE_ATTACH, PID): PID as this process's pid namespace numbers it
        _ => match name
            .strip_prefix("ptrace_attach:")
            .and_then(|p| p.parse::<u64>().ok())
        {
            Some(pid) => sys::call(libc::SYS_ptrace, [libc::PTRACE_ATTACH as u64, pid, 0, 0, 0]),
            None => -1,
        },
    }
}

/// Errno names for the answers the tests expect.
fn errno_name(e: i32) -> String {
    match e {
        0 => "ok".into(),
        libc::EPERM => "EPERM".into(),
        libc::ENOENT => "ENOENT".into(),
        libc::ESRCH => "ESRCH".into(),
        libc::EBADF => "EBADF".into(),
        libc::EACCES => "EACCES".into(),
        libc::EFAULT => "EFAULT".into(),
        libc::EINVAL => "EINVAL".into(),
        libc::ENOSYS => "ENOSYS".into(),
        libc::EOPNOTSUPP => "EOPNOTSUPP".into(),
        100 => "HOST-ROOT".into(),
        101 => "container-root".into(),
        e if e < 0 => "unknown-call".into(),
        e => format!("errno{e}"),
    }
}

mod sys {
    use std::ffi::CStr;

    /// Runs `f` in a forked child (so a call that changes the process, as unshare does, changes
    /// nothing for the next one) and names the errno it exits with.
    pub fn in_child(f: impl FnOnce() -> i32) -> String {
        // SAFETY: this program is single-threaded, so the child may run any code.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let e = f();
            // SAFETY: _exit ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(if e < 0 { 255 } else { e }) };
        }
        let mut status = 0;
        // SAFETY: waits for the child just forked; `status` is a valid out-pointer.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        if libc::WIFSIGNALED(status) {
            return format!("killed-by-signal-{}", libc::WTERMSIG(status));
        }
        match libc::WEXITSTATUS(status) {
            255 => super::errno_name(-1),
            e => super::errno_name(e),
        }
    }

    fn errno() -> i32 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    }

    /// syscall(2) with five arguments; 0 or the errno.
    pub fn call(nr: libc::c_long, a: [u64; 5]) -> i32 {
        // SAFETY: every argument is a number or a pointer the kernel must reject (NULL, 1):
        // the probes are chosen so that no call writes through a pointer into this process.
        let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4]) };
        if r < 0 {
            errno()
        } else {
            0
        }
    }

    /// add_key("user", "rbox-probe", "x", 1, KEY_SPEC_PROCESS_KEYRING): the key, if made,
    /// dies with this child.
    pub fn add_key() -> i32 {
        let (t, d, p): (&CStr, &CStr, &CStr) = (c"user", c"rbox-probe", c"x");
        // SAFETY: valid NUL-terminated strings and a 1-byte payload that outlive the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_add_key,
                t.as_ptr(),
                d.as_ptr(),
                p.as_ptr(),
                1usize,
                -2i32,
            )
        };
        if r < 0 {
            errno()
        } else {
            0
        }
    }

    /// clone(CLONE_NEWUSER | SIGCHLD) as fork does (no new stack); the new child exits at once.
    pub fn clone_newuser() -> i32 {
        let flags = (libc::CLONE_NEWUSER | libc::SIGCHLD) as u64;
        // SAFETY: without CLONE_VM the child gets a copy of this address space, as with fork,
        // and only calls _exit.
        let r = unsafe { libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0) };
        if r == 0 {
            // SAFETY: see above.
            unsafe { libc::_exit(0) };
        }
        if r < 0 {
            return errno();
        }
        let mut st = 0;
        // SAFETY: waits for the child just made.
        unsafe { libc::waitpid(r as i32, &mut st, 0) };
        0
    }

    /// A 32-bit system call through `int 0x80` (the i386 ABI: number in eax, arguments in
    /// ebx, ecx, edx); 0 or the errno.
    #[cfg(target_arch = "x86_64")]
    pub fn i386(nr: u32, a: u32, b: u32, c: u32) -> i32 {
        let mut ret: i64 = nr as i64;
        // SAFETY: int 0x80 enters the kernel's i386 entry; the arguments are numbers only, no
        // pointer is passed, and rbx is saved and restored around it (it is reserved by LLVM).
        unsafe {
            std::arch::asm!(
                "xchg {a:r}, rbx",
                "int 0x80",
                "xchg {a:r}, rbx",
                a = inout(reg) a as u64 => _,
                inlateout("rax") ret,
                in("rcx") b as u64,
                in("rdx") c as u64,
            );
        }
        let ret = ret as i32;
        if ret < 0 {
            -ret
        } else {
            0
        }
    }

    /// The classic chroot escape: chroot into a subfolder while keeping the working directory
    /// outside it, climb with `..`, chroot there. Exits 100 when the root reached shows the
    /// host's (Debian's /etc/debian_version), 101 when it is still the container's (Alpine's
    /// /etc/alpine-release), else the errno of the step that failed.
    pub fn chroot_escape() -> i32 {
        let step = |r: libc::c_int| if r < 0 { Err(errno()) } else { Ok(()) };
        let run = || -> Result<i32, i32> {
            // SAFETY: plain path-taking calls with NUL-terminated literals.
            unsafe {
                let _ = libc::mkdir(c"/tmp/rbox-jail".as_ptr(), 0o700);
                step(libc::chroot(c"/tmp/rbox-jail".as_ptr()))?;
                for _ in 0..64 {
                    step(libc::chdir(c"..".as_ptr()))?;
                }
                step(libc::chroot(c".".as_ptr()))?;
                if libc::access(c"/etc/debian_version".as_ptr(), libc::F_OK) == 0 {
                    return Ok(100);
                }
                if libc::access(c"/etc/alpine-release".as_ptr(), libc::F_OK) == 0 {
                    return Ok(101);
                }
            }
            Ok(libc::ENOENT)
        };
        run().unwrap_or_else(|e| e)
    }
}
