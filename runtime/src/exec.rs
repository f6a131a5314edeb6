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
use crate::state::{Containers, Status};
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
    let containers = Containers::open(root)?;
    let st = containers.find(&a.name)?;
    if st.status() != Status::Running {
        return Err(user(format!("container {} is not running: start a new one with rrun", st.name)));
    }
    if let Some(w) = &a.workdir {
        spec::check_container_path(w)?;
    }
    let cfg = &st.config;
    let mut env = cfg.process.env.clone();
    for e in &a.env {
        match e.split_once('=') {
            Some((k, _)) if !k.is_empty() => {
                env.retain(|x| x.split('=').next() != Some(k));
                env.push(e.clone());
            }
            _ => return Err(user(format!("bad -e {e:?}: use KEY=VALUE"))),
        }
    }
    let cwd = a.workdir.clone().unwrap_or_else(|| cfg.process.cwd.clone());
    let user_spec = a.user.clone().unwrap_or_else(|| cfg.process.user.clone());

    // Open every namespace first (by the pid whose start time we checked), then join.
    let pidfd = sys::pidfd_open(st.pid).ctx(|| format!("pidfd_open {}", st.pid))?;
    if !crate::state::alive(st.pid, st.pid_start) {
        return Err(user(format!("container {} is not running", st.name)));
    }
    let mut ns_fds: Vec<(OwnedFd, i32, &str)> = Vec::new();
    for (name, flag) in NAMESPACES {
        let theirs = format!("/proc/{}/ns/{name}", st.pid);
        let f = File::open(&theirs).ctx(|| format!("open {theirs}"))?;
        let mine = std::fs::metadata(format!("/proc/self/ns/{name}")).map(|m| m.ino()).unwrap_or(0);
        if f.metadata().map(|m| m.ino()).unwrap_or(1) != mine {
            ns_fds.push((OwnedFd::from(f), flag, name));
        }
    }
    if !st.cgroup_paths.is_empty() {
        Cgroup::from_paths(&st.cgroup_paths)?.add_pid(std::process::id() as i32)?;
    }
    for (fd, flag, name) in &ns_fds {
        sys::setns(fd.as_fd(), *flag).ctx(|| format!("join the container's {name} namespace"))?;
        if *flag == libc::CLONE_NEWUSER {
            sys::set_ids(0, 0, &[]).ctx(|| "become root in the container's user namespace".into())?;
        }
    }
    drop(ns_fds);
    let passwd = std::fs::read_to_string("/etc/passwd").ok();
    let group = std::fs::read_to_string("/etc/group").ok();
    let mut u = users::resolve(&user_spec, passwd.as_deref(), group.as_deref())?;
    if cfg.idmaps.deny_setgroups {
        // setgroups is denied in a rootless user namespace: no supplementary groups there
        u.groups.clear();
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", u.home));
    }
    if a.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let prog = find_program(&a.command[0], &env);

    let pty = if a.tty {
        let m = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
            .open("/dev/pts/ptmx")
            .ctx(|| "open the container's /dev/pts/ptmx".into())?;
        let m = OwnedFd::from(m);
        let s = tty::open_peer(m.as_fd())?;
        Some((m, s))
    } else {
        None
    };
    let argv = cstrings(&a.command)?;
    let envp = cstrings(&env)?;
    let _old = sys::block_signals(&supervise::HANDLED);
    let sigfd = sys::signalfd(&supervise::HANDLED).ctx(|| "signalfd".into())?;
    // SAFETY: single-threaded; the child only sets up and execs (or _exits).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "fork into the container".into());
    }
    if pid == 0 {
        let code = child(&u, &cwd, pty.as_ref().map(|p| &p.1), !a.interactive && !a.tty, prog.as_deref(), &argv, &envp);
        // SAFETY: leave the forked child without running the parent's exit handlers.
        unsafe { libc::_exit(code) }
    }
    drop(pidfd);
    let child_fd = sys::pidfd_open(pid).ctx(|| "pidfd_open the exec'd process".into())?;
    let master = pty.map(|(m, _s)| m);
    let _raw = if a.tty && a.interactive { Some(tty::RawMode::enter(0)) } else { None };
    let io = Io { master: master.as_ref().map(|m| m.as_fd()), stdin: (a.tty && a.interactive).then_some(0), stdout: 1 };
    let status = supervise::wait(pid, child_fd.as_fd(), &sigfd, &io)?;
    Ok(sys::exit_code_of(status))
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
