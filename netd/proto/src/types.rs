//! The messages of protocol version [`VERSION`]: one [`Request`] per frame from the client, one
//! [`Reply`] per frame from netd. No kernel interface: plain serde types.
//!
//! Every field is checked by netd as hostile input (names, counts, ports); the limits the
//! checks use are here so that rrun can refuse early with the same words.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

/// The protocol version this crate speaks. A frame of another version gets
/// [`ErrorKind::Version`] back.
pub const VERSION: u32 = 1;
/// Largest request frame netd reads (bytes of JSON after the 4-byte length).
pub const MAX_REQUEST: usize = 64 * 1024;
/// Largest reply frame a client reads.
pub const MAX_REPLY: usize = 16 * 1024 * 1024;
/// At most this many published ports per attach request.
pub const MAX_PORTS: usize = 256;
/// At most this many aliases per attach request.
pub const MAX_ALIASES: usize = 32;
/// Longest network or container name (a DNS label is at most 63 bytes).
pub const MAX_NAME: usize = 63;

/// A request frame: `{"version": 1, "request": {"op": ..., ...}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestFrame {
    pub version: u32,
    pub request: Request,
}

/// A reply frame: `{"version": 1, "reply": {"kind": ..., ...}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyFrame {
    pub version: u32,
    pub reply: Reply,
}

/// What a client asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Connect the network namespace passed with this frame (SCM_RIGHTS, exactly one
    /// descriptor of a netns) to a network. Reply: [`Reply::Attached`].
    Attach(AttachRequest),
    /// Undo attaches of a container: all of its networks, or the one named. Idempotent.
    /// Reply: [`Reply::Detached`].
    Detach(DetachRequest),
    /// Reply: [`Reply::Network`].
    NetworkCreate(NetworkCreateRequest),
    /// Reply: [`Reply::Networks`].
    NetworkList {},
    /// Reply: [`Reply::Network`] (with its endpoints).
    NetworkInspect { name: String },
    /// Refused while a container is attached. Reply: [`Reply::Removed`].
    NetworkRemove { name: String },
    /// Reply: [`Reply::Status`].
    Status {},
}

impl Request {
    /// The operation's name, for messages.
    pub fn op(&self) -> &'static str {
        match self {
            Request::Attach(_) => "attach",
            Request::Detach(_) => "detach",
            Request::NetworkCreate(_) => "network create",
            Request::NetworkList {} => "network ls",
            Request::NetworkInspect { .. } => "network inspect",
            Request::NetworkRemove { .. } => "network rm",
            Request::Status {} => "status",
        }
    }
}

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl std::fmt::Display for Proto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `-p [HOSTIP:]HOSTPORT:PORT[/PROTO]` as asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortRequest {
    pub proto: Proto,
    /// None: every address of the host (IPv4, and IPv6 when the network has IPv6).
    pub host_ip: Option<IpAddr>,
    /// 0: netd picks a free port.
    pub host_port: u16,
    /// The container's port (1-65535).
    pub port: u16,
}

/// A published port as netd set it up (`host_port` is never 0 here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedPort {
    pub proto: Proto,
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub port: u16,
}

/// Attach: which network, on behalf of which container, with which names and ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachRequest {
    /// `bridge` (the default network) or a user network's name.
    pub network: String,
    /// The container's id (rrun's 64 hex digits): the key of detach.
    pub container_id: String,
    /// The container's name: what other containers on a user network resolve.
    pub container_name: String,
    /// More names on a user network (`--network-alias`).
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub ports: Vec<PortRequest>,
}

/// An address with its prefix length, as on an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IfAddr4 {
    pub address: Ipv4Addr,
    pub prefix_len: u8,
}

/// An IPv6 address with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IfAddr6 {
    pub address: Ipv6Addr,
    pub prefix_len: u8,
}

/// What an attach made, as the container sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    pub network: String,
    pub container_id: String,
    /// The interface inside the container (eth0, eth1, ...).
    pub ifname: String,
    /// The host end of the veth pair.
    pub host_ifname: String,
    pub mac: String,
    pub ipv4: IfAddr4,
    pub gateway4: Ipv4Addr,
    pub ipv6: Option<IfAddr6>,
    pub gateway6: Option<Ipv6Addr>,
    pub mtu: u32,
    /// Nameservers for the container's /etc/resolv.conf: netd's resolver (the gateway) on a
    /// user network, else the host's upstream resolvers that a container can reach.
    pub dns: Vec<IpAddr>,
    /// Whether `dns` is netd's own resolver (container names resolve there).
    pub dns_is_netd: bool,
    pub ports: Vec<PublishedPort>,
}

/// Detach: the container, and the network (None: every network it is on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetachRequest {
    pub container_id: String,
    #[serde(default)]
    pub network: Option<String>,
}

/// `rrun network create NAME [--subnet CIDR] [--ipv6 [--subnet6 CIDR]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkCreateRequest {
    pub name: String,
    /// None: the next free subnet from netd's pool.
    #[serde(default)]
    pub subnet: Option<Ipv4Net>,
    #[serde(default)]
    pub ipv6: bool,
    /// None with `ipv6`: a ULA /64 (fd00::/8) netd picks.
    #[serde(default)]
    pub subnet6: Option<Ipv6Net>,
}

/// One container on a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    pub container_id: String,
    pub container_name: String,
    pub aliases: Vec<String>,
    pub ipv4: Ipv4Addr,
    pub ipv6: Option<Ipv6Addr>,
    pub host_ifname: String,
    pub ports: Vec<PublishedPort>,
    /// The uid of the client that attached it.
    pub owner_uid: u32,
}

/// A network as netd holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkInfo {
    pub name: String,
    pub bridge: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub subnet6: Option<Ipv6Net>,
    pub gateway6: Option<Ipv6Addr>,
    /// The default network (`bridge`): no name resolution, cannot be removed.
    pub default: bool,
    /// Filled by inspect; empty in ls.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    /// How many containers are attached.
    pub attached: u32,
}

/// netd's own description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusInfo {
    pub version: String,
    pub protocol: u32,
    pub table: String,
    pub networks: u32,
    pub attachments: u32,
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The frame or a field was malformed, oversized or truncated.
    BadRequest,
    /// Another protocol version.
    Version,
    /// The caller may not do this (a reason follows).
    Denied,
    /// No such network.
    NotFound,
    /// Overlapping subnet, a port published already, a name taken, a network in use.
    Conflict,
    /// A per-user limit or the pool is exhausted.
    Limit,
    /// The client was too slow.
    Timeout,
    /// The kernel or netd failed; everything the request made was rolled back.
    Internal,
}

/// A failed request: the kind, and one line naming the object and the fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorReply {
    pub kind: ErrorKind,
    pub message: String,
}

/// What netd answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "body", rename_all = "snake_case")]
pub enum Reply {
    Attached(Attachment),
    /// The attachments released (network names).
    Detached {
        networks: Vec<String>,
    },
    Network(NetworkInfo),
    Networks(Vec<NetworkInfo>),
    Removed {
        name: String,
    },
    Status(StatusInfo),
    Error(ErrorReply),
}

impl Reply {
    /// An error reply.
    pub fn error(kind: ErrorKind, message: impl Into<String>) -> Reply {
        Reply::Error(ErrorReply {
            kind,
            message: message.into(),
        })
    }
}

/// Checks a network or container name: 1 to [`MAX_NAME`] bytes of ASCII letters, digits,
/// '-', '_' and '.', starting with a letter or digit (Docker's rule for names). Returns a
/// reason on failure.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!(
            "bad {what} {name:?}: use 1 to {MAX_NAME} characters"
        ));
    }
    if !name.as_bytes()[0].is_ascii_alphanumeric()
        || !name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c))
    {
        return Err(format!(
            "bad {what} {name:?}: use letters, digits, '-', '_' and '.', starting with a letter or digit"
        ));
    }
    Ok(())
}

/// Checks a container id: 12 to 64 lowercase hex digits.
pub fn check_container_id(id: &str) -> Result<(), String> {
    if (12..=64).contains(&id.len()) && id.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(format!(
            "bad container id {id:?}: use 12 to 64 lowercase hex digits"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_refuse_unknown_fields() {
        let f = RequestFrame {
            version: VERSION,
            request: Request::Attach(AttachRequest {
                network: "bridge".into(),
                container_id: "ab".repeat(32),
                container_name: "web".into(),
                aliases: vec![],
                ports: vec![PortRequest {
                    proto: Proto::Udp,
                    host_ip: Some("2001:db8::1".parse().unwrap()),
                    host_port: 0,
                    port: 53,
                }],
            }),
        };
        let s = serde_json::to_string(&f).unwrap();
        assert!(s.contains(r#""op":"attach""#), "{s}");
        let back: RequestFrame = serde_json::from_str(&s).unwrap();
        assert_eq!(back.request, f.request);
        let bad = r#"{"version":1,"request":{"op":"status","x":1}}"#;
        assert!(serde_json::from_str::<RequestFrame>(bad).is_err());
        let bad = r#"{"version":1,"request":{"op":"status"},"extra":true}"#;
        assert!(serde_json::from_str::<RequestFrame>(bad).is_err());
        let r = ReplyFrame {
            version: VERSION,
            reply: Reply::error(ErrorKind::Denied, "no"),
        };
        let s = serde_json::to_string(&r).unwrap();
        let back: ReplyFrame = serde_json::from_str(&s).unwrap();
        assert_eq!(back.reply, r.reply);
    }

    #[test]
    fn names_and_ids() {
        assert!(check_name("network", "my-net_1.a").is_ok());
        for bad in ["", "-a", "a b", "a/b", &"a".repeat(64), "ü"] {
            assert!(check_name("network", bad).is_err(), "{bad:?}");
        }
        assert!(check_container_id(&"a".repeat(64)).is_ok());
        assert!(check_container_id("ABCDEF012345").is_err());
        assert!(check_container_id("abc").is_err());
    }
}
