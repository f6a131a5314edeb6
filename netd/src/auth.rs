//! Who may do what. The caller is the socket's SO_PEERCRED. Root may do everything; another
//! user may attach only network namespaces owned by its own user namespaces, publish only
//! host ports >= 1024, detach only its own attachments, stay within a per-user limit, and
//! not create or remove networks. The socket's group decides who may connect at all (see
//! server.rs). Kernel interfaces: unix(7) SO_PEERCRED, ioctl_ns(2) through `sys::netns`.

use std::os::fd::BorrowedFd;

use netd_proto::{ErrorKind, PortRequest};

use crate::sys::netns;

/// A refused or failed request: what goes back to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fail {
    pub kind: ErrorKind,
    pub message: String,
}

impl Fail {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Fail {
        Fail {
            kind,
            message: message.into(),
        }
    }
    pub fn denied(m: impl Into<String>) -> Fail {
        Fail::new(ErrorKind::Denied, m)
    }
    pub fn bad(m: impl Into<String>) -> Fail {
        Fail::new(ErrorKind::BadRequest, m)
    }
    pub fn internal(e: anyhow::Error) -> Fail {
        Fail::new(ErrorKind::Internal, format!("{e:#}"))
    }
}

impl From<anyhow::Error> for Fail {
    fn from(e: anyhow::Error) -> Fail {
        Fail::internal(e)
    }
}

/// The client, from SO_PEERCRED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: i32,
}

impl Peer {
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }
}

/// Checks the descriptor of an attach: a network namespace, not netd's own, and (for a user
/// other than root) owned by a user namespace that user owns (or one nested in such).
pub fn check_netns(peer: &Peer, fd: BorrowedFd<'_>, own: (u64, u64)) -> Result<(), Fail> {
    if !netns::is_netns(fd) {
        return Err(Fail::bad(
            "the descriptor sent with attach is not a network namespace: send /proc/PID/ns/net of the container",
        ));
    }
    let id = netns::ns_id(fd).map_err(|e| Fail::internal(e.into()))?;
    if id == own {
        return Err(Fail::denied(
            "that network namespace is netd's own (the host's): attach a container's namespace",
        ));
    }
    if peer.is_root() {
        return Ok(());
    }
    let owners = netns::owner_uids(fd).map_err(|e| Fail::internal(e.into()))?;
    if owners.contains(&peer.uid) {
        return Ok(());
    }
    Err(Fail::denied(format!(
        "uid {} may attach only network namespaces owned by its own user namespaces, and this one is not (owners: {}): attach a container that uid started, or run as root",
        peer.uid,
        if owners.is_empty() {
            "the host's initial user namespace".to_string()
        } else {
            owners.iter().map(|u| format!("uid {u}")).collect::<Vec<_>>().join(", ")
        }
    )))
}

/// Users other than root publish only host ports >= 1024 (a port netd picks is such).
pub fn check_ports(peer: &Peer, ports: &[PortRequest]) -> Result<(), Fail> {
    if peer.is_root() {
        return Ok(());
    }
    if let Some(p) = ports
        .iter()
        .find(|p| p.host_port != 0 && p.host_port < 1024)
    {
        return Err(Fail::denied(format!(
            "uid {} may publish only host ports >= 1024, not {}/{}: pick a higher host port (or let netd pick one)",
            peer.uid, p.host_port, p.proto
        )));
    }
    Ok(())
}

/// Users other than root touch only their own attachments.
pub fn check_owner(peer: &Peer, owner_uid: u32, container: &str) -> Result<(), Fail> {
    if peer.is_root() || peer.uid == owner_uid {
        return Ok(());
    }
    Err(Fail::denied(format!(
        "container {container}'s attachment belongs to uid {owner_uid}: uid {} may detach only its own",
        peer.uid
    )))
}

/// Users other than root stay within `max` attachments.
pub fn check_limit(peer: &Peer, have: usize, max: usize) -> Result<(), Fail> {
    if peer.is_root() || have < max {
        return Ok(());
    }
    Err(Fail::new(
        ErrorKind::Limit,
        format!(
            "uid {} has {have} attachments, the limit per user (max_attachments_per_user in netd's config): detach some first",
            peer.uid
        ),
    ))
}

/// Creating and removing networks changes the host for everyone: root only.
pub fn check_admin(peer: &Peer, op: &str) -> Result<(), Fail> {
    if peer.is_root() {
        return Ok(());
    }
    Err(Fail::denied(format!(
        "{op} needs root (uid {} asked): networks are shared by every user of this host",
        peer.uid
    )))
}
