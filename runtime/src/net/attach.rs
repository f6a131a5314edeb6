//! rrun's calls to netd for a container: attach at creation (the netns descriptor of
//! /proc/PID/ns/net of rrun's own child, sent before the root is built and answered after),
//! release at exit and removal. Kernel interface: open(2) of /proc/PID/ns/net; the protocol
//! is netd-proto's.

use std::path::Path;

use netd_proto::{AttachRequest, Attachment, Client, ClientError};

use crate::error::{user, Context, Error, Result};
use crate::net::record::NetRecord;
use crate::spec::NetMode;
use crate::state::State;

/// The netd network a mode attaches to, if any.
pub fn network_of(mode: &NetMode) -> Option<&str> {
    match mode {
        NetMode::Bridge => Some("bridge"),
        NetMode::Network(n) => Some(n),
        _ => None,
    }
}

/// An attach sent to netd whose reply is still to come.
pub struct Pending {
    client: Client,
}

/// Sends the attach of container `st`, whose init (rrun's child, not reaped) is `pid`.
/// Records first that netd may hold something for it, so removal asks netd to release it
/// whatever happens next.
pub fn start(st: &State, pid: i32, dir: &Path) -> Result<Option<Pending>> {
    let Some(network) = network_of(&st.config.net) else {
        return Ok(None);
    };
    let p = format!("/proc/{pid}/ns/net");
    let ns = std::fs::File::open(&p).ctx(|| format!("open {p}"))?;
    let mut client = Client::connect_default().map_err(netd_error)?;
    NetRecord::default().save(dir)?;
    let opts = &st.config.net_opts;
    let req = AttachRequest {
        network: network.to_string(),
        container_id: st.id.clone(),
        container_name: st.name.clone(),
        aliases: opts.aliases.clone(),
        ports: opts.ports.clone(),
    };
    client
        .send(
            &netd_proto::Request::Attach(req),
            Some(std::os::fd::AsFd::as_fd(&ns)),
        )
        .map_err(netd_error)?;
    Ok(Some(Pending { client }))
}

/// Waits for netd's answer to [`start`] and records it in the container's folder.
pub fn finish(mut p: Pending, dir: &Path) -> Result<Attachment> {
    let a = p.client.wait_for_attached().map_err(netd_error)?;
    NetRecord {
        attachments: vec![a.clone()],
        user_net: None,
    }
    .save(dir)?;
    Ok(a)
}

pub use crate::netrecord::{release, release_nowait};

/// A netd client error as rrun's (a refused connect names the socket's group: see
/// [`crate::net::access`]).
pub fn netd_error(e: ClientError) -> Error {
    user(crate::net::access::describe(&e))
}
