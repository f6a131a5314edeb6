//! `rrun -d`: a monitor process (double fork + setsid) owns the container, keeps its output in
//! container.log and records its exit code; the caller prints the id once it started.
//! Kernel docs: fork(2), setsid(2), pipe2(2).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use rustix::pipe::PipeFlags;

use crate::container;
use crate::error::{Context, Error, Result};
use crate::image::ImageHold;
use crate::state::{Containers, State};
use crate::supervise::{self, Io};
use crate::{finish, sys};

/// The detached container's output (stdout and stderr, in order), in its folder.
pub const LOG_FILE: &str = "container.log";

fn pipe() -> Result<(File, File)> {
    let (r, w) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC).ctx(|| "pipe".into())?;
    Ok((File::from(r), File::from(w)))
}

/// Starts the container under a monitor and returns once it runs (0, id printed) or failed.
pub fn start(containers: &Containers, st: State, hold: ImageHold, rinit: &Path) -> Result<i32> {
    let (rd, wr) = pipe()?;
    let id = st.id.clone();
    let parts = (rd, st, hold, wr);
    let (pid, (mut rd, _st, hold, wr)) = sys::process::fork(parts, |(rd, st, hold, wr)| {
        drop(rd);
        // First child: new session, then fork again so the monitor is no session leader
        // and is adopted by init (or the nearest subreaper) when this one exits.
        let _ = rustix::process::setsid();
        let (_, handed) = sys::process::fork((st, hold, wr), |(st, hold, wr)| {
            monitor(containers, st, hold, rinit, wr)
        });
        // This process ends with _exit now: what it handed on is the monitor's, and is
        // not dropped here (a drop could close or release what the monitor holds).
        std::mem::forget(handed);
        0
    });
    // Without a monitor the hold is released here (dropped); with one, the monitor carries it
    // on: this process waits for its report, and then exits.
    let pid = pid.ctx(|| "fork the monitor".into())?;
    hold.leave_to_child();
    drop(wr);
    let _ = sys::process::waitpid(pid, false);
    let mut msg = String::new();
    let _ = rd.read_to_string(&mut msg);
    match msg.strip_prefix("ok") {
        Some(_) => {
            println!("{id}");
            Ok(0)
        }
        None if msg.is_empty() => Err(Error::Child(
            "the container monitor exited before the container started".into(),
        )),
        None => Err(Error::User(msg.trim_end().to_string())),
    }
}

/// The monitor: stdio to the log files, create, report, supervise, finish.
fn monitor(
    containers: &Containers,
    mut st: State,
    mut hold: ImageHold,
    rinit: &Path,
    mut report: File,
) -> i32 {
    let me = std::process::id() as i32;
    st.owner_pid = me;
    st.owner_start = sys::procfs::proc_start_time(me).unwrap_or(0);
    let dir = containers.dir(&st.id);
    let result = (|| -> Result<container::Created> {
        redirect_stdio_to_null()?;
        hold.bind_to_this_process()?;
        let _old = sys::signal::block_signals(&supervise::HANDLED);
        let owner = (st.config.idmaps.host_uid(0), st.config.idmaps.host_gid(0));
        let c = container::create_with(containers, st, hold, rinit, |d| open_logs(d, owner), None)?;
        Ok(c)
    })();
    let c = match result {
        Ok(c) => c,
        Err(e) => {
            let _ = report.write_all(e.to_string().as_bytes());
            return 125;
        }
    };
    let _ = report.write_all(b"ok");
    drop(report);
    // From here the monitor runs for the container's life and needs only the supervision loop
    // and finish: give back the start-up code's pages (file-backed, reloaded when touched).
    sys::memory::trim_heap();
    let dropped = sys::memory::drop_clean_file_pages();
    tracing::debug!(bytes = dropped, "monitor: clean file pages dropped");
    let Ok(sigfd) = sys::signal::signalfd(&supervise::HANDLED) else {
        return 125;
    };
    let out = OpenOptions::new()
        .append(true)
        .open(dir.join(LOG_FILE))
        .map(OwnedFd::from)
        .ok();
    let io = Io {
        master: c.master.as_ref().map(|m| m.as_fd()),
        stdin: None,
        stdout: out.as_ref().map_or(rustix::stdio::stdout(), |o| o.as_fd()),
        pipes: None,
        log: None,
    };
    let status = supervise::wait(c.pid, c.pidfd.as_fd(), &sigfd, &io).unwrap_or(0);
    finish::finish(containers, c, status)
}

fn redirect_stdio_to_null() -> Result<()> {
    let null = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .ctx(|| "open /dev/null".into())?;
    for n in 0..3 {
        sys::fd::dup2(null.as_raw_fd(), n).ctx(|| format!("redirect fd {n}"))?;
    }
    Ok(())
}

/// Points this process's stdout and stderr at the container's log (the child inherits them):
/// one file in append mode, so the lines keep the order they were written in.
fn open_logs(dir: &Path, owner: (Option<u32>, Option<u32>)) -> Result<()> {
    let f = create_log(dir)?;
    let p = dir.join(LOG_FILE);
    // The container's root may reopen its stdout (/dev/stdout): the logs are its files.
    if let (Some(u), Some(g)) = (owner.0, owner.1) {
        std::os::unix::fs::fchown(&f, Some(u), Some(g)).ctx(|| format!("chown {}", p.display()))?;
    }
    for fd in [1, 2] {
        sys::fd::dup2(f.as_raw_fd(), fd).ctx(|| format!("redirect to {}", p.display()))?;
    }
    Ok(())
}

/// Creates (or opens) the container's log in its folder `dir`, in append mode.
pub fn create_log(dir: &Path) -> Result<File> {
    let p = dir.join(LOG_FILE);
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p)
        .ctx(|| format!("create {}", p.display()))
}
