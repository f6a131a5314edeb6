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
//! incrementally. Each change is one `nft -j -f -` transaction: all of it or nothing. The `nft`
//! process of the next change is started while one works and waits on its stdin (`apply::Nft`),
//! so a change waits for nft's work but not for its exec and set-up.
//!
//! Why two maps per DNAT and not one map to `ipv4_addr . inet_service`: Debian 12's nft 1.0.6
//! writes such a map in JSON but cannot read it back ("Invalid map type" for the string form, a
//! plain set for the array form, and a segfault on the `dnat` rule that uses it). An address map
//! and a port map with the same key give the same single-rule DNAT through one lookup each.
//!
//! `[::1]` is refused (see [`PortBinding::checked`]); every other IPv6 host address works through
//! the same DNAT, `[::]` (no host address) meaning all of them.
//!
//! # Use from the service (the seam in lib.rs)
//!
//! The core builds a [`FirewallView`] of its state and calls, under its own lock:
//! [`Firewall::rebuild`] at start (and after a flush), [`Firewall::add_network`] /
//! [`Firewall::remove_network`], [`Firewall::add_ports`] / [`Firewall::remove_ports`] at attach
//! and detach, [`Firewall::teardown`] for `netd down`. [`Firewall::watch`] starts the
//! NFNLGRP_NFTABLES watcher, which calls back when netd's table was damaged (within
//! milliseconds of a flush); the core then calls `rebuild`. Every method takes `&self` and an
//! internal lock, so the watcher's check never sees half a change.
//!
//! Hairpin needs no bridge port in hairpin mode (IFLA_BRPORT_MODE): a container reaching a
//! published port through a host address sends to the bridge's own MAC, so the host routes the
//! packet (DNAT in prerouting) and sends it out of the bridge to the target's port, also when
//! the target is the sender; nothing is bridged back out of the port it came in on. The
//! firewall tests prove it with br_netfilter loaded (a container through its own port).
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

use std::sync::{Arc, Mutex, MutexGuard};

pub use foreign::ForeignDrop;
pub use model::{FwState, Network, PortBinding, IFNAME_MAX};

use crate::view::{FirewallView, NetView, PortView};

/// Settings the firewall gets from netd's config.
#[derive(Debug, Clone)]
pub struct FirewallConfig {
    /// The nftables table (family inet) netd owns; nothing else is touched.
    pub table: String,
    /// Every bridge netd makes starts with this (named in the foreign-drop warning's fix).
    pub bridge_prefix: String,
}

/// What the firewall refuses or fails at, each one line naming the object.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("nft table name {0:?}: use 1 to 64 letters, digits, '_' or '-'")]
    TableName(String),
    #[error("bridge name {0:?}: use 1 to 15 letters, digits, '-', '_' or '.'")]
    Bridge(String),
    #[error("port {0}: {1}")]
    Port(PortView, &'static str),
    #[error("port {0} is already published as {1}")]
    PortTaken(PortView, PortView),
    #[error("nft {0} netd's table: {1}")]
    Nft(&'static str, String),
    #[error("sysctl {0}: {1}")]
    Sysctl(String, std::io::Error),
    #[error("nftables event socket: {0}")]
    Events(std::io::Error),
}

/// netd's nftables table, the model it is built from, and its watcher.
pub struct Firewall {
    inner: Arc<Inner>,
    watcher: Mutex<Option<watch::Watcher>>,
}

struct Inner {
    table: String,
    bridge_prefix: String,
    model: Mutex<Model>,
    /// Runs the transactions (`nft -j -f -`), one started ahead of each.
    nft: apply::Nft,
}

struct Model {
    fw: FwState,
    /// The table was built by this firewall ([`Firewall::rebuild`]); before, a change builds it.
    built: bool,
    /// Set by [`Firewall::teardown`]: the watcher no longer reports the table gone.
    torn_down: bool,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What is wrong with the kernel's table, `None` when intact or after teardown.
    fn damage(&self) -> Result<Option<String>, FirewallError> {
        let m = self.lock();
        if m.torn_down || !m.built {
            return Ok(None);
        }
        apply::damage(&self.table, &m.fw)
    }
}

impl Firewall {
    /// Checks the config; nothing is sent to the kernel before [`Self::rebuild`].
    pub fn new(cfg: FirewallConfig) -> Result<Firewall, FirewallError> {
        let t = &cfg.table;
        let ok = !t.is_empty()
            && t.len() <= 64
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(FirewallError::TableName(t.clone()));
        }
        let inner = Inner {
            table: cfg.table,
            bridge_prefix: cfg.bridge_prefix,
            model: Mutex::new(Model {
                fw: FwState::default(),
                built: false,
                torn_down: false,
            }),
            nft: apply::Nft::new(),
        };
        Ok(Firewall {
            inner: Arc::new(inner),
            watcher: Mutex::new(None),
        })
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.inner.table
    }

    /// Replaces the table by one built from `view` in one transaction, turns on forwarding
    /// (IPv6 too when a network has an IPv6 subnet), `accept_ra=2` on IPv6 uplinks where it was
    /// 1, and `route_localnet` on every bridge. Returns warnings to log: what changed on the
    /// uplinks, and forward chains of other tables that drop by default (naming the table).
    /// On error the kernel keeps the table it had.
    pub fn rebuild(&self, view: &FirewallView) -> Result<Vec<String>, FirewallError> {
        let state = FwState::from(view);
        for n in &state.networks {
            n.check()?;
        }
        let mut checked: Vec<PortView> = Vec::with_capacity(state.ports.len());
        for p in &state.ports {
            let p = p.checked()?;
            if let Some(q) = checked.iter().find(|q| q.overlaps(&p)) {
                return Err(FirewallError::PortTaken(p, *q));
            }
            checked.push(p);
        }
        let state = FwState {
            networks: state.networks,
            ports: checked,
        };
        let mut m = self.inner.lock();
        apply::rebuild(&self.inner.nft, &self.inner.table, &state)?;
        let mut warnings =
            sysctl::enable_forwarding(state.networks.iter().any(|n| n.subnet6.is_some()))?;
        for n in &state.networks {
            if let Err(e) = sysctl::set_route_localnet(&n.bridge) {
                warnings.push(e.to_string());
            }
        }
        m.fw = state;
        m.built = true;
        m.torn_down = false;
        drop(m);
        match self.foreign_drops() {
            Ok(found) => {
                warnings.extend(found.iter().map(|f| f.warning(&self.inner.bridge_prefix)))
            }
            Err(e) => warnings.push(format!("looking for drop policies in other tables: {e}")),
        }
        Ok(warnings)
    }

    /// A network (its bridge exists, with its addresses) was added: its bridge and subnets
    /// become set elements, `route_localnet` is set on its bridge, forwarding turned on.
    /// Returns warnings as [`Self::rebuild`] (uplinks changed). `_view` includes `net`.
    pub fn add_network(
        &self,
        net: &NetView,
        _view: &FirewallView,
    ) -> Result<Vec<String>, FirewallError> {
        let net = Network::from(net);
        net.check()?;
        let mut m = self.inner.lock();
        if m.fw.networks.iter().any(|n| n.bridge == net.bridge) {
            return Ok(Vec::new());
        }
        sysctl::set_route_localnet(&net.bridge)?;
        let warnings = sysctl::enable_forwarding(net.subnet6.is_some())?;
        if m.built {
            apply::elements(
                &self.inner.nft,
                rules::network_elements(&self.inner.table, &net),
                true,
            )?;
            m.fw.networks.push(net);
        } else {
            // Before the first rebuild there is no table to add to: build it with this network.
            let mut fw = m.fw.clone();
            fw.networks.push(net);
            apply::rebuild(&self.inner.nft, &self.inner.table, &fw)?;
            m.fw = fw;
            m.built = true;
        }
        Ok(warnings)
    }

    /// A network is going away: its elements are deleted. Its published ports are removed
    /// first by the core (detach). A network the firewall does not hold is no error.
    pub fn remove_network(&self, net: &NetView, _view: &FirewallView) -> Result<(), FirewallError> {
        let mut m = self.inner.lock();
        let Some(i) = m.fw.networks.iter().position(|n| n.bridge == net.bridge) else {
            return Ok(());
        };
        apply::elements(
            &self.inner.nft,
            rules::network_elements(&self.inner.table, &m.fw.networks[i]),
            false,
        )?;
        m.fw.networks.remove(i);
        Ok(())
    }

    /// Publishes ports (map elements), all of them or none: a port already published on the
    /// same protocol, host port and family (and host address, or all addresses) is refused, and
    /// so is `[::1]` ([`PortView::checked`]).
    pub fn add_ports(&self, ports: &[PortView]) -> Result<(), FirewallError> {
        let mut m = self.inner.lock();
        let mut new: Vec<PortView> = Vec::with_capacity(ports.len());
        for p in ports {
            let p = p.checked()?;
            if let Some(q) = m.fw.ports.iter().chain(new.iter()).find(|q| q.overlaps(&p)) {
                return Err(FirewallError::PortTaken(p, *q));
            }
            new.push(p);
        }
        if m.built {
            apply::elements(
                &self.inner.nft,
                rules::port_elements(&self.inner.table, &new),
                true,
            )?;
            m.fw.ports.extend(new);
        } else {
            let mut fw = m.fw.clone();
            fw.ports.extend(new);
            apply::rebuild(&self.inner.nft, &self.inner.table, &fw)?;
            m.fw = fw;
            m.built = true;
        }
        Ok(())
    }

    /// Unpublishes ports, all of them or none; ports not published are no error.
    pub fn remove_ports(&self, ports: &[PortView]) -> Result<(), FirewallError> {
        let mut m = self.inner.lock();
        let mut gone: Vec<PortView> = Vec::with_capacity(ports.len());
        for p in ports {
            let Ok(p) = p.checked() else { continue };
            if m.fw.ports.contains(&p) && !gone.contains(&p) {
                gone.push(p);
            }
        }
        if m.built {
            apply::elements(
                &self.inner.nft,
                rules::port_keys(&self.inner.table, &gone),
                false,
            )?;
        }
        m.fw.ports.retain(|p| !gone.contains(p));
        Ok(())
    }

    /// `netd down`: deletes netd's table (and only it); the watcher stops reporting. Sysctls
    /// stay as they are: other services may rely on forwarding.
    pub fn teardown(&self) -> Result<(), FirewallError> {
        let mut m = self.inner.lock();
        m.torn_down = true;
        apply::delete(&self.inner.nft, &self.inner.table)?;
        m.fw = FwState::default();
        m.built = false;
        Ok(())
    }

    /// Starts watching nftables events (NFNLGRP_NFTABLES) in the calling thread's network
    /// namespace: `on_gone` is called from the watcher's thread, without any lock of the
    /// firewall held, when netd's table was damaged (flushed, deleted, emptied by someone
    /// else); the caller then calls [`Self::rebuild`]. The watcher stops when the firewall is
    /// dropped. A second call replaces the first watcher.
    pub fn watch(&self, on_gone: Box<dyn Fn() + Send + 'static>) -> Result<(), FirewallError> {
        let w = watch::spawn(self.inner.clone(), on_gone)?;
        *self.watcher.lock().unwrap_or_else(|p| p.into_inner()) = Some(w);
        Ok(())
    }

    /// What differs between the kernel's table and the model, `None` when it is intact.
    pub fn damage(&self) -> Result<Option<String>, FirewallError> {
        self.inner.damage()
    }

    /// A copy of the model the table is built from.
    pub fn state(&self) -> FwState {
        self.inner.lock().fw.clone()
    }

    /// Forward chains of other tables that drop by default ([`ForeignDrop::warning`]): for a
    /// status request; [`Self::rebuild`] returns them as warnings too.
    pub fn foreign_drops(&self) -> Result<Vec<ForeignDrop>, FirewallError> {
        foreign::find(&self.inner.table)
    }

    /// The number of rules in the kernel's table (constant whatever the ports), for tests and
    /// benchmarks.
    pub fn kernel_rule_count(&self) -> Result<usize, FirewallError> {
        let objs = apply::list(&["table", "inet", &self.inner.table])?.unwrap_or_default();
        Ok(objs.iter().filter(|o| o.get("rule").is_some()).count())
    }
}
