//! The synchronous client rrun uses: connect to netd's socket, send one request (with the
//! netns descriptor for an attach), wait for its reply. One wait per step, as
//! runtime/src/channel.rs: an unexpected reply is an error naming what was expected.
//! Kernel interfaces: unix(7), connect(2); framing in [`crate::frame`].

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::frame::{self, FrameError};
use crate::types::*;

/// Where netd listens by default.
pub const DEFAULT_SOCKET: &str = "/run/rbox/netd.sock";
/// The environment variable that names netd's socket.
pub const SOCKET_ENV: &str = "RBOX_NETD_SOCKET";
/// How long a client waits for a reply.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// `$RBOX_NETD_SOCKET`, else [`DEFAULT_SOCKET`].
pub fn socket_path() -> PathBuf {
    std::env::var_os(SOCKET_ENV)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("netd is not running (no listener at {path}): start it with `systemctl start rbox-netd` or `netd &` as root (./setup.sh does), set RBOX_NETD_SOCKET to its socket, or run with --net none")]
    NotRunning { path: PathBuf },
    #[error("no permission to use netd's socket {path}: ask root to add you to the socket's group (socket_group in netd's config)")]
    NoPermission { path: PathBuf },
    #[error("netd refused {op}: {}", .reply.message)]
    Refused { op: &'static str, reply: ErrorReply },
    #[error("talking to netd at {path}: {source}")]
    Frame {
        path: PathBuf,
        #[source]
        source: FrameError,
    },
    #[error("talking to netd at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("netd at {path} answered {op} with {got}: {why}")]
    Protocol {
        path: PathBuf,
        op: &'static str,
        got: String,
        why: String,
    },
}

impl ClientError {
    /// The refusal netd sent, if that is what this is.
    pub fn refusal(&self) -> Option<&ErrorReply> {
        match self {
            ClientError::Refused { reply, .. } => Some(reply),
            _ => None,
        }
    }
}

/// A connection to netd.
pub struct Client {
    stream: UnixStream,
    path: PathBuf,
    pending: Option<&'static str>,
}

impl Client {
    /// Connects to the socket at `path`.
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                ClientError::NotRunning { path: path.into() }
            }
            io::ErrorKind::PermissionDenied => ClientError::NoPermission { path: path.into() },
            _ => ClientError::Io {
                path: path.into(),
                source: e,
            },
        })?;
        Ok(Client {
            stream,
            path: path.into(),
            pending: None,
        })
    }

    /// Connects to [`socket_path`].
    pub fn connect_default() -> Result<Client, ClientError> {
        Client::connect(&socket_path())
    }

    /// Sends `req` (with `fd` as SCM_RIGHTS) without waiting; [`Client::recv`] gets the
    /// reply. Lets the caller work while netd does (rrun builds the root meanwhile).
    pub fn send(&mut self, req: &Request, fd: Option<BorrowedFd<'_>>) -> Result<(), ClientError> {
        let frame = RequestFrame {
            version: VERSION,
            request: req.clone(),
        };
        let body = serde_json::to_vec(&frame).map_err(|e| self.io(io::Error::other(e)))?;
        frame::write_frame(self.stream.as_fd(), &body, fd).map_err(|e| self.io(e))?;
        self.pending = Some(req.op());
        Ok(())
    }

    /// Waits for the reply to the request sent last; a refusal is [`ClientError::Refused`].
    pub fn recv(&mut self) -> Result<Reply, ClientError> {
        let op = self.pending.take().unwrap_or("a request");
        let deadline = Instant::now() + REPLY_TIMEOUT;
        let (body, _fds) = frame::read_frame(self.stream.as_fd(), MAX_REPLY, Some(deadline))
            .map_err(|source| ClientError::Frame {
                path: self.path.clone(),
                source,
            })?;
        let frame: ReplyFrame =
            serde_json::from_slice(&body).map_err(|e| ClientError::Protocol {
                path: self.path.clone(),
                op,
                got: "a malformed reply".into(),
                why: e.to_string(),
            })?;
        if frame.version != VERSION {
            return Err(ClientError::Protocol {
                path: self.path.clone(),
                op,
                got: format!("protocol version {}", frame.version),
                why: format!("this client speaks {VERSION}: use rrun and netd of one release"),
            });
        }
        match frame.reply {
            Reply::Error(reply) => Err(ClientError::Refused { op, reply }),
            r => Ok(r),
        }
    }

    /// One request, one reply.
    pub fn call(
        &mut self,
        req: &Request,
        fd: Option<BorrowedFd<'_>>,
    ) -> Result<Reply, ClientError> {
        self.send(req, fd)?;
        self.recv()
    }

    /// Attaches the network namespace `netns` (a descriptor of /proc/PID/ns/net).
    pub fn attach(
        &mut self,
        netns: BorrowedFd<'_>,
        req: AttachRequest,
    ) -> Result<Attachment, ClientError> {
        match self.call(&Request::Attach(req), Some(netns))? {
            Reply::Attached(a) => Ok(a),
            other => Err(self.unexpected("attach", "attached", &other)),
        }
    }

    /// Waits for the reply to an attach sent with [`Client::send`].
    pub fn wait_for_attached(&mut self) -> Result<Attachment, ClientError> {
        match self.recv()? {
            Reply::Attached(a) => Ok(a),
            other => Err(self.unexpected("attach", "attached", &other)),
        }
    }

    /// Releases the container's attachments (all, or on `network`); returns the networks.
    pub fn detach(
        &mut self,
        container_id: &str,
        network: Option<&str>,
    ) -> Result<Vec<String>, ClientError> {
        let req = Request::Detach(DetachRequest {
            container_id: container_id.into(),
            network: network.map(Into::into),
        });
        match self.call(&req, None)? {
            Reply::Detached { networks } => Ok(networks),
            other => Err(self.unexpected("detach", "detached", &other)),
        }
    }

    pub fn network_create(
        &mut self,
        req: NetworkCreateRequest,
    ) -> Result<NetworkInfo, ClientError> {
        match self.call(&Request::NetworkCreate(req), None)? {
            Reply::Network(n) => Ok(n),
            other => Err(self.unexpected("network create", "network", &other)),
        }
    }

    pub fn network_list(&mut self) -> Result<Vec<NetworkInfo>, ClientError> {
        match self.call(&Request::NetworkList {}, None)? {
            Reply::Networks(n) => Ok(n),
            other => Err(self.unexpected("network ls", "networks", &other)),
        }
    }

    pub fn network_inspect(&mut self, name: &str) -> Result<NetworkInfo, ClientError> {
        let req = Request::NetworkInspect { name: name.into() };
        match self.call(&req, None)? {
            Reply::Network(n) => Ok(n),
            other => Err(self.unexpected("network inspect", "network", &other)),
        }
    }

    pub fn network_remove(&mut self, name: &str) -> Result<(), ClientError> {
        let req = Request::NetworkRemove { name: name.into() };
        match self.call(&req, None)? {
            Reply::Removed { .. } => Ok(()),
            other => Err(self.unexpected("network rm", "removed", &other)),
        }
    }

    pub fn status(&mut self) -> Result<StatusInfo, ClientError> {
        match self.call(&Request::Status {}, None)? {
            Reply::Status(s) => Ok(s),
            other => Err(self.unexpected("status", "status", &other)),
        }
    }

    fn io(&self, source: io::Error) -> ClientError {
        if matches!(
            source.kind(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
        ) {
            return ClientError::NotRunning {
                path: self.path.clone(),
            };
        }
        ClientError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn unexpected(&self, op: &'static str, want: &str, got: &Reply) -> ClientError {
        let name = serde_json::to_value(got)
            .ok()
            .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(String::from))
            .unwrap_or_else(|| "something else".into());
        ClientError::Protocol {
            path: self.path.clone(),
            op,
            got: format!("a {name} reply"),
            why: format!("expected {want}"),
        }
    }
}
