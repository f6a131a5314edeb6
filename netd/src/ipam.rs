//! Address management: which subnets a network may have (no overlap with another network or a
//! host route; default routes don't count), the next free one from a pool, and the lowest free
//! address in a subnet. Pure functions over netd's state and the host's routes; no kernel
//! interface.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// A subnet in use on the host, for overlap checks: a network of netd's, or a route.
#[derive(Debug, Clone)]
pub enum Taken {
    Network { name: String, subnet: IpNet },
    Route { dst: IpNet, dev: String },
}

impl Taken {
    fn net(&self) -> IpNet {
        match self {
            Taken::Network { subnet, .. } => *subnet,
            Taken::Route { dst, .. } => *dst,
        }
    }

    /// Words naming it in an error.
    pub fn describe(&self) -> String {
        match self {
            Taken::Network { name, subnet } => format!("network {name} ({subnet})"),
            Taken::Route { dst, dev } => format!("the host's route to {dst} on {dev}"),
        }
    }
}

/// True when the two subnets share an address.
pub fn overlaps(a: IpNet, b: IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The first thing `subnet` overlaps, if any (default routes are never in `taken`).
pub fn conflict(subnet: IpNet, taken: &[Taken]) -> Option<&Taken> {
    taken.iter().find(|t| overlaps(subnet, t.net()))
}

/// The first /`prefix` of `pool` that overlaps nothing taken.
pub fn pick_subnet4(pool: Ipv4Net, prefix: u8, taken: &[Taken]) -> Option<Ipv4Net> {
    pool.subnets(prefix)
        .ok()?
        .find(|s| conflict(IpNet::V4(*s), taken).is_none())
}

/// The first /64 of the ULA `pool` (skipping the all-zero one) that overlaps nothing taken.
pub fn pick_subnet6(pool: Ipv6Net, taken: &[Taken]) -> Option<Ipv6Net> {
    pool.subnets(64)
        .ok()?
        .skip(1)
        .take(65535)
        .find(|s| conflict(IpNet::V6(*s), taken).is_none())
}

/// The gateway (the bridge's address): the subnet's first host address.
pub fn gateway4(subnet: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()) + 1)
}

/// The IPv6 gateway: `::1` of the subnet.
pub fn gateway6(subnet: Ipv6Net) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(subnet.network()) + 1)
}

/// The lowest address of `subnet` that is neither the network, the gateway, the broadcast
/// address nor in `used`.
pub fn pick_addr4(subnet: Ipv4Net, used: &HashSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    let first = u32::from(subnet.network()) + 2;
    let last = u32::from(subnet.broadcast()).checked_sub(1)?;
    (first..=last)
        .map(Ipv4Addr::from)
        .find(|a| !used.contains(a))
}

/// The container's IPv6 address: the subnet's prefix with the host number of its IPv4 lease
/// (unique, since the lease is), so `10.1.0.7` goes with `…::7`.
pub fn addr6_for(subnet: Ipv6Net, v4: Ipv4Addr, subnet4: Ipv4Net) -> Ipv6Addr {
    let host = u32::from(v4) - u32::from(subnet4.network());
    Ipv6Addr::from(u128::from(subnet.network()) + u128::from(host))
}

/// Whether `ip` is an address a route may hide behind: never loopback or unspecified.
pub fn is_routable(ip: IpAddr) -> bool {
    !ip.is_loopback() && !ip.is_unspecified()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(s: &str) -> Taken {
        Taken::Route {
            dst: s.parse().unwrap(),
            dev: "eth0".into(),
        }
    }

    #[test]
    fn overlaps_and_picks() {
        let taken = vec![
            route("10.223.0.0/24"),
            Taken::Network {
                name: "a".into(),
                subnet: "10.223.1.0/24".parse().unwrap(),
            },
        ];
        let s = pick_subnet4("10.223.0.0/16".parse().unwrap(), 24, &taken).unwrap();
        assert_eq!(s.to_string(), "10.223.2.0/24");
        let c = conflict("10.223.0.128/25".parse().unwrap(), &taken).unwrap();
        assert!(
            c.describe().contains("route to 10.223.0.0/24"),
            "{}",
            c.describe()
        );
        assert!(conflict("10.0.0.0/8".parse().unwrap(), &taken).is_some());
        assert!(conflict("10.224.0.0/16".parse().unwrap(), &taken).is_none());
    }

    #[test]
    fn addresses() {
        let s: Ipv4Net = "10.1.0.0/29".parse().unwrap();
        assert_eq!(gateway4(s).to_string(), "10.1.0.1");
        let mut used = HashSet::new();
        for want in ["10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6"] {
            let a = pick_addr4(s, &used).unwrap();
            assert_eq!(a.to_string(), want);
            used.insert(a);
        }
        assert!(
            pick_addr4(s, &used).is_none(),
            "the broadcast address is never leased"
        );
        used.remove(&"10.1.0.3".parse().unwrap());
        assert_eq!(pick_addr4(s, &used).unwrap().to_string(), "10.1.0.3");
        let s6: Ipv6Net = "fd00:1:2:3::/64".parse().unwrap();
        assert_eq!(
            addr6_for(s6, "10.1.0.7".parse().unwrap(), s).to_string(),
            "fd00:1:2:3::7"
        );
        assert_eq!(gateway6(s6).to_string(), "fd00:1:2:3::1");
    }
}
