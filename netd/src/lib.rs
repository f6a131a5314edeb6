//! netd: the host service that owns bridges, veth pairs, IP leases, MASQUERADE and DNAT
//! (nftables), and name resolution on user networks. Not built yet: see DESIGN.md.

pub mod dns;
pub mod firewall;
