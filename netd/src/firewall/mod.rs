//! netd's firewall: one nftables table of its own (family `inet`, name from the config), built
//! from netd's state, and a watcher that restores it after a ruleset flush. Kernel interfaces:
//! nf_tables through `nft -j` (the `nftables` crate; libnftables-json(5)), /proc/sys/net, and
//! NETLINK_NETFILTER events (NFNLGRP_NFTABLES) in `sys.rs`.
//!
//! # Rule layout
//!
//! ```text
//! table inet NAME {
//!   set bridges { type ifname }                      # every netd bridge
//!   set intra   { type ifname . ifname }             # "br . br" for each network
//!   set nets4   { type ipv4_addr; flags interval }   # netd's subnets
//!   set nets6   { type ipv6_addr; flags interval }
//!   # published ports, one element per port in an address map and a port map of the same key
//!   map dnat4_addr  { type inet_proto . inet_service : ipv4_addr }              # -p 8080:80
//!   map dnat4_port  { type inet_proto . inet_service : inet_service }
//!   map dnat4_haddr { type ipv4_addr . inet_proto . inet_service : ipv4_addr }  # -p HOSTIP:8080:80
//!   map dnat4_hport { type ipv4_addr . inet_proto . inet_service : inet_service }
//!   map dnat6_addr, dnat6_port, dnat6_haddr, dnat6_hport                          # the same for IPv6
//!
//!   chain raw_prerouting { type filter hook prerouting priority raw
//!     iifname != "lo" ip daddr 127.0.0.0/8 drop          # route_localnet opens nothing
//!   }
//!   chain prerouting { type nat hook prerouting priority dstnat
//!     fib daddr type local jump published                 # to any address of the host
//!   }
//!   chain output { type nat hook output priority -100
//!     fib daddr type local jump published                 # from the host itself, 127.0.0.1 too
//!   }
//!   chain published {
//!     meta nfproto ipv4 dnat ip to ip daddr . meta l4proto . th dport map @dnat4_haddr
//!                                : ip daddr . meta l4proto . th dport map @dnat4_hport
//!     meta nfproto ipv4 dnat ip to meta l4proto . th dport map @dnat4_addr
//!                                : meta l4proto . th dport map @dnat4_port
//!     (the same two for ipv6 with the dnat6 maps)
//!   }
//!   chain forward { type filter hook forward priority filter
//!     oifname @bridges ct status dnat accept              # published ports, from anywhere
//!     iifname . oifname @intra accept                     # inside one network
//!     iifname @bridges oifname @bridges drop              # networks isolated from each other
//!     iifname @bridges accept                             # leaving a network
//!     oifname @bridges ct state established,related accept
//!     oifname @bridges drop                               # nothing else reaches a container
//!   }
//!   chain postrouting { type nat hook postrouting priority srcnat
//!     oifname @bridges ip saddr 127.0.0.0/8 masquerade    # host's 127.0.0.1 -> container
//!     ct status dnat ip saddr @nets4 oifname @bridges masquerade   # hairpin
//!     ct status dnat ip6 saddr @nets6 oifname @bridges masquerade
//!     ip saddr @nets4 oifname != @bridges masquerade      # MASQUERADE leaving a network
//!     ip6 saddr @nets6 oifname != @bridges masquerade     # NAT66
//!   }
//! }
//! ```
//!
//! The rule count is fixed (18); networks and ports are set and map elements, added and deleted
//! incrementally. Each change is one `nft -j -f -` transaction: all of it or nothing.
//!
//! Why two maps per DNAT and not one map to `ipv4_addr . inet_service`: Debian 12's nft 1.0.6
//! writes such a map in JSON but cannot read it back ("Invalid map type" for the string form, a
//! plain set for the array form, and a segfault on the `dnat` rule that uses it). An address map
//! and a port map with the same key give the same single-rule DNAT through one lookup each.
//!
//! `[::1]` is refused (see [`PortBinding::checked`]); every other IPv6 host address works through
//! the same DNAT, `[::]` (no host address) meaning all of them.
//!
//! # Use from the service
//!
//! ```no_run
//! # fn main() -> Result<(), netd::firewall::FwError> {
//! use std::sync::Arc;
//! use netd::firewall::{Firewall, FwState, Network, PortBinding, Proto};
//! let fw = Arc::new(Firewall::new("rbox")?);
//! fw.rebuild(FwState::default())?;                // at start: the whole table from the state
//! let _watch = netd::firewall::watch(fw.clone())?; // restores it after `nft flush ruleset`
//! fw.add_network(&Network { bridge: "rbox0".into(), subnet4: Some("10.88.0.0/16".parse().unwrap()), subnet6: None })?;
//! fw.add_ports(&[PortBinding { proto: Proto::Tcp, host_ip: None, host_port: 8080, addr: "10.88.0.2".parse().unwrap(), port: 80 }])?;
//! for w in fw.foreign_drops()? { eprintln!("warning: {}", w.warning()); }
//! # Ok(()) }
//! ```
//!
//! Hairpin needs one thing outside this table: the container's bridge port in hairpin mode
//! (IFLA_BRPORT_MODE, `bridge link set dev VETH hairpin on`). Where br_netfilter is loaded, a
//! container reaching its own published port is bridged back out of the port it came in on,
//! which a bridge does only in that mode. Attach sets it.
//!
//! Attaching a container without ports changes nothing in the table; publishing and
//! unpublishing its ports does ([`Firewall::add_ports`], [`Firewall::remove_ports`]).

mod apply;
mod foreign;
mod model;
mod rules;
mod sys;
mod sysctl;
mod watch;

use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};

pub use foreign::ForeignDrop;
pub use model::{FwState, Network, PortBinding, Proto, IFNAME_MAX};
pub use watch::{watch, Watcher};

/// What the firewall refuses or fails at, each one line naming the object.
#[derive(Debug, thiserror::Error)]
pub enum FwError {
    #[error("nft table name {0:?}: use 1 to 64 letters, digits, '_' or '-'")]
    TableName(String),
    #[error("bridge name {0:?}: use 1 to 15 letters, digits, '-', '_' or '.'")]
    Bridge(String),
    #[error("network on bridge {0} is already in the firewall")]
    NetworkExists(String),
    #[error("no network on bridge {0} in the firewall")]
    NoNetwork(String),
    #[error("port {0}: {1}")]
    Port(PortBinding, &'static str),
    #[error("port {0} is already published as {1}")]
    PortTaken(PortBinding, PortBinding),
    #[error("port {0} is not published")]
    NotPublished(PortBinding),
    #[error("nft {0} netd's table: {1}")]
    Nft(&'static str, String),
    #[error("sysctl {0}: {1}")]
    Sysctl(String, std::io::Error),
    #[error("nftables event socket: {0}")]
    Events(std::io::Error),
}

/// netd's nftables table and the model it is built from. Every method takes an internal lock,
/// so the watcher's restore never interleaves with a change.
pub struct Firewall {
    table: String,
    state: Mutex<Model>,
}

struct Model {
    fw: FwState,
    /// After [`Firewall::delete`], the watcher no longer restores anything.
    deleted: bool,
}

impl Firewall {
    /// A firewall for table `inet NAME`. Nothing is sent to the kernel before [`Self::rebuild`].
    pub fn new(table: &str) -> Result<Self, FwError> {
        let ok = !table.is_empty()
            && table.len() <= 64
            && table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(FwError::TableName(table.to_string()));
        }
        Ok(Firewall {
            table: table.to_string(),
            state: Mutex::new(Model {
                fw: FwState::default(),
                deleted: false,
            }),
        })
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn lock(&self) -> MutexGuard<'_, Model> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the table by one built from `state` in one transaction, turns on forwarding
    /// (IPv6 too when a network has an IPv6 subnet) and `route_localnet` on every bridge.
    /// Returns notes for the log (uplinks whose `accept_ra` went to 2, bridges whose
    /// `route_localnet` could not be set). On error the kernel keeps the table it had.
    pub fn rebuild(&self, state: FwState) -> Result<Vec<String>, FwError> {
        for n in &state.networks {
            n.check()?;
        }
        let mut checked = Vec::with_capacity(state.ports.len());
        for p in &state.ports {
            let p = p.checked()?;
            if let Some(q) = checked.iter().find(|q: &&PortBinding| q.overlaps(&p)) {
                return Err(FwError::PortTaken(p, *q));
            }
            checked.push(p);
        }
        let state = FwState {
            networks: state.networks,
            ports: checked,
        };
        let mut m = self.lock();
        apply::rebuild(&self.table, &state)?;
        let mut notes =
            sysctl::enable_forwarding(state.networks.iter().any(|n| n.subnet6.is_some()))?;
        for n in &state.networks {
            if let Err(e) = sysctl::set_route_localnet(&n.bridge) {
                notes.push(e.to_string());
            }
        }
        m.fw = state;
        m.deleted = false;
        Ok(notes)
    }

    /// Adds a network's bridge and subnets (set elements), sets `route_localnet` on its bridge
    /// (which must exist) and turns on forwarding. Returns notes as [`Self::rebuild`].
    pub fn add_network(&self, net: &Network) -> Result<Vec<String>, FwError> {
        net.check()?;
        let mut m = self.lock();
        if m.fw.networks.iter().any(|n| n.bridge == net.bridge) {
            return Err(FwError::NetworkExists(net.bridge.clone()));
        }
        sysctl::set_route_localnet(&net.bridge)?;
        let notes = sysctl::enable_forwarding(net.subnet6.is_some())?;
        apply::elements(rules::network_elements(&self.table, net), true)?;
        m.fw.networks.push(net.clone());
        Ok(notes)
    }

    /// Removes a network's elements. Its published ports are the caller's to remove first.
    pub fn remove_network(&self, bridge: &str) -> Result<(), FwError> {
        let mut m = self.lock();
        let i =
            m.fw.networks
                .iter()
                .position(|n| n.bridge == bridge)
                .ok_or_else(|| FwError::NoNetwork(bridge.to_string()))?;
        apply::elements(
            rules::network_elements(&self.table, &m.fw.networks[i]),
            false,
        )?;
        m.fw.networks.remove(i);
        Ok(())
    }

    /// Publishes ports (map elements), all of them or none: a port already published on the
    /// same protocol, host port and family (and host address, or all addresses) is refused.
    pub fn add_ports(&self, ports: &[PortBinding]) -> Result<(), FwError> {
        let mut m = self.lock();
        let mut new: Vec<PortBinding> = Vec::with_capacity(ports.len());
        for p in ports {
            let p = p.checked()?;
            if let Some(q) = m.fw.ports.iter().chain(new.iter()).find(|q| q.overlaps(&p)) {
                return Err(FwError::PortTaken(p, *q));
            }
            new.push(p);
        }
        apply::elements(rules::port_elements(&self.table, &new), true)?;
        m.fw.ports.extend(new);
        Ok(())
    }

    /// Unpublishes ports, all of them or none; each must be published.
    pub fn remove_ports(&self, ports: &[PortBinding]) -> Result<(), FwError> {
        let mut m = self.lock();
        let mut gone = Vec::with_capacity(ports.len());
        for p in ports {
            let p = p.checked()?;
            if !m.fw.ports.contains(&p) || gone.contains(&p) {
                return Err(FwError::NotPublished(p));
            }
            gone.push(p);
        }
        apply::elements(rules::port_keys(&self.table, &gone), false)?;
        m.fw.ports.retain(|p| !gone.contains(p));
        Ok(())
    }

    /// Unpublishes every port whose DNAT target is `addr` (a container going away).
    pub fn remove_ports_of(&self, addr: IpAddr) -> Result<Vec<PortBinding>, FwError> {
        let ports: Vec<PortBinding> = self
            .lock()
            .fw
            .ports
            .iter()
            .filter(|p| p.addr == addr)
            .copied()
            .collect();
        self.remove_ports(&ports)?;
        Ok(ports)
    }

    /// A copy of the model the table is built from.
    pub fn state(&self) -> FwState {
        self.lock().fw.clone()
    }

    /// What differs between the kernel's table and the model, `None` when it is intact.
    pub fn damage(&self) -> Result<Option<String>, FwError> {
        let m = self.lock();
        apply::damage(&self.table, &m.fw)
    }

    /// Rebuilds the table from the model when it is damaged (flushed, deleted, emptied).
    /// Returns what was wrong, `None` when nothing was (or after [`Self::delete`]).
    pub fn restore_if_damaged(&self) -> Result<Option<String>, FwError> {
        let m = self.lock();
        if m.deleted {
            return Ok(None);
        }
        let Some(what) = apply::damage(&self.table, &m.fw)? else {
            return Ok(None);
        };
        apply::rebuild(&self.table, &m.fw)?;
        Ok(Some(what))
    }

    /// Deletes the table (`netd down`); the watcher stops restoring it. Sysctls stay as they
    /// are: other services may rely on forwarding.
    pub fn delete(&self) -> Result<(), FwError> {
        let mut m = self.lock();
        m.deleted = true;
        apply::delete(&self.table)?;
        m.fw = FwState::default();
        Ok(())
    }

    /// Forward chains of other tables that drop by default: print [`ForeignDrop::warning`] at
    /// start and in a status reply.
    pub fn foreign_drops(&self) -> Result<Vec<ForeignDrop>, FwError> {
        foreign::find(&self.table)
    }

    /// The number of rules in the kernel's table (18 whatever the ports), for tests and benches.
    pub fn kernel_rule_count(&self) -> Result<usize, FwError> {
        let objs = apply::list(&["table", "inet", &self.table])?.unwrap_or_default();
        Ok(objs.iter().filter(|o| o.get("rule").is_some()).count())
    }
}
