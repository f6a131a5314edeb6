//! Checked wrappers over the Linux system calls rrun needs that std does not offer.
//! Kernel interfaces: clone(2), open_tree(2), mount_setattr(2), fsopen(2), fsconfig(2), fsmount(2),
//! move_mount(2), openat2(2), pivot_root(2), mount(2), umount2(2), pidfd_open(2), setns(2).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A C string from a path or str; interior NUL bytes are an `InvalidInput` error.
pub fn cstr(p: impl AsRef<std::ffi::OsStr>) -> io::Result<CString> {
    CString::new(p.as_ref().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn check_fd(ret: libc::c_long) -> io::Result<OwnedFd> {
    let fd = check(ret)?;
    // SAFETY: the kernel just returned this descriptor to us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `open_tree(2)`: a handle on (or with OPEN_TREE_CLONE a detached copy of) the mount at `path`.
pub fn open_tree(dirfd: RawFd, path: &Path, flags: libc::c_uint) -> io::Result<OwnedFd> {
    let c = cstr(path)?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    check_fd(unsafe { libc::syscall(libc::SYS_open_tree, dirfd, c.as_ptr(), flags) })
}

/// `mount_setattr(2)` on the mount referred to by `fd` itself (AT_EMPTY_PATH).
pub fn mount_setattr_fd(
    fd: BorrowedFd<'_>,
    recursive: bool,
    attr: &libc::mount_attr,
) -> io::Result<()> {
    let flags = libc::AT_EMPTY_PATH | if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: the empty path is a static C string; `attr` points to a live struct whose size we pass.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    })?;
    Ok(())
}

/// `mount_setattr(2)` on a path.
pub fn mount_setattr_path(path: &Path, attr: &libc::mount_attr) -> io::Result<()> {
    let c = cstr(path)?;
    // SAFETY: `c` and `attr` are valid for the call; the size is that of the struct passed.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c.as_ptr(),
            0,
            attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    })?;
    Ok(())
}

/// `fsopen(2)`: a filesystem context for `fstype`.
pub fn fsopen(fstype: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: `fstype` is a valid C string.
    check_fd(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), libc::FSOPEN_CLOEXEC) })
}

fn fsconfig(
    fd: BorrowedFd<'_>,
    cmd: libc::c_uint,
    key: Option<&CStr>,
    value: *const libc::c_void,
    aux: libc::c_int,
) -> io::Result<()> {
    let key = key.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: key is null or a valid C string; value is null or points to data valid for `cmd`.
    check(unsafe { libc::syscall(libc::SYS_fsconfig, fd.as_raw_fd(), cmd, key, value, aux) })?;
    Ok(())
}

/// `fsconfig(FSCONFIG_SET_STRING)`.
pub fn fsconfig_string(fd: BorrowedFd<'_>, key: &CStr, value: &CStr) -> io::Result<()> {
    fsconfig(
        fd,
        libc::FSCONFIG_SET_STRING,
        Some(key),
        value.as_ptr().cast(),
        0,
    )
}

/// `fsconfig(FSCONFIG_SET_FD)`: hand the filesystem a file descriptor (e.g. an overlay layer).
pub fn fsconfig_fd(fd: BorrowedFd<'_>, key: &CStr, value: BorrowedFd<'_>) -> io::Result<()> {
    fsconfig(
        fd,
        libc::FSCONFIG_SET_FD,
        Some(key),
        std::ptr::null(),
        value.as_raw_fd(),
    )
}

/// `fsconfig(FSCONFIG_SET_FLAG)`.
pub fn fsconfig_flag(fd: BorrowedFd<'_>, key: &CStr) -> io::Result<()> {
    fsconfig(fd, libc::FSCONFIG_SET_FLAG, Some(key), std::ptr::null(), 0)
}

/// `fsconfig(FSCONFIG_CMD_CREATE)`: create the superblock.
pub fn fsconfig_create(fd: BorrowedFd<'_>) -> io::Result<()> {
    fsconfig(fd, libc::FSCONFIG_CMD_CREATE, None, std::ptr::null(), 0)
}

/// `fsmount(2)`: a detached mount of the superblock in `fd`, with MOUNT_ATTR_* flags.
pub fn fsmount(fd: BorrowedFd<'_>, attr: u64) -> io::Result<OwnedFd> {
    // SAFETY: plain integer arguments.
    check_fd(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fd.as_raw_fd(),
            libc::FSMOUNT_CLOEXEC,
            attr as libc::c_uint,
        )
    })
}

/// `move_mount(2)` of the detached or attached mount `from` onto the object `to` (an open fd).
pub fn move_mount_fd(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: empty static strings; the fds are borrowed for the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to.as_raw_fd(),
            c"".as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH,
        )
    })?;
    Ok(())
}

/// `move_mount(2)` of the mount `from` onto the path `to`.
pub fn move_mount_path(from: BorrowedFd<'_>, to: &Path) -> io::Result<()> {
    let c = cstr(to)?;
    // SAFETY: valid C strings, borrowed fd.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    })?;
    Ok(())
}

/// `openat2(2)` with a `resolve` mask (e.g. RESOLVE_IN_ROOT), always O_CLOEXEC.
pub fn openat2(
    dirfd: RawFd,
    path: &Path,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let c = cstr(path)?;
    // SAFETY: open_how is plain data; zeroed is a valid value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.mode = mode as u64;
    how.resolve = resolve;
    // SAFETY: `c` and `how` are valid for the call and we pass the struct's size.
    check_fd(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    })
}

/// `mount(2)`.
pub fn mount(
    src: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let src = src.map(cstr).transpose()?;
    let fstype = fstype.map(cstr).transpose()?;
    let data = data.map(cstr).transpose()?;
    let target = cstr(target)?;
    let p = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is null or a valid C string living until the call returns.
    let r = unsafe { libc::mount(p(&src), target.as_ptr(), p(&fstype), flags, p(&data).cast()) };
    check(r as libc::c_long).map(drop)
}

/// `umount2(2)`.
pub fn umount2(target: &Path, flags: libc::c_int) -> io::Result<()> {
    let c = cstr(target)?;
    // SAFETY: valid C string.
    check(unsafe { libc::umount2(c.as_ptr(), flags) } as libc::c_long).map(drop)
}

/// `pivot_root(2)`.
pub fn pivot_root(new_root: &Path, put_old: &Path) -> io::Result<()> {
    let a = cstr(new_root)?;
    let b = cstr(put_old)?;
    // SAFETY: valid C strings.
    check(unsafe { libc::syscall(libc::SYS_pivot_root, a.as_ptr(), b.as_ptr()) }).map(drop)
}

/// A fork-like `clone3(2)` (no CLONE_VM, no new stack: the child continues on a copy of this
/// process's stack) with namespace `flags`, optionally straight into the cgroup v2 directory
/// `cgroup` (CLONE_INTO_CGROUP). Returns 0 in the child and the child's pid in the parent.
///
/// # Safety
/// The calling process must be single-threaded: the child gets a copy of this thread only, so
/// a lock (the allocator's, stdout's) held by another thread at the moment of the clone would
/// stay locked in the child forever. In the child, the caller must not return into frames
/// that also exist in the parent (their destructors would run twice, once per process) nor
/// unwind into them: it ends with `_exit` or `exec`, and catches panics before they escape.
pub unsafe fn clone_fork(flags: u64, cgroup: Option<RawFd>) -> io::Result<i32> {
    #[repr(C)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let mut args = CloneArgs {
        flags,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: 0,
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: `args` is a valid clone_args of the size passed; without CLONE_VM and with no
    // stack the child gets a private copy of the address space, exactly like fork(2).
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    check(r).map(|p| p as i32)
}

/// Runs `body` in a process just forked from rrun and ends the process with its exit code,
/// never returning into the frames it shares with its parent: a panic (already reported in
/// one line by rrun's panic hook) ends it with `_exit(125)` instead of unwinding into the
/// parent's guards (which would, say, delete the container's folder from the child).
pub fn forked_child<F: FnOnce() -> i32>(body: F) -> ! {
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // Test hook: proves that a panic here never reaches the parent's frames.
        if std::env::var_os("RRUN_TEST_PANIC_IN_FORKED_CHILD").is_some() {
            panic!("test panic in a forked child (RRUN_TEST_PANIC_IN_FORKED_CHILD)");
        }
        body()
    }))
    .unwrap_or(125);
    // SAFETY: _exit ends this process at once, without destructors or atexit handlers.
    unsafe { libc::_exit(code) }
}

/// `pidfd_open(2)`.
pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: plain integer arguments.
    check_fd(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })
}

/// `pidfd_send_signal(2)`.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    // SAFETY: null siginfo means "as kill(2)"; the fd is borrowed for the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })
    .map(drop)
}

/// `setns(2)`.
pub fn setns(fd: BorrowedFd<'_>, nstype: libc::c_int) -> io::Result<()> {
    // SAFETY: borrowed fd, integer flags.
    check(unsafe { libc::setns(fd.as_raw_fd(), nstype) } as libc::c_long).map(drop)
}

/// `unshare(2)`.
pub fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: integer flags only.
    check(unsafe { libc::unshare(flags) } as libc::c_long).map(drop)
}

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

/// Marks every descriptor from `first` upwards close-on-exec (`close_range(2)`).
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: integer arguments.
    check(unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    })
    .map(drop)
}

/// `dup2(2)` that also works when old == new (clears CLOEXEC then).
pub fn dup2(old: RawFd, new: RawFd) -> io::Result<()> {
    if old == new {
        // SAFETY: fcntl on a descriptor number; fails cleanly if it is not open.
        return check(unsafe { libc::fcntl(old, libc::F_SETFD, 0) } as libc::c_long).map(drop);
    }
    // SAFETY: integer descriptors.
    check(unsafe { libc::dup2(old, new) } as libc::c_long).map(drop)
}

/// Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), used to
/// detect pid reuse. None when the process does not exist.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    proc_state_and_start(pid).map(|(_, start)| start)
}

/// The state letter (field 3: R, S, Z, ...) and start time (field 22) of /proc/PID/stat.
pub fn proc_state_and_start(pid: i32) -> Option<(char, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut rest = s[s.rfind(')')? + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    Some((state, rest.nth(18)?.parse().ok()?))
}

/// The command name of a process (`/proc/PID/comm`), None when it does not exist.
pub fn comm(pid: i32) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(s.trim_end_matches('\n').to_string())
}

/// True when process `pid` is PID 1 of a pid namespace below the caller's: its `NSpid` line
/// in /proc/PID/status (proc(5)) has more than one entry and ends in 1.
pub fn is_child_ns_init(pid: i32) -> bool {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let Some(ids) = s.lines().find_map(|l| l.strip_prefix("NSpid:")) else {
        return false;
    };
    let ids: Vec<&str> = ids.split_whitespace().collect();
    ids.len() > 1 && ids.last() == Some(&"1")
}

/// Blocks `sigs` in this thread and returns the previous mask.
pub fn block_signals(sigs: &[i32]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data initialised by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in sigs {
            libc::sigaddset(&mut set, *s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        old
    }
}

/// Restores a signal mask saved by [`block_signals`].
pub fn set_sigmask(mask: &libc::sigset_t) {
    // SAFETY: `mask` is a valid sigset.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, mask, std::ptr::null_mut());
    }
}

/// A signalfd for `sigs` (which the caller has blocked).
pub fn signalfd(sigs: &[i32]) -> io::Result<OwnedFd> {
    // SAFETY: sigset_t initialised by sigemptyset; signalfd returns a new descriptor we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in sigs {
            libc::sigaddset(&mut set, *s);
        }
        check_fd(libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) as libc::c_long)
    }
}

/// Reads one pending signal number from a signalfd, None when none is pending.
pub fn read_signal(fd: BorrowedFd<'_>) -> Option<i32> {
    // SAFETY: signalfd_siginfo is plain data; we read at most its size into it.
    unsafe {
        let mut info: libc::signalfd_siginfo = std::mem::zeroed();
        let n = libc::read(
            fd.as_raw_fd(),
            (&mut info as *mut libc::signalfd_siginfo).cast(),
            std::mem::size_of::<libc::signalfd_siginfo>(),
        );
        (n == std::mem::size_of::<libc::signalfd_siginfo>() as isize)
            .then_some(info.ssi_signo as i32)
    }
}

/// Converts a wait status into the shell convention: exit code, or 128+N for signal N.
pub fn exit_code_of(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        125
    }
}

/// `waitpid(2)` retrying on EINTR. Returns the raw status.
pub fn waitpid(pid: i32, flags: i32) -> io::Result<Option<i32>> {
    loop {
        let mut st = 0;
        // SAFETY: valid pointer to an int.
        let r = unsafe { libc::waitpid(pid, &mut st, flags) };
        if r > 0 {
            return Ok(Some(st));
        }
        if r == 0 {
            return Ok(None);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Resets every signal disposition a child must not inherit (Rust ignores SIGPIPE) and empties
/// the signal mask; used right before exec.
pub fn reset_signals_for_exec() {
    // SAFETY: setting default dispositions and an empty mask has no memory-safety impact.
    unsafe {
        for s in [
            libc::SIGPIPE,
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGQUIT,
            libc::SIGHUP,
            libc::SIGCHLD,
            libc::SIGWINCH,
            libc::SIGTTOU,
            libc::SIGTTIN,
            libc::SIGTSTP,
        ] {
            libc::signal(s, libc::SIG_DFL);
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}
