//! `rrun exec`: a new process inside a running container: join its cgroup, then every namespace
//! (user first, which grants the rights for the others), fork into its pid namespace, switch to
//! the container's user and exec. Kernel docs: setns(2), pid_namespaces(7), cgroups(7).

use std::cell::Cell;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::process::Gid;
use rustix::thread::ThreadNameSpaceType;

use crate::cgroups::Cgroup;
use crate::cli::ExecArgs;
use crate::error::{one_line, user, Context, Result, Step, StepError};
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
    let stack = sys::spawn::ChildStack::new().ctx(|| "map a stack for the process".into())?;
    // The process takes the container's --ulimit's itself (rlimits.rs).
    crate::rlimits::raise_hard_for(&st.config.ulimits)?;
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
    let name = argv.first().map(|c| c.as_bytes()).unwrap_or_default();
    // Everything the process needs, made here: it shares rrun's memory until its exec and
    // must allocate nothing (sys/spawn.rs).
    let prepared = Prepared {
        uid: u.uid,
        gid: u.gid,
        groups: u.groups.iter().map(|&g| Gid::from_raw(g)).collect(),
        cwd: sys::cstr(&cwd).ctx(|| format!("chdir {cwd} in the container"))?,
        null_stdin: !a.interactive && !a.tty,
        security,
        seccomp: seccomp.as_ref(),
        ulimits: &st.config.ulimits,
        argv: CStrArray::new(&argv),
        envp: CStrArray::new(&envp),
        candidates: candidates(name, &path),
        search: !name.contains(&b'/'),
        panic_for_test: sys::process::panic_for_test(),
    };
    let report = Cell::new(None);
    let status = fork_and_supervise(stack, pty, a.tty && a.interactive, |slave| {
        child(&prepared, slave, &report)
    })?;
    if let Some(stopped) = report.get() {
        eprintln!("rrun: {}", one_line(&stopped.message(name, &cwd, &u)));
    }
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

/// What the exec'd process is given, all of it made before the clone (see [`child`]).
struct Prepared<'a> {
    uid: u32,
    gid: u32,
    groups: Vec<Gid>,
    cwd: CString,
    null_stdin: bool,
    /// The container's capabilities and no_new_privs.
    security: &'a Security,
    /// Its seccomp filter, compiled before the clone.
    seccomp: Option<&'a security::Filter>,
    /// Its `--ulimit`s, which the process takes before it becomes the container's user.
    ulimits: &'a [crate::rlimits::Ulimit],
    argv: CStrArray<'a>,
    envp: CStrArray<'a>,
    /// The paths to try in turn ([`candidates`]).
    candidates: Vec<CString>,
    /// True when the name has no '/': a PATH search, going on past some errors.
    search: bool,
    panic_for_test: bool,
}

/// Where the process stopped when it could not exec, with the errno: written by the process
/// into rrun's memory, which it shares until its exec, and reported by rrun.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stopped {
    Step(&'static str, i32),
    Chdir(i32),
    User(i32),
    Exec(i32),
}

impl Stopped {
    /// The one line rrun prints for it (after `rrun: `).
    fn message(self, name: &[u8], cwd: &str, u: &users::User) -> String {
        let err = |e: i32| std::io::Error::from_raw_os_error(e);
        let shown = String::from_utf8_lossy(name);
        match self {
            Stopped::Step(what, e) => format!("{what}: {}", err(e)),
            Stopped::Chdir(e) => format!("chdir {cwd} in the container: {}", err(e)),
            Stopped::User(e) => format!("switch to user {}: {}", child::user_arg(u), err(e)),
            Stopped::Exec(e) if e == libc::ENOENT && !name.contains(&b'/') => {
                format!("{shown}: command not found in the container")
            }
            Stopped::Exec(e) => format!("exec {shown}: {}", err(e)),
        }
    }
}

/// The process that becomes the command: a session of its own (on the pty with -t, else
/// without a controlling terminal), the container's user, only descriptors 0-2, then the PATH
/// search. It shares rrun's memory until its exec, so it only makes system calls on what
/// `p` holds, and allocates nothing (a SIGKILL from inside the container could otherwise
/// stop it half-way through malloc and leave rrun's heap inconsistent): where it stops, it
/// writes a code into `report` and returns the exit code (125 before the exec, 126 or 127).
fn child(p: &Prepared<'_>, slave: Option<&OwnedFd>, report: &Cell<Option<Stopped>>) -> i32 {
    if p.panic_for_test {
        panic!("test panic in a forked child (RRUN_TEST_PANIC_IN_FORKED_CHILD)");
    }
    let raw = |e: &std::io::Error| e.raw_os_error().unwrap_or(libc::EIO);
    let step = |e: StepError| Stopped::Step(e.what, raw(&e.source));
    let setup = || -> std::result::Result<(), Stopped> {
        match slave {
            Some(s) => tty::become_session_leader_on(s).map_err(step)?,
            None => {
                child::leave_session().map_err(step)?;
                if p.null_stdin {
                    let n = rustix::fs::open(
                        c"/dev/null",
                        OFlags::RDONLY | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .step("open /dev/null")
                    .map_err(step)?;
                    sys::fd::dup2(n.as_raw_fd(), 0)
                        .step("stdin from /dev/null")
                        .map_err(step)?;
                }
            }
        }
        rustix::process::umask(Mode::from_raw_mode(child::CONTAINER_UMASK));
        rustix::process::chdir(p.cwd.as_c_str()).map_err(|e| Stopped::Chdir(e.raw_os_error()))?;
        // Before the switch to the user, which the kernel checks against nproc (setuid(2)).
        crate::rlimits::take(p.ulimits).map_err(step)?;
        security::apply_before_user(p.security, p.seccomp).map_err(step)?;
        sys::ids::set_ids_of(p.uid, p.gid, &p.groups).map_err(|e| Stopped::User(raw(&e)))?;
        security::apply_after_user(p.security).map_err(step)?;
        // Nothing of rrun's caller but 0-2 may reach the container (close_range(2)).
        sys::fd::cloexec_from(3)
            .step("mark inherited descriptors close-on-exec")
            .map_err(step)?;
        sys::signal::reset_signals_for_exec();
        security::apply_last(p.security, p.seccomp).map_err(step)?;
        Ok(())
    };
    if let Err(stopped) = setup() {
        report.set(Some(stopped));
        return 125;
    }
    let err = exec_first(&p.candidates, p.search, |c| {
        sys::process::execve(c, &p.argv, &p.envp)
    });
    report.set(Some(Stopped::Exec(raw(&err))));
    if matches!(
        Errno::from_io_error(&err),
        Some(Errno::NOENT | Errno::NOTDIR)
    ) {
        127
    } else {
        126
    }
}

/// The paths execvp(3)'s search tries for `name`, as rinit does it: the name itself when it
/// holds a '/', else each PATH entry in turn ("" is ".") joined with it. Entries that make no
/// C string are left out.
fn candidates(name: &[u8], path: &[u8]) -> Vec<CString> {
    if name.is_empty() {
        return Vec::new();
    }
    if name.contains(&b'/') {
        return CString::new(name).into_iter().collect();
    }
    path.split(|&c| c == b':')
        .filter_map(|dir| {
            let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
            CString::new([dir, b"/", name].concat()).ok()
        })
        .collect()
}

/// Execs the first of `candidates` that can be: with `search` (a PATH search), going on past
/// entries that do not exist or are not executable (EACCES), EACCES winning over not-found at
/// the end, any other error stopping it; else the one candidate's error as it is. Returns only
/// on failure. Allocates nothing (see [`child`]).
fn exec_first(
    candidates: &[CString],
    search: bool,
    mut exec: impl FnMut(&std::ffi::CStr) -> std::io::Error,
) -> std::io::Error {
    let mut saw_eacces = false;
    for c in candidates {
        let err = exec(c);
        if !search {
            return err;
        }
        match Errno::from_io_error(&err) {
            Some(Errno::ACCESS) => saw_eacces = true,
            Some(
                Errno::NOENT | Errno::NOTDIR | Errno::STALE | Errno::NAMETOOLONG | Errno::LOOP,
            ) => {}
            _ => return err,
        }
    }
    std::io::Error::from(if saw_eacces {
        Errno::ACCESS
    } else {
        Errno::NOENT
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_search_goes_past_entries_that_are_not_executable() {
        let search =
            |name: &[u8], path: &[u8], exec: &mut dyn FnMut(&std::ffi::CStr) -> std::io::Error| {
                exec_first(&candidates(name, path), !name.contains(&b'/'), exec)
            };
        let mut tried = Vec::new();
        let err = search(b"ls", b"/a:/b::/c", &mut |p| {
            tried.push(p.to_string_lossy().into_owned());
            std::io::Error::from(if p.to_bytes() == b"/a/ls" {
                Errno::ACCESS
            } else {
                Errno::NOENT
            })
        });
        assert_eq!(tried, ["/a/ls", "/b/ls", "./ls", "/c/ls"]);
        assert_eq!(Errno::from_io_error(&err), Some(Errno::ACCESS));
        let err = search(b"ls", b"/a:/b", &mut |p| {
            std::io::Error::from(if p.to_bytes() == b"/b/ls" {
                Errno::NOEXEC
            } else {
                Errno::NOENT
            })
        });
        assert_eq!(Errno::from_io_error(&err), Some(Errno::NOEXEC));
        let mut tried = Vec::new();
        let err = search(b"./x", b"/a", &mut |p| {
            tried.push(p.to_string_lossy().into_owned());
            std::io::Error::from(Errno::NOTDIR)
        });
        assert_eq!(tried, ["./x"]);
        assert_eq!(Errno::from_io_error(&err), Some(Errno::NOTDIR));
        let err = search(b"", b"/a", &mut |_| unreachable!());
        assert_eq!(Errno::from_io_error(&err), Some(Errno::NOENT));
    }

    #[test]
    fn a_stopped_process_is_reported_in_one_line() {
        let u = users::User {
            uid: 1000,
            gid: 1000,
            groups: vec![],
            home: "/".into(),
        };
        let m = |s: Stopped, name: &[u8]| s.message(name, "/w", &u);
        assert_eq!(
            m(Stopped::Exec(libc::ENOENT), b"nosuch"),
            "nosuch: command not found in the container"
        );
        assert_eq!(
            m(Stopped::Exec(libc::EACCES), b"./x"),
            "exec ./x: Permission denied (os error 13)"
        );
        assert_eq!(
            m(Stopped::Chdir(libc::ENOENT), b"x"),
            "chdir /w in the container: No such file or directory (os error 2)"
        );
        assert_eq!(
            m(Stopped::Step("set no_new_privs", libc::EPERM), b"x"),
            "set no_new_privs: Operation not permitted (os error 1)"
        );
        assert!(m(Stopped::User(libc::EPERM), b"x").starts_with("switch to user 1000:1000: "));
    }
}
