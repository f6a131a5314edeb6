//! The socket: bound with the configured group and mode, a thread per connection (bounded),
//! each request frame read within a time limit and a size limit; a hostile client gets an
//! error and is dropped, everyone else is served meanwhile. Kernel interfaces: unix(7)
//! (SO_PEERCRED, SO_SNDTIMEO), bind(2), chmod(2).

use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use netd_proto::frame::{self, FrameError};
use netd_proto::{ErrorKind, Reply, ReplyFrame, Request, RequestFrame, MAX_REQUEST, VERSION};

use crate::auth::Peer;
use crate::core::{lock, Shared};

/// How the socket is offered.
pub struct Listen {
    pub path: PathBuf,
    /// Group allowed to connect (mode 0660); None: root only (0600).
    pub group: Option<u32>,
    pub request_timeout: Duration,
    pub max_connections: usize,
}

/// Binds the socket (replacing a stale one; refusing when a netd answers there).
pub fn bind(l: &Listen) -> Result<UnixListener> {
    if let Some(dir) = l.path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    if l.path.exists() {
        if UnixStream::connect(&l.path).is_ok() {
            bail!(
                "a netd already listens on {}: stop it first, or pass another --socket",
                l.path.display()
            );
        }
        std::fs::remove_file(&l.path)
            .with_context(|| format!("remove the stale socket {}", l.path.display()))?;
    }
    // Nobody may connect before the mode and group are right.
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let listener = UnixListener::bind(&l.path);
    rustix::process::umask(old);
    let listener = listener.with_context(|| format!("bind {}", l.path.display()))?;
    if let Some(gid) = l.group {
        rustix::fs::chown(&l.path, None, Some(rustix::fs::Gid::from_raw(gid)))
            .with_context(|| format!("chown {} to group {gid}", l.path.display()))?;
        std::fs::set_permissions(&l.path, std::fs::Permissions::from_mode(0o660))
            .with_context(|| format!("chmod {}", l.path.display()))?;
    }
    Ok(listener)
}

/// Accepts connections until the process ends.
pub fn serve(listener: UnixListener, core: Shared, l: &Listen) {
    let active = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("accept: {e}");
                if e.raw_os_error() == Some(libc::EMFILE) || e.raw_os_error() == Some(libc::ENFILE)
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
                continue;
            }
        };
        if active.fetch_add(1, Ordering::SeqCst) >= l.max_connections {
            active.fetch_sub(1, Ordering::SeqCst);
            let _ = reply(
                &stream,
                Reply::error(
                    ErrorKind::Limit,
                    "netd has too many connections open: try again",
                ),
            );
            continue;
        }
        let (core, active, timeout) = (core.clone(), active.clone(), l.request_timeout);
        let spawned = std::thread::Builder::new()
            .name("conn".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                connection(stream, &core, timeout);
                active.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start a connection thread: {e}");
        }
    }
}

/// Serves one connection: requests one after the other until the client closes, is too slow
/// or sends something malformed.
fn connection(stream: UnixStream, core: &Shared, timeout: Duration) {
    let peer = match rustix::net::sockopt::socket_peercred(&stream) {
        Ok(c) => Peer {
            uid: c.uid.as_raw(),
            gid: c.gid.as_raw(),
            pid: c.pid.as_raw_nonzero().get(),
        },
        Err(e) => {
            tracing::warn!("SO_PEERCRED: {e}");
            return;
        }
    };
    // A client that does not read its reply cannot hold this thread for long either.
    let _ = stream.set_write_timeout(Some(timeout));
    loop {
        let deadline = Instant::now() + timeout;
        let (body, fds) = match frame::read_frame(stream.as_fd(), MAX_REQUEST, Some(deadline)) {
            Ok(f) => f,
            Err(FrameError::Closed) => return,
            Err(e) => {
                let (kind, msg) = match &e {
                    FrameError::Timeout => (
                        ErrorKind::Timeout,
                        format!("no complete request within {} ms", timeout.as_millis()),
                    ),
                    _ => (ErrorKind::BadRequest, format!("bad request frame: {e}")),
                };
                tracing::info!(uid = peer.uid, pid = peer.pid, "dropping a client: {msg}");
                let _ = reply(&stream, Reply::error(kind, msg));
                return;
            }
        };
        let frame: RequestFrame = match serde_json::from_slice(&body) {
            Ok(f) => f,
            Err(e) => {
                // The version is checked first, so an old client hears about versions.
                let v = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("version").and_then(|x| x.as_u64()));
                let r = match v {
                    Some(v) if v != u64::from(VERSION) => version_error(v),
                    _ => Reply::error(ErrorKind::BadRequest, format!("malformed request: {e}")),
                };
                tracing::info!(
                    uid = peer.uid,
                    pid = peer.pid,
                    "dropping a client: malformed request"
                );
                let _ = reply(&stream, r);
                return;
            }
        };
        if frame.version != VERSION {
            let _ = reply(&stream, version_error(u64::from(frame.version)));
            return;
        }
        let r = match frame.request {
            Request::Detach(d) if fds.is_empty() => {
                match crate::attach::detach(core, &peer, &d.container_id, d.network.as_deref()) {
                    Ok(networks) => Reply::Detached { networks },
                    Err(f) => Reply::error(f.kind, f.message),
                }
            }
            req => lock(core).handle(&peer, req, fds),
        };
        if reply(&stream, r).is_err() {
            return;
        }
    }
}

fn version_error(v: u64) -> Reply {
    Reply::error(
        ErrorKind::Version,
        format!("protocol version {v} is not spoken here (netd speaks {VERSION}): use rrun and netd of one release"),
    )
}

fn reply(stream: &UnixStream, r: Reply) -> io::Result<()> {
    let body = serde_json::to_vec(&ReplyFrame {
        version: VERSION,
        reply: r,
    })
    .map_err(io::Error::other)?;
    frame::write_frame(stream.as_fd(), &body, None)
}

/// Resolves the socket group: a number or a name from /etc/group.
pub fn group_id(g: &str) -> Result<u32> {
    if let Ok(n) = g.parse() {
        return Ok(n);
    }
    let text = std::fs::read_to_string("/etc/group").context("read /etc/group")?;
    text.lines()
        .find_map(|l| {
            let mut f = l.split(':');
            (f.next() == Some(g)).then(|| f.nth(1)?.parse().ok())?
        })
        .with_context(|| format!("socket_group {g:?} is not in /etc/group: create it (groupadd {g}) or change netd's config"))
}

/// Removes the socket file (at SIGTERM).
pub fn unbind(path: &Path) {
    let _ = std::fs::remove_file(path);
}
