//! `rrun exec`: a new process inside a running container: join its cgroup, then every namespace
//! (user first, which grants the rights for the others), fork into its pid namespace, switch to
//! the container's user and exec. Kernel docs: setns(2), pid_namespaces(7), cgroups(7).

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use crate::cgroups::Cgroup;
use crate::cli::ExecArgs;
use crate::error::{user, Context, Error, Result};
use crate::spec;
use crate::state::{Containers, State, Status};
use crate::supervise::{self, Io};
use crate::{sys, tty, users};

const NAMESPACES: [(&str, i32); 7] = [
    ("user", libc::CLONE_NEWUSER),
    ("mnt", libc::CLONE_NEWNS),
    ("uts", libc::CLONE_NEWUTS),
    ("ipc", libc::CLONE_NEWIPC),
    ("net", libc::CLONE_NEWNET),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("pid", libc::CLONE_NEWPID),
];

/// Runs `rrun exec`; returns the exit code.
pub fn exec(root: &Path, a: &ExecArgs) -> Result<i32> {
    tty::check_interactive(a.interactive, a.tty)?;
    let containers = Containers::open(root)?;
    let st = containers.find(&a.name)?;
    if st.status() != Status::Running {
        return Err(user(format!("container {} is not running: start a new one with rrun", st.name)));
    }
    if let Some(w) = &a.workdir {
        spec::check_container_path(w)?;
    }
    let mut env = merge_env(&st.config.process.env, &a.env)?;
    let cwd = a.workdir.clone().unwrap_or_else(|| st.config.process.cwd.clone());
    let user_spec = a.user.clone().unwrap_or_else(|| st.config.process.user.clone());
    enter(&st)?;
    let u = resolve_user(&user_spec, st.config.idmaps.deny_setgroups)?;
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", u.home));
    }
    if a.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let prog = find_program(&a.command[0], &env);
    let pty = if a.tty { Some(open_pty()?) } else { None };
    let argv = cstrings(&a.command)?;
    let envp = cstrings(&env)?;
    let _old = sys::block_signals(&supervise::HANDLED);
    let sigfd = sys::signalfd(&supervise::HANDLED).ctx(|| "signalfd".into())?;
    // SAFETY: single-threaded; the child only sets up and execs, ending in _exit otherwise
    // (sys::forked_child), never returning into frames it shares with this process.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "fork into the container".into());
    }
    if pid == 0 {
        let slave = pty.as_ref().map(|p| &p.1);
        sys::forked_child(|| child(&u, &cwd, slave, !a.interactive && !a.tty, prog.as_deref(), &argv, &envp));
    }
    let child_fd = sys::pidfd_open(pid).ctx(|| "pidfd_open the exec'd process".into())?;
    let master = pty.map(|(m, _s)| m);
    let relay_stdin = a.tty && a.interactive;
    let _raw = relay_stdin.then(|| tty::RawMode::enter(0));
    let io = Io { master: master.as_ref().map(|m| m.as_fd()), stdin: relay_stdin.then_some(0), stdout: 1 };
    let status = supervise::wait(pid, child_fd.as_fd(), &sigfd, &io)?;
    Ok(sys::exit_code_of(status))
}

/// The container's environment with each `-e K=V` replacing K.
fn merge_env(base: &[String], extra: &[String]) -> Result<Vec<String>> {
    let mut env = base.to_vec();
    for e in extra {
        match e.split_once('=') {
            Some((k, _)) if !k.is_empty() => {
                env.retain(|x| x.split('=').next() != Some(k));
                env.push(e.clone());
            }
            _ => return Err(user(format!("bad -e {e:?}: use KEY=VALUE"))),
        }
    }
    Ok(env)
}

/// Joins the container: its cgroup, then all its namespaces at once through a pidfd of its
/// init (setns(2) with a pidfd, Linux >= 5.8: no pid-reuse window between checking the
/// process and opening its namespaces), then becomes root of its user namespace.
fn enter(st: &State) -> Result<()> {
    let pidfd = sys::pidfd_open(st.pid).ctx(|| format!("pidfd_open {}", st.pid))?;
    if !crate::state::init_alive(st.pid, st.pid_start) {
        return Err(user(format!("container {} is not running", st.name)));
    }
    // Namespaces the container shares with rrun (--net host) are left out: joining one's own
    // is a no-op at best. Which those are is read by pid; the join itself goes by pidfd.
    let mut flags = 0;
    for (name, flag) in NAMESPACES {
        let theirs = std::fs::metadata(format!("/proc/{}/ns/{name}", st.pid)).map(|m| m.ino());
        let mine = std::fs::metadata(format!("/proc/self/ns/{name}")).map(|m| m.ino());
        if theirs.ok() != mine.ok() {
            flags |= flag;
        }
    }
    if !st.cgroup_paths.is_empty() {
        Cgroup::from_paths(&st.cgroup_paths)?.add_pid(std::process::id() as i32)?;
    }
    sys::setns(pidfd.as_fd(), flags).ctx(|| format!("join the namespaces of container {}", st.name))?;
    if flags & libc::CLONE_NEWUSER != 0 {
        sys::set_ids(0, 0, &[]).ctx(|| "become root in the container's user namespace".into())?;
    }
    Ok(())
}

/// The user to run as, resolved against the container's /etc/passwd and /etc/group.
fn resolve_user(spec: &str, deny_setgroups: bool) -> Result<users::User> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok();
    let group = std::fs::read_to_string("/etc/group").ok();
    let mut u = users::resolve(spec, passwd.as_deref(), group.as_deref())?;
    if deny_setgroups {
        // setgroups is denied in a rootless user namespace: no supplementary groups there
        u.groups.clear();
    }
    Ok(u)
}

/// A pty pair of the container's own devpts (reached through its mount namespace).
fn open_pty() -> Result<(OwnedFd, OwnedFd)> {
    let m = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open("/dev/pts/ptmx")
        .ctx(|| "open the container's /dev/pts/ptmx".into())?;
    let m = OwnedFd::from(m);
    let s = tty::open_peer(m.as_fd())?;
    Ok((m, s))
}

fn child(u: &users::User, cwd: &str, slave: Option<&OwnedFd>, null_stdin: bool, prog: Option<&Path>, argv: &[CString], envp: &[CString]) -> i32 {
    let r: Result<()> = (|| {
        if let Some(s) = slave {
            tty::become_session_leader_on(s)?;
        } else if null_stdin {
            let n = File::open("/dev/null").ctx(|| "open /dev/null".into())?;
            sys::dup2(n.as_raw_fd(), 0).ctx(|| "stdin from /dev/null".into())?;
        }
        std::env::set_current_dir(cwd).ctx(|| format!("chdir {cwd} in the container"))?;
        sys::set_ids(u.uid, u.gid, &u.groups).ctx(|| format!("switch to user {}:{}", u.uid, u.gid))?;
        Ok(())
    })();
    if let Err(e) = r {
        eprintln!("rrun: {e}");
        return 125;
    }
    let Some(prog) = prog else {
        eprintln!("rrun: {}: command not found in the container", argv[0].to_string_lossy());
        return 127;
    };
    let Ok(p) = sys::cstr(prog) else { return 127 };
    sys::reset_signals_for_exec();
    let mut a: Vec<*const libc::c_char> = argv.iter().map(|c| c.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = envp.iter().map(|c| c.as_ptr()).collect();
    e.push(std::ptr::null());
    // SAFETY: NULL-terminated arrays of valid C strings outliving the call.
    unsafe { libc::execve(p.as_ptr(), a.as_ptr(), e.as_ptr()) };
    let err = std::io::Error::last_os_error();
    eprintln!("rrun: exec {}: {err}", prog.display());
    if err.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 }
}

/// The program to exec: a path as given, else the first match in the container's PATH.
fn find_program(cmd: &str, env: &[String]) -> Option<std::path::PathBuf> {
    if cmd.contains('/') {
        return Some(cmd.into());
    }
    let path = env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':').filter(|d| !d.is_empty()).map(|d| Path::new(d).join(cmd)).find(|p| p.is_file())
}

fn cstrings(v: &[String]) -> Result<Vec<CString>> {
    v.iter().map(|s| CString::new(s.as_bytes()).map_err(|_| Error::User(format!("{s:?} contains a NUL byte")))).collect()
}
