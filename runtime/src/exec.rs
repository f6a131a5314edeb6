//! `rrun exec`: a new process inside a running container: join its cgroup, then every namespace
//! (user first, which grants the rights for the others), fork into its pid namespace, switch to
//! the container's user and exec. Kernel docs: setns(2), pid_namespaces(7), cgroups(7).

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use rustix::io::Errno;
use rustix::thread::ThreadNameSpaceType;

use crate::cgroups::Cgroup;
use crate::cli::ExecArgs;
use crate::error::{user, Context, Result};
use crate::security::Security;
use crate::spec::{self, OsArg};
use crate::state::{Containers, State, Status};
use crate::supervise::{self, Io};
use crate::sys::process::CStrArray;
use crate::{child, inroot, security, sys, tty, users};

const NAMESPACES: [(&str, ThreadNameSpaceType); 7] = [
    ("user", ThreadNameSpaceType::USER),
    ("mnt", ThreadNameSpaceType::MOUNT),
    ("uts", ThreadNameSpaceType::HOST_NAME_AND_NIS_DOMAIN_NAME),
    ("ipc", ThreadNameSpaceType::INTER_PROCESS_COMMUNICATION),
    ("net", ThreadNameSpaceType::NETWORK),
    ("cgroup", ThreadNameSpaceType::CONTROL_GROUP),
    ("pid", ThreadNameSpaceType::PROCESS_ID),
];

/// Runs `rrun exec`; returns the exit code.
pub fn exec(root: &Path, a: &ExecArgs) -> Result<i32> {
    tty::check_interactive(a.interactive, a.tty)?;
    let containers = Containers::open(root)?;
    let st = containers.find(&a.name)?;
    // The pidfd first, then the check that its pid is still the container's init: the
    // descriptor then names that process, whatever happens to the pid afterwards.
    let pidfd = (st.pid > 0)
        .then(|| sys::process::pidfd_open(st.pid).ok())
        .flatten();
    let pidfd = match pidfd {
        Some(fd) if st.status() == Status::Running => fd,
        _ => {
            return Err(user(format!(
                "container {} is not running: start a new one with rrun",
                st.name
            )))
        }
    };
    if let Some(w) = &a.workdir {
        spec::check_container_path(w)?;
    }
    let mut env = spec::merge_cli_env(st.config.process.env.clone(), &a.env)?;
    let cwd = a
        .workdir
        .clone()
        .unwrap_or_else(|| st.config.process.cwd.clone());
    let user_spec = a
        .user
        .clone()
        .unwrap_or_else(|| st.config.process.user.clone());
    // The process's stack is mapped before rrun takes the container's limits: under an
    // address-space or data limit smaller than rrun itself, mapping it afterwards would fail.
    let stack = sys::spawn::ChildStack::new().ctx(|| "map a stack for the process".into())?;
    crate::rlimits::apply(None, &st.config.ulimits)?;
    // The container's capabilities and no_new_privs, as its own processes (security.rs). The
    // filter is loaded or compiled here, on the host: the cache is the store's, and after
    // enter() that path would name a file the container writes.
    let security = &st.config.security;
    let seccomp = security::filter(security, Some(root))?;
    enter(&st, &pidfd)?;
    // The same user, groups and checks as the container's main process (users.rs), the
    // files read inside the container's root (inroot.rs).
    let u = users::in_container(&inroot::Root::open()?, &user_spec, &st.config.idmaps)?;
    if !spec::has_env(&env, "HOME") {
        env.push(format!("HOME={}", u.home).into());
    }
    if a.tty && !spec::has_env(&env, "TERM") {
        env.push("TERM=xterm".into());
    }
    let pty = if a.tty {
        Some(crate::rootfs::open_pty()?)
    } else {
        None
    };
    let command: Vec<OsArg> = a.command.iter().cloned().map(OsArg).collect();
    let argv = child::to_cstrings(&command)?;
    let path = env
        .iter()
        .find_map(|e| e.as_bytes().strip_prefix(b"PATH="))
        .unwrap_or(&spec::DEFAULT_PATH.as_bytes()[5..])
        .to_vec();
    let envp = child::to_cstrings(&env)?;
    let null_stdin = !a.interactive && !a.tty;
    let status = fork_and_supervise(stack, pty, a.tty && a.interactive, |slave| {
        let how = ChildSetup {
            user: &u,
            cwd: &cwd,
            slave,
            null_stdin,
            security,
            seccomp: seccomp.as_ref(),
        };
        child(&how, &argv, &envp, &path)
    })?;
    Ok(sys::process::exit_code_of(status))
}

/// Starts the process that runs `in_child` on `stack` (inside the container's pid namespace,
/// which rrun has joined) and relays its terminal and signals until it ends; returns its wait
/// status.
fn fork_and_supervise(
    mut stack: sys::spawn::ChildStack,
    pty: Option<(OwnedFd, OwnedFd)>,
    relay_stdin: bool,
    in_child: impl FnOnce(Option<&OwnedFd>) -> i32,
) -> Result<i32> {
    let _old = sys::signal::block_signals(&supervise::HANDLED);
    let sigfd = sys::signal::signalfd(&supervise::HANDLED).ctx(|| "signalfd".into())?;
    // The child only sets up and execs, ending in _exit otherwise; it borrows what it needs,
    // and shares rrun's memory until its exec (no copy of the address space to make).
    let (pid, child_fd) =
        sys::spawn::spawn_sharing_memory(&mut stack, || in_child(pty.as_ref().map(|p| &p.1)))
            .ctx(|| "start a process in the container".into())?;
    drop(stack);
    // Our copy of the pty's slave goes: the master then ends when the process's copies do.
    let master = pty.map(|(m, _slave)| m);
    let _raw = relay_stdin.then(|| tty::RawMode::enter(rustix::stdio::stdin()));
    let io = Io {
        master: master.as_ref().map(|m| m.as_fd()),
        stdin: relay_stdin.then(rustix::stdio::stdin),
        stdout: rustix::stdio::stdout(),
        pipes: None,
        log: None,
    };
    supervise::wait(pid, child_fd.as_fd(), &sigfd, &io)
}

/// Joins the container: its cgroup, then all its namespaces at once through `pidfd`, a pidfd
/// of its init opened before its liveness was checked (setns(2) with a pidfd, Linux >= 5.8:
/// no pid-reuse window between checking the process and opening its namespaces), then
/// becomes root of its user namespace.
fn enter(st: &State, pidfd: &OwnedFd) -> Result<()> {
    // Namespaces the container shares with rrun (--net host) are left out: joining one's own
    // is a no-op at best. Which those are is read by pid, comparing the links' text
    // ("net:[4026531840]", readlinkat(2) beneath /proc/PID/ns: no nsfs lookup as stat(2)
    // would make); the join itself goes by pidfd.
    let ns_dir = |p: &str| {
        rustix::fs::open(
            p,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ok()
    };
    let (theirs_dir, mine_dir) = (
        ns_dir(&format!("/proc/{}/ns", st.pid)),
        ns_dir("/proc/self/ns"),
    );
    let link = |dir: &Option<OwnedFd>, name: &str| {
        dir.as_ref()
            .and_then(|d| rustix::fs::readlinkat(d, name, Vec::new()).ok())
    };
    let mut flags = ThreadNameSpaceType::empty();
    for (name, flag) in NAMESPACES {
        if link(&theirs_dir, name) != link(&mine_dir, name) {
            flags |= flag;
        }
    }
    if !st.cgroup_paths.is_empty() {
        Cgroup::join_recorded(&st.cgroup_paths, std::process::id() as i32)?;
    }
    // ESRCH: the init is exiting (it has left its namespaces and waits for the rest of its
    // pid namespace to be reaped: the container is stopping).
    match rustix::thread::move_into_thread_name_spaces(pidfd.as_fd(), flags) {
        Err(Errno::SRCH) => {
            return Err(user(format!(
                "container {} is not running (it is stopping): start a new one with rrun",
                st.name
            )))
        }
        r => r.ctx(|| format!("join the namespaces of container {}", st.name))?,
    }
    if flags.contains(ThreadNameSpaceType::USER) {
        sys::ids::set_ids(0, 0, &[])
            .ctx(|| "become root in the container's user namespace".into())?;
    }
    Ok(())
}

/// What the exec child does before exec.
struct ChildSetup<'a> {
    user: &'a users::User,
    cwd: &'a str,
    slave: Option<&'a OwnedFd>,
    null_stdin: bool,
    /// The container's capabilities and no_new_privs.
    security: &'a Security,
    /// Its seccomp filter, compiled before the fork.
    seccomp: Option<&'a security::Filter>,
}

/// The forked process that becomes the command: a session of its own (on the pty with -t,
/// else without a controlling terminal), the container's user, only descriptors 0-2, then the
/// PATH search. Returns the exit code when it cannot exec.
fn child(how: &ChildSetup<'_>, argv: &[CString], envp: &[CString], path: &[u8]) -> i32 {
    let u = how.user;
    let r: Result<()> = (|| {
        if let Some(s) = how.slave {
            tty::become_session_leader_on(s)?;
        } else {
            child::leave_session()?;
            if how.null_stdin {
                let n = File::open("/dev/null").ctx(|| "open /dev/null".into())?;
                sys::fd::dup2(n.as_raw_fd(), 0).ctx(|| "stdin from /dev/null".into())?;
            }
        }
        std::env::set_current_dir(how.cwd).ctx(|| format!("chdir {} in the container", how.cwd))?;
        security::apply_before_user(how.security, how.seccomp)?;
        sys::ids::set_ids(u.uid, u.gid, &u.groups)
            .ctx(|| format!("switch to user {}", child::user_arg(u)))?;
        security::apply_after_user(how.security)?;
        // Nothing of rrun's caller but 0-2 may reach the container (close_range(2)).
        sys::fd::cloexec_from(3).ctx(|| "mark inherited descriptors close-on-exec".into())?;
        Ok(())
    })();
    if let Err(e) = r {
        eprintln!("rrun: {e}");
        return 125;
    }
    sys::signal::reset_signals_for_exec();
    if let Err(e) = security::apply_last(how.security, how.seccomp) {
        eprintln!("rrun: {e}");
        return 125;
    }
    let (a, e) = (CStrArray::new(argv), CStrArray::new(envp));
    let name = argv[0].as_bytes();
    let err = search_and_exec(name, path, |p| sys::process::execve(p, &a, &e));
    let shown = String::from_utf8_lossy(name);
    let errno = Errno::from_io_error(&err);
    if errno == Some(Errno::NOENT) && !name.contains(&b'/') {
        eprintln!("rrun: {shown}: command not found in the container");
    } else {
        eprintln!("rrun: exec {shown}: {err}");
    }
    if matches!(errno, Some(Errno::NOENT | Errno::NOTDIR)) {
        127
    } else {
        126
    }
}

/// execvp(3)'s search, as rinit does it: a name with '/' is executed as is, else each PATH
/// entry in turn ("" is "."), as the container's user, going on past entries that do not
/// exist or are not executable (EACCES); EACCES wins over not-found at the end, any other
/// error stops the search. Returns only on failure.
fn search_and_exec(
    name: &[u8],
    path: &[u8],
    mut exec: impl FnMut(&std::ffi::CStr) -> std::io::Error,
) -> std::io::Error {
    let enoent = || std::io::Error::from(Errno::NOENT);
    if name.is_empty() {
        return enoent();
    }
    if name.contains(&b'/') {
        return match CString::new(name) {
            Ok(c) => exec(&c),
            Err(_) => enoent(),
        };
    }
    let mut saw_eacces = false;
    for dir in path.split(|&c| c == b':') {
        let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
        let Ok(candidate) = CString::new([dir, b"/", name].concat()) else {
            continue;
        };
        let err = exec(&candidate);
        match Errno::from_io_error(&err) {
            Some(Errno::ACCESS) => saw_eacces = true,
            Some(
                Errno::NOENT | Errno::NOTDIR | Errno::STALE | Errno::NAMETOOLONG | Errno::LOOP,
            ) => {}
            _ => return err,
        }
    }
    if saw_eacces {
        std::io::Error::from(Errno::ACCESS)
    } else {
        enoent()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_search_goes_past_entries_that_are_not_executable() {
        let mut tried = Vec::new();
        let err = search_and_exec(b"ls", b"/a:/b::/c", |p| {
            tried.push(p.to_string_lossy().into_owned());
            std::io::Error::from(if p.to_bytes() == b"/a/ls" {
                Errno::ACCESS
            } else {
                Errno::NOENT
            })
        });
        assert_eq!(tried, ["/a/ls", "/b/ls", "./ls", "/c/ls"]);
        assert_eq!(Errno::from_io_error(&err), Some(Errno::ACCESS));
        let err = search_and_exec(b"ls", b"/a:/b", |p| {
            std::io::Error::from(if p.to_bytes() == b"/b/ls" {
                Errno::NOEXEC
            } else {
                Errno::NOENT
            })
        });
        assert_eq!(Errno::from_io_error(&err), Some(Errno::NOEXEC));
        let mut tried = Vec::new();
        search_and_exec(b"./x", b"/a", |p| {
            tried.push(p.to_string_lossy().into_owned());
            std::io::Error::from(Errno::NOENT)
        });
        assert_eq!(tried, ["./x"]);
    }
}
