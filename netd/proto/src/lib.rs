//! netd-proto: the protocol between rrun (and any other client) and netd, and nothing else.
//!
//! - Transport: a Unix stream socket (`/run/rbox/netd.sock`, or `$RBOX_NETD_SOCKET`); who may
//!   connect is decided by the socket's owner, group and mode.
//! - Frames ([`frame`]): a 4-byte big-endian length and that many bytes of JSON, at most
//!   [`MAX_REQUEST`] bytes from a client and [`MAX_REPLY`] from netd. netd gives a client a few
//!   seconds per request frame; a slow, truncated, oversized or malformed frame gets an
//!   [`ErrorKind::BadRequest`] or [`ErrorKind::Timeout`] reply and the connection is closed.
//! - Messages ([`types`]): `{"version": 1, "request": {"op": "attach", ...}}` and
//!   `{"version": 1, "reply": {"kind": "attached", "body": {...}}}`; unknown fields are refused.
//! - Descriptors: the container's network namespace travels as a descriptor (SCM_RIGHTS on the
//!   attach frame), never as a pid, so netd acts on exactly the namespace the client holds.
//!   netd keeps no descriptor after the attach.
//! - A connection carries requests one after the other; the client waits for each reply
//!   ([`Client`]). rrun stays synchronous and links only this crate.
//!
//! The caller's identity is the socket's SO_PEERCRED: nothing in a request claims a uid.

pub mod client;
pub mod frame;
pub mod types;

pub use client::{socket_path, Client, ClientError, DEFAULT_SOCKET, SOCKET_ENV};
pub use types::*;
