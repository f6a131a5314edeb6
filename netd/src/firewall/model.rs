//! What netd's table is built from: its networks (bridge, subnets) and its published ports.
//! Plain data and its checks; no kernel access.

use std::fmt;
use std::net::IpAddr;

use ipnet::{Ipv4Net, Ipv6Net};

use super::FirewallError;
use crate::view::{FirewallView, NetView, PortView};

/// One of netd's networks as the firewall keeps it: the bridge its containers hang on and the
/// subnets they get leases from (from [`NetView`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    /// The bridge's interface name (at most 15 bytes, IFNAMSIZ - 1).
    pub bridge: String,
    /// IPv4 subnet (MASQUERADE for it when it leaves through another interface).
    pub subnet4: Option<Ipv4Net>,
    /// IPv6 subnet of a network created with `--ipv6` (NAT66 the same way).
    pub subnet6: Option<Ipv6Net>,
}

impl From<&NetView> for Network {
    fn from(n: &NetView) -> Self {
        Network {
            bridge: n.bridge.clone(),
            subnet4: Some(n.subnet4),
            subnet6: n.subnet6,
        }
    }
}

/// One published port: `-p [HOSTIP:]HOSTPORT:PORT[/PROTO]` for one address family (`addr`
/// decides the family). `host_ip: None` means every address of the host in that family
/// (`fib daddr type local`), including 127.0.0.1; `Some` only that address.
pub type PortBinding = PortView;

impl fmt::Display for PortView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            Some(IpAddr::V6(a)) => write!(f, "[{a}]:")?,
            Some(IpAddr::V4(a)) => write!(f, "{a}:")?,
            None if self.addr.is_ipv6() => write!(f, "[::]:")?,
            None => {}
        }
        let to = match self.addr {
            IpAddr::V6(a) => format!("[{a}]"),
            IpAddr::V4(a) => a.to_string(),
        };
        write!(
            f,
            "{}->{to}:{}/{}",
            self.host_port,
            self.port,
            self.proto.as_str()
        )
    }
}

impl PortView {
    /// The binding with an unspecified host address (`0.0.0.0`, `::`) written as `None`, and
    /// refused when it cannot work: port 0, a host address of the other family, a multicast
    /// host address, or `[::1]`. The kernel never routes ::1 off `lo` (RFC 4291 2.5.3, and Linux
    /// has no IPv6 `route_localnet`), so DNAT cannot reach a container from it; netd refuses it
    /// rather than run a userland proxy that would hide every client's address.
    pub fn checked(mut self) -> Result<Self, FirewallError> {
        if self.host_port == 0 || self.port == 0 {
            return Err(FirewallError::Port(
                self,
                "port 0 cannot be published; pick a port from 1 to 65535",
            ));
        }
        if self.host_ip.is_some_and(|ip| ip.is_unspecified()) {
            self.host_ip = None;
        }
        let Some(host) = self.host_ip else {
            return Ok(self);
        };
        if host.is_ipv6() != self.addr.is_ipv6() {
            return Err(FirewallError::Port(
                self,
                "the host address and the container address are of different families",
            ));
        }
        if host.is_multicast() {
            return Err(FirewallError::Port(
                self,
                "a multicast host address cannot be published",
            ));
        }
        if host == IpAddr::V6(std::net::Ipv6Addr::LOCALHOST) {
            return Err(FirewallError::Port(
                self,
                "[::1] cannot be published: the kernel never routes ::1 off lo; use 127.0.0.1 or a host address",
            ));
        }
        Ok(self)
    }

    /// True when both bindings would catch the same packets: same protocol, host port and
    /// family, and the same host address or one of them on every address.
    pub fn overlaps(&self, other: &PortView) -> bool {
        self.proto == other.proto
            && self.host_port == other.host_port
            && self.addr.is_ipv6() == other.addr.is_ipv6()
            && match (self.host_ip, other.host_ip) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

/// Everything netd's table is rebuilt from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FwState {
    pub networks: Vec<Network>,
    pub ports: Vec<PortView>,
}

impl From<&FirewallView> for FwState {
    fn from(v: &FirewallView) -> Self {
        FwState {
            networks: v.networks.iter().map(Network::from).collect(),
            ports: v.ports.clone(),
        }
    }
}

/// Longest interface name the kernel takes (IFNAMSIZ 16 with the NUL, netdevice(7)).
pub const IFNAME_MAX: usize = 15;

impl Network {
    /// Refuses a bridge name the kernel would refuse or that could not be an interface name.
    pub fn check(&self) -> Result<(), FirewallError> {
        let ok = !self.bridge.is_empty()
            && self.bridge.len() <= IFNAME_MAX
            && self.bridge != "."
            && self.bridge != ".."
            && self
                .bridge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if ok {
            Ok(())
        } else {
            Err(FirewallError::Bridge(self.bridge.clone()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::Proto;

    fn b(host_ip: Option<&str>, host_port: u16, addr: &str) -> PortBinding {
        PortBinding {
            proto: Proto::Tcp,
            host_ip: host_ip.map(|s| s.parse().unwrap()),
            host_port,
            addr: addr.parse().unwrap(),
            port: 80,
        }
    }

    #[test]
    fn unspecified_host_ip_means_every_address() {
        assert_eq!(
            b(Some("0.0.0.0"), 8080, "10.0.0.2")
                .checked()
                .unwrap()
                .host_ip,
            None
        );
        assert_eq!(
            b(Some("::"), 8080, "fd00::2").checked().unwrap().host_ip,
            None
        );
    }

    #[test]
    fn refuses_ipv6_loopback_mixed_families_and_port_zero() {
        let e = b(Some("::1"), 8080, "fd00::2")
            .checked()
            .unwrap_err()
            .to_string();
        assert!(e.contains("[::1] cannot be published"), "{e}");
        assert!(b(Some("127.0.0.1"), 8080, "fd00::2").checked().is_err());
        assert!(b(None, 0, "10.0.0.2").checked().is_err());
        assert!(b(Some("224.0.0.1"), 1, "10.0.0.2").checked().is_err());
    }

    #[test]
    fn wildcard_overlaps_specific_of_same_family_only() {
        let any4 = b(None, 8080, "10.0.0.2");
        assert!(any4.overlaps(&b(Some("192.0.2.1"), 8080, "10.0.0.3")));
        assert!(!any4.overlaps(&b(None, 8080, "fd00::2")));
        assert!(!any4.overlaps(&b(None, 8081, "10.0.0.2")));
        assert!(!b(Some("192.0.2.1"), 8080, "10.0.0.2").overlaps(&b(
            Some("192.0.2.2"),
            8080,
            "10.0.0.2"
        )));
    }

    #[test]
    fn bridge_names_are_checked() {
        let n = |s: &str| Network {
            bridge: s.into(),
            subnet4: None,
            subnet6: None,
        };
        assert!(n("rbox0").check().is_ok());
        assert!(n("").check().is_err());
        assert!(n("a-very-long-bridge").check().is_err());
        assert!(n("br\"0").check().is_err());
    }
}
