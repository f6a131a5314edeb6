//! The rrun ⇄ container-child protocol: typed messages over a SOCK_SEQPACKET socketpair, with
//! file descriptors passed as SCM_RIGHTS. Kernel interfaces: socketpair(2), sendmsg(2), recvmsg(2), unix(7).

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

use crate::error::{Context, Error, Result};

/// One step of the creation handshake.
#[derive(Debug)]
pub enum Msg {
    /// parent → child: id maps written, cgroup joined; here are the prepared mounts
    /// (overlay root first, then one per volume in order).
    Setup(Vec<OwnedFd>),
    /// child → parent: everything is in place, exec of rinit follows; carries the pty master
    /// when a terminal was asked for.
    Ready(Option<OwnedFd>),
    /// child → parent: setup failed, with the reason.
    Failed(String),
    /// parent → child, before Setup when netd attached the container: its /etc/hosts and
    /// /etc/resolv.conf (see net/etc.rs).
    Net(NetEtc),
    /// parent → child, after Ready when the container has `--ulimit`s: they are set (see
    /// rlimits.rs), rinit may be exec'd.
    Start,
}

/// The /etc files of a container on a network of netd's.
#[derive(Debug, Clone, Default)]
pub struct NetEtc {
    pub hosts: String,
    pub resolv_conf: Vec<u8>,
}

const TAG_SETUP: u8 = 1;
const TAG_READY: u8 = 2;
const TAG_FAILED: u8 = 3;
const TAG_NET: u8 = 4;
const TAG_START: u8 = 5;
const MAX_FDS: usize = 250;
/// The largest message received (the Net message's /etc files).
const RECV_MAX: usize = 64 * 1024;

/// One end of the socketpair.
pub struct Channel {
    fd: OwnedFd,
}

/// A connected pair (parent end, child end), both close-on-exec.
pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .ctx(|| "socketpair for the container handshake".into())?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send(&self, msg: &Msg) -> Result<()> {
        let (tag, payload, fds): (u8, &[u8], Vec<BorrowedFd<'_>>) = match msg {
            Msg::Setup(f) => (TAG_SETUP, b"", f.iter().map(AsFd::as_fd).collect()),
            Msg::Ready(f) => (TAG_READY, b"", f.iter().map(AsFd::as_fd).collect()),
            Msg::Failed(s) => (TAG_FAILED, s.as_bytes(), vec![]),
            Msg::Start => (TAG_START, b"", vec![]),
            Msg::Net(n) => {
                // hosts, NUL, resolv.conf: neither holds a NUL (rrun wrote both).
                let mut b = n.hosts.as_bytes().to_vec();
                b.push(0);
                b.extend_from_slice(&n.resolv_conf);
                return self.send_raw(TAG_NET, &b);
            }
        };
        if fds.len() > MAX_FDS {
            return Err(Error::User(format!(
                "too many mounts to pass ({}); at most {MAX_FDS}",
                fds.len()
            )));
        }
        let mut buf = Vec::with_capacity(1 + payload.len());
        buf.push(tag);
        buf.extend_from_slice(payload);
        send_with_fds(self.fd.as_fd(), &buf, &fds)
            .ctx(|| "send on the container handshake socket".into())
    }

    fn send_raw(&self, tag: u8, payload: &[u8]) -> Result<()> {
        if payload.len() + 1 > RECV_MAX {
            return Err(Error::User(format!(
                "the container's /etc/hosts and /etc/resolv.conf are too large ({} bytes; at most {RECV_MAX})",
                payload.len()
            )));
        }
        let mut buf = Vec::with_capacity(1 + payload.len());
        buf.push(tag);
        buf.extend_from_slice(payload);
        send_with_fds(self.fd.as_fd(), &buf, &[])
            .ctx(|| "send on the container handshake socket".into())
    }

    /// Receives one message; Ok(None) at end of stream (the peer exec'd or exited).
    pub fn recv(&self) -> Result<Option<Msg>> {
        let (data, mut fds) = recv_with_fds(self.fd.as_fd())
            .ctx(|| "receive on the container handshake socket".into())?;
        let Some((&tag, payload)) = data.split_first() else {
            return Ok(None);
        };
        Ok(Some(match tag {
            TAG_SETUP => Msg::Setup(fds),
            TAG_READY => Msg::Ready(if fds.is_empty() {
                None
            } else {
                Some(fds.remove(0))
            }),
            TAG_FAILED => Msg::Failed(String::from_utf8_lossy(payload).into_owned()),
            TAG_START => Msg::Start,
            TAG_NET => {
                let (hosts, resolv) = payload
                    .iter()
                    .position(|&b| b == 0)
                    .map_or((payload, &[][..]), |i| (&payload[..i], &payload[i + 1..]));
                Msg::Net(NetEtc {
                    hosts: String::from_utf8_lossy(hosts).into_owned(),
                    resolv_conf: resolv.to_vec(),
                })
            }
            other => {
                return Err(Error::Child(format!(
                    "unexpected handshake message tag {other}"
                )))
            }
        }))
    }

    /// Waits for `Setup`; anything else is an error naming what came instead.
    pub fn wait_for_setup(&self) -> Result<Vec<OwnedFd>> {
        self.wait_for_setup_and_net().map(|(fds, _)| fds)
    }

    /// Waits for `Setup`, taking a `Net` that may come before it.
    pub fn wait_for_setup_and_net(&self) -> Result<(Vec<OwnedFd>, Option<NetEtc>)> {
        let mut net = None;
        let mut msg = self.recv()?;
        if let Some(Msg::Net(n)) = msg {
            net = Some(n);
            msg = self.recv()?;
        }
        match msg {
            Some(Msg::Setup(fds)) => Ok((fds, net)),
            other => Err(Error::Child(format!(
                "expected the setup message from rrun, got {}",
                describe(&other)
            ))),
        }
    }

    /// Waits for `Ready` (Ok(pty master)) or a failure report.
    pub fn wait_for_ready(&self) -> Result<Option<OwnedFd>> {
        match self.recv()? {
            Some(Msg::Ready(pty)) => Ok(pty),
            Some(Msg::Failed(why)) => Err(Error::Child(why)),
            other => Err(Error::Child(format!(
                "the container exited during setup ({})",
                describe(&other)
            ))),
        }
    }

    /// Child, after `Ready` when rrun sets `--ulimit`s: waits for `Start`. Into a buffer on
    /// the stack, without room for descriptors: under the limits just set (`data`, `as`), the
    /// child must not need memory to hear it.
    pub fn wait_for_start(&self) -> Result<()> {
        let mut b = [0u8; 1];
        let got = loop {
            match rustix::net::recv(&self.fd, &mut b, RecvFlags::empty()) {
                Err(Errno::INTR) => {}
                r => break r,
            }
        };
        match got {
            Ok((1, _)) if b[0] == TAG_START => Ok(()),
            Ok(_) => Err(Error::Child(
                "expected the start message from rrun, got something else".into(),
            )),
            Err(e) => Err(e).ctx(|| "receive on the container handshake socket".into()),
        }
    }

    /// After `Ready`: end of stream means rinit was exec'd; a `Failed` means exec failed.
    pub fn wait_for_exec(&self) -> Result<()> {
        match self.recv()? {
            None => Ok(()),
            Some(Msg::Failed(why)) => Err(Error::Child(why)),
            Some(other) => Err(Error::Child(format!(
                "expected exec, got {}",
                describe(&Some(other))
            ))),
        }
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn describe(m: &Option<Msg>) -> &'static str {
    match m {
        None => "end of stream",
        Some(Msg::Setup(_)) => "setup",
        Some(Msg::Ready(_)) => "ready",
        Some(Msg::Failed(_)) => "failed",
        Some(Msg::Net(_)) => "network files",
        Some(Msg::Start) => "start",
    }
}

fn send_with_fds(sock: BorrowedFd<'_>, data: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let space = if fds.is_empty() {
        0
    } else {
        rustix::cmsg_space!(ScmRights(fds.len()))
    };
    let mut cbuf = vec![MaybeUninit::<u8>::uninit(); space];
    let mut control = SendAncillaryBuffer::new(&mut cbuf);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::other(
            "no room for the descriptors in the control buffer",
        ));
    }
    let iov = [IoSlice::new(data)];
    loop {
        match rustix::net::sendmsg(sock, &iov, &mut control, SendFlags::NOSIGNAL) {
            Ok(_) => return Ok(()),
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

fn recv_with_fds(sock: BorrowedFd<'_>) -> io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut data = vec![0u8; RECV_MAX];
    // room for MAX_FDS descriptors, and for aligning the buffer to a cmsghdr
    let space = rustix::cmsg_space!(ScmRights(MAX_FDS)) + std::mem::align_of::<u64>();
    let mut cbuf = vec![MaybeUninit::<u8>::uninit(); space];
    let mut control = RecvAncillaryBuffer::new(&mut cbuf);
    let n = loop {
        let mut iov = [IoSliceMut::new(&mut data)];
        match rustix::net::recvmsg(sock, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
            Ok(m) => break m.bytes,
            Err(Errno::INTR) => {}
            Err(Errno::CONNRESET) => break 0,
            Err(e) => return Err(e.into()),
        }
    };
    let mut fds = Vec::new();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = m {
            fds.extend(rights);
        }
    }
    data.truncate(n);
    Ok((data, fds))
}
