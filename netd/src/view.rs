//! What the firewall and the DNS responder see of netd's state: plain data built by the core
//! (`state`) on every change, so those modules never read netd's files or locks. No kernel
//! interface.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
pub use netd_proto::Proto;

/// One network (a bridge with its subnets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetView {
    /// `bridge` for the default network, else the user network's name.
    pub name: String,
    /// The Linux bridge (IFNAMSIZ-safe, starts with the configured bridge prefix).
    pub bridge: String,
    pub subnet4: Ipv4Net,
    /// The bridge's own address, the containers' default gateway.
    pub gateway4: Ipv4Addr,
    pub subnet6: Option<Ipv6Net>,
    pub gateway6: Option<Ipv6Addr>,
    /// True for user networks: no traffic between this bridge and any other of netd's
    /// bridges (Docker isolates every network from every other; the default one too).
    pub isolated: bool,
}

/// One DNAT mapping: (proto, host address, host port) → (container address, port). A `-p`
/// of a container on an IPv6 network without a host address gives two: one per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortView {
    pub proto: Proto,
    /// None: any address of the host of the family of `addr`. Some(127.0.0.1) is the host's
    /// loopback (localnet DNAT); `::1` is refused before it gets here.
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    /// The container's address (IPv4 or IPv6; the same family as `host_ip` when set).
    pub addr: IpAddr,
    pub port: u16,
}

/// Everything the firewall table is built from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirewallView {
    pub networks: Vec<NetView>,
    pub ports: Vec<PortView>,
}

/// One user network's names, for the DNS responder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsNetView {
    pub network: String,
    pub bridge: String,
    /// Where the responder listens (UDP and TCP port 53): the gateway addresses.
    pub listen: Vec<IpAddr>,
    /// Lowercase container name or alias → its addresses on this network (A and AAAA).
    pub records: BTreeMap<String, Vec<IpAddr>>,
}

/// Every user network's names (the default network has no name resolution, as in Docker).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsView {
    pub networks: Vec<DnsNetView>,
}
