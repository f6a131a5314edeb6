//! Bridges and veth pairs as netd makes them: a network's bridge with its gateway addresses;
//! an attachment's veth pair, host end on the bridge, other end inside the container as ethN
//! with its lease, loopback up and a default route. Kernel interface: rtnetlink(7) through
//! `sys::netlink` (never the `ip` program).

use std::io;
use std::net::IpAddr;
use std::os::fd::BorrowedFd;

use anyhow::{Context, Result};
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};

use crate::store::NetworkRec;
use crate::sys::netlink::{self, Netlink};
use crate::sys::netns;

/// Makes sure the network's bridge exists, is up and holds its gateway addresses; returns its
/// ifindex. An existing bridge (netd restarted) is kept as it is.
pub fn ensure_bridge(nl: &mut Netlink, net: &NetworkRec, mtu: u32) -> Result<u32> {
    let link = match nl.link_by_name(&net.bridge)? {
        Some(l) => l,
        None => {
            nl.add_bridge(&net.bridge, mtu)
                .with_context(|| format!("create bridge {}", net.bridge))?;
            nl.link_by_name(&net.bridge)?
                .with_context(|| format!("bridge {} vanished after its creation", net.bridge))?
        }
    };
    if link.kind.as_deref() != Some("bridge") {
        anyhow::bail!(
            "{} exists and is not a bridge: remove it or choose another bridge_prefix",
            net.bridge
        );
    }
    if !link.up {
        nl.set_up(link.index)
            .with_context(|| format!("set {} up", net.bridge))?;
    }
    let have = nl.addresses(link.index)?;
    let mut want = vec![(IpAddr::V4(net.gateway), net.subnet.prefix_len())];
    if let (Some(g6), Some(s6)) = (net.gateway6, net.subnet6) {
        want.push((IpAddr::V6(g6), s6.prefix_len()));
    }
    for (ip, len) in want {
        if !have.contains(&(ip, len)) {
            nl.request(
                netlink::add_address_msg(link.index, ip, len),
                NLM_F_CREATE | NLM_F_REPLACE,
            )
            .with_context(|| format!("add {ip}/{len} to {}", net.bridge))?;
        }
    }
    Ok(link.index)
}

/// Deletes a bridge; an absent one is no error.
pub fn remove_bridge(nl: &mut Netlink, name: &str) -> Result<()> {
    match nl.del_link_name(name) {
        Ok(()) => Ok(()),
        Err(e) if is_gone(&e) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("delete bridge {name}")),
    }
}

/// True for the errors of a link that is not there (ENODEV, and ENOENT for some kernels).
pub fn is_gone(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENODEV) | Some(libc::ENOENT))
}

/// What the container's side of an attach needs.
pub struct VethPlan<'a> {
    pub host_ifname: &'a str,
    pub bridge_index: u32,
    pub mtu: u32,
    pub ipv4: (IpAddr, u8),
    pub gateway4: IpAddr,
    pub ipv6: Option<(IpAddr, u8)>,
    pub gateway6: Option<IpAddr>,
}

/// What [`add_veth`] made.
pub struct VethMade {
    pub host_index: u32,
    pub ifname: String,
    pub mac: String,
}

/// Step one of an attach: the veth pair, its host end up on the bridge and the other end
/// inside `ns` under the first free ethN (brought up by [`configure_inside`]). Returns the host end's ifindex; on failure nothing
/// is left.
pub fn add_veth(
    nl: &mut Netlink,
    ns_nl: &mut Netlink,
    ns: BorrowedFd<'_>,
    plan: &VethPlan<'_>,
) -> Result<(u32, String)> {
    let inside = ns_nl.links().context("list the container's interfaces")?;
    let ifname = (0..)
        .map(|i| format!("eth{i}"))
        .find(|n| !inside.iter().any(|l| &l.name == n))
        .expect("an unbounded range has a free name");
    nl.add_veth(plan.host_ifname, plan.bridge_index, plan.mtu, &ifname, ns)
        .with_context(|| format!("create veth pair {} / {ifname}", plan.host_ifname))?;
    match nl.link_by_name(plan.host_ifname) {
        Ok(Some(l)) => match bring_up_port(nl, l.index) {
            Ok(()) => Ok((l.index, ifname)),
            Err(e) => {
                let _ = nl.del_link(l.index);
                Err(e).with_context(|| format!("set {} up", plan.host_ifname))
            }
        },
        Ok(None) => anyhow::bail!(
            "veth {} vanished right after its creation (its namespace ended)",
            plan.host_ifname
        ),
        Err(e) => {
            let _ = nl.del_link_name(plan.host_ifname);
            Err(e).context("look up the new veth")
        }
    }
}

/// The host end of a veth, on its bridge: no IPv6 address of its own (a bridge port needs
/// none; without one it adds no routes to the host's IPv6 table and sends no duplicate address
/// detection, MLD or router solicitation to the container), then up. One netlink batch.
fn bring_up_port(nl: &mut Netlink, index: u32) -> io::Result<()> {
    let r = nl.request_each(vec![
        (netlink::addr_gen_none_msg(index), 0),
        (netlink::set_up_msg(index), 0),
    ])?;
    match r
        .into_iter()
        .enumerate()
        .find_map(|(i, e)| e.filter(|e| !(i == 0 && no_ipv6(e))))
    {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// EAFNOSUPPORT: the kernel has no IPv6 (`ipv6.disable=1`), so nothing to turn off.
fn no_ipv6(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EAFNOSUPPORT)
}

/// Step two: inside the container, the lease on ethN, loopback up, and (for eth0) the
/// default routes, in one netlink batch. On a network without IPv6, ethN comes up without
/// an IPv6 link-local address: otherwise its MLD reports, duplicate address detection and
/// router solicitations, multicast, are flooded by the bridge to every other container of
/// the network (work that grows with the number attached, at every attach), and such a
/// container has no IPv6 to use anyway (Docker disables IPv6 on such interfaces too). Returns
/// the interface's MAC address.
pub fn configure_inside(ns_nl: &mut Netlink, ifname: &str, plan: &VethPlan<'_>) -> Result<String> {
    let link = ns_nl
        .link_by_name(ifname)?
        .with_context(|| format!("{ifname} is missing inside the container"))?;
    let excl = NLM_F_CREATE | NLM_F_EXCL;
    let mut steps = vec![(
        "add the IPv4 lease",
        netlink::add_address_msg(link.index, plan.ipv4.0, plan.ipv4.1),
        excl,
    )];
    match plan.ipv6 {
        Some((ip, len)) => steps.push((
            "add the IPv6 lease",
            netlink::add_address_msg(link.index, ip, len),
            excl,
        )),
        None => steps.push((NO_LINK_LOCAL, netlink::addr_gen_none_msg(link.index), 0)),
    }
    steps.push(("bring it up", netlink::set_up_msg(link.index), 0));
    // lo is ifindex 1 in every network namespace (loopback_net_init).
    steps.push(("bring lo up", netlink::set_up_msg(1), 0));
    if ifname == "eth0" {
        steps.push((
            "add the default route",
            netlink::default_route_msg(link.index, plan.gateway4),
            excl,
        ));
        if let Some(g6) = plan.gateway6 {
            steps.push((
                "add the IPv6 default route",
                netlink::default_route_msg(link.index, g6),
                excl,
            ));
        }
    }
    let names: Vec<&str> = steps.iter().map(|s| s.0).collect();
    let results = ns_nl
        .request_each(steps.into_iter().map(|(_, m, f)| (m, f)).collect())
        .with_context(|| format!("configure {ifname} inside the container"))?;
    for (name, e) in names.into_iter().zip(results) {
        match e {
            Some(e) if !(name == NO_LINK_LOCAL && no_ipv6(&e)) => {
                anyhow::bail!("{name} on {ifname} inside the container: {e}")
            }
            _ => {}
        }
    }
    Ok(link.mac)
}

const NO_LINK_LOCAL: &str = "turn off its IPv6 link-local address";

/// Opens a netlink socket inside `ns` (a checked netns descriptor).
pub fn netlink_in(ns: BorrowedFd<'_>) -> Result<Netlink> {
    netns::netlink_in(ns).context("enter the container's network namespace")
}

/// Deletes a veth by its host end, if it is still the one with `index` (0: any); an absent
/// one is no error.
pub fn remove_veth(nl: &mut Netlink, name: &str, index: u32) -> Result<()> {
    let r = if index != 0 {
        nl.del_link(index)
    } else {
        nl.del_link_name(name)
    };
    match r {
        Ok(()) => Ok(()),
        Err(e) if is_gone(&e) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("delete veth {name}")),
    }
}

/// The MTU of the uplink: the interface of the main table's IPv4 default route (the lowest
/// ifindex when there are several), else 1500.
pub fn uplink_mtu(nl: &mut Netlink) -> u32 {
    let routes = nl.routes(false).unwrap_or_default();
    let Some(oif) = routes
        .iter()
        .filter(|r| r.dst_len == 0)
        .filter_map(|r| r.oif)
        .min()
    else {
        return 1500;
    };
    nl.links()
        .ok()
        .and_then(|ls| ls.into_iter().find(|l| l.index == oif).map(|l| l.mtu))
        .filter(|m| *m >= 1280)
        .unwrap_or(1500)
}
