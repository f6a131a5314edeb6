//! The state netd serves from, behind one mutex: networks, attachments (leases), the host's
//! netlink socket, the firewall and the DNS responder; dispatching requests to `attach` and
//! `networks`, and releasing leases whose veth vanished. No kernel interface of its own.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, Result};
use ipnet::Ipv6Net;
use netd_proto::{ErrorKind, Reply, Request, StatusInfo, VERSION};

use crate::auth::{Fail, Peer};
use crate::config::Config;
use crate::dns::{Dns, DnsConfig};
use crate::firewall::{Firewall, FirewallConfig};
use crate::store::{AttachRec, NetworkRec, Store};
use crate::sys::netlink::Netlink;
use crate::view::{DnsNetView, DnsView, FirewallView, NetView, PortView};
use crate::{links, sys};

/// A network with its bridge's ifindex.
#[derive(Debug, Clone)]
pub struct Net {
    pub rec: NetworkRec,
    pub bridge_index: u32,
}

/// Everything netd holds.
pub struct Core {
    pub cfg: Config,
    pub store: Store,
    pub nl: Netlink,
    /// netd's own netns (device, inode): never attached.
    pub own_ns: (u64, u64),
    /// The uplink's MTU, given to every veth.
    pub mtu: u32,
    /// Where `--ipv6` networks without `--subnet6` get their /64.
    pub ula: Ipv6Net,
    pub networks: BTreeMap<String, Net>,
    /// By host veth name.
    pub atts: BTreeMap<String, AttachRec>,
    /// Attachments a detach is deleting (their leases stay taken until it is done).
    pub releasing: std::collections::BTreeSet<String>,
    pub fw: Firewall,
    pub dns: Dns,
}

/// The core, shared by the connection threads and the watchers.
pub type Shared = Arc<Mutex<Core>>;

/// Locks the core; a thread that panicked while holding it (a bug) does not stop the others.
pub fn lock(s: &Shared) -> MutexGuard<'_, Core> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

impl Core {
    /// Opens what netd needs; changes nothing in the kernel ([`crate::reconcile::start`] does).
    pub fn new(cfg: Config, store: Store) -> Result<Core> {
        let mut nl = Netlink::open().context("open a NETLINK_ROUTE socket")?;
        let own = std::fs::File::open("/proc/self/ns/net").context("open /proc/self/ns/net")?;
        let own_ns = sys::netns::ns_id(std::os::fd::AsFd::as_fd(&own))?;
        let mtu = links::uplink_mtu(&mut nl);
        let ula = match cfg.pool6 {
            Some(p) => p,
            None => store.ula_prefix()?,
        };
        let fw = Firewall::new(FirewallConfig {
            table: cfg.table.clone(),
            bridge_prefix: cfg.bridge_prefix.clone(),
        })
        .map_err(|e| anyhow::anyhow!("firewall: {e}"))?;
        let dns = Dns::new(DnsConfig {
            upstreams: cfg.upstreams(),
        })
        .map_err(|e| anyhow::anyhow!("dns: {e}"))?;
        Ok(Core {
            cfg,
            store,
            nl,
            own_ns,
            mtu,
            ula,
            networks: BTreeMap::new(),
            atts: BTreeMap::new(),
            releasing: Default::default(),
            fw,
            dns,
        })
    }

    /// Answers one request.
    pub fn handle(&mut self, peer: &Peer, req: Request, fds: Vec<OwnedFd>) -> Reply {
        let op = req.op();
        if !matches!(req, Request::Attach(_)) && !fds.is_empty() {
            return Reply::error(
                ErrorKind::BadRequest,
                format!("{op} takes no descriptor: only attach carries one"),
            );
        }
        let r = match req {
            Request::Attach(a) => self.attach(peer, a, fds).map(Reply::Attached),
            Request::Detach(_) => Err(Fail::internal(anyhow::anyhow!(
                "detach is served by attach::detach, outside the lock"
            ))),
            Request::NetworkCreate(c) => self.network_create(peer, c).map(Reply::Network),
            Request::NetworkList {} => Ok(Reply::Networks(self.network_list())),
            Request::NetworkInspect { name } => self.network_inspect(&name).map(Reply::Network),
            Request::NetworkRemove { name } => self
                .network_remove(peer, &name)
                .map(|()| Reply::Removed { name }),
            Request::Status {} => Ok(Reply::Status(self.status())),
        };
        match r {
            Ok(reply) => reply,
            Err(f) => {
                tracing::info!(uid = peer.uid, "{op} refused: {}", f.message);
                Reply::Error(netd_proto::ErrorReply {
                    kind: f.kind,
                    message: f.message,
                })
            }
        }
    }

    fn status(&self) -> StatusInfo {
        StatusInfo {
            version: env!("CARGO_PKG_VERSION").into(),
            protocol: VERSION,
            table: self.cfg.table.clone(),
            networks: self.networks.len() as u32,
            attachments: self.atts.len() as u32,
        }
    }

    /// The veth `name` (ifindex `index`) is gone: its namespace ended without a detach.
    /// Releases its lease, ports and names, if the record is still that veth's.
    pub fn vanished(&mut self, name: &str, index: u32) {
        let Some(a) = self.atts.get(name) else { return };
        if a.host_index != index || !a.ready {
            return;
        }
        let a = a.clone();
        tracing::debug!(
            "released {} of container {} on {}: its network namespace is gone",
            a.ipv4,
            a.container_name,
            a.network
        );
        self.release(&a);
    }

    /// After lost link events: releases every attachment whose veth is no longer there.
    pub fn rescan(&mut self) {
        let Ok(links) = self.nl.links() else { return };
        let gone: Vec<AttachRec> = self
            .atts
            .values()
            .filter(|a| {
                a.ready
                    && !links
                        .iter()
                        .any(|l| l.index == a.host_index && l.name == a.host_ifname)
            })
            .cloned()
            .collect();
        for a in gone {
            tracing::info!(
                "released {} of container {}: its veth is gone",
                a.ipv4,
                a.container_name
            );
            self.release(&a);
        }
    }

    /// Forgets an attachment whose veth is gone: ports, record, names.
    pub fn release(&mut self, a: &AttachRec) {
        // A detach in progress removed the ports already.
        if !self.releasing.contains(&a.host_ifname) {
            let ports = self.port_views(a);
            if let Err(e) = self.fw.remove_ports(&ports) {
                tracing::warn!("firewall: {e}");
            }
        }
        if let Err(e) = self.store.remove_attachment(&a.host_ifname) {
            tracing::warn!("{e:#}");
        }
        self.atts.remove(&a.host_ifname);
        self.update_dns();
    }

    /// The firewall's table vanished (a flush): rebuild it from the state.
    pub fn rebuild_firewall(&mut self) {
        let view = self.fw_view();
        match self.fw.rebuild(&view) {
            Ok(warnings) => {
                for w in warnings {
                    tracing::warn!("{w}");
                }
                tracing::info!("nftables table {} restored", self.cfg.table);
            }
            Err(e) => tracing::error!("restoring nftables table {}: {e}", self.cfg.table),
        }
    }

    // ---- views for the firewall and the DNS responder

    pub fn net_view(n: &NetworkRec) -> NetView {
        NetView {
            name: n.name.clone(),
            bridge: n.bridge.clone(),
            subnet4: n.subnet,
            gateway4: n.gateway,
            subnet6: n.subnet6,
            gateway6: n.gateway6,
            isolated: !n.default,
        }
    }

    /// The DNAT mappings of one attachment (one per family for a port on every address).
    pub fn port_views(&self, a: &AttachRec) -> Vec<PortView> {
        let mut out = Vec::new();
        for p in &a.ports {
            let mut push = |addr: IpAddr| {
                out.push(PortView {
                    proto: p.proto,
                    host_ip: p.host_ip,
                    host_port: p.host_port,
                    addr,
                    port: p.port,
                })
            };
            match p.host_ip {
                Some(IpAddr::V4(_)) => push(IpAddr::V4(a.ipv4)),
                Some(IpAddr::V6(_)) => {
                    if let Some(v6) = a.ipv6 {
                        push(IpAddr::V6(v6))
                    }
                }
                None => {
                    push(IpAddr::V4(a.ipv4));
                    if let Some(v6) = a.ipv6 {
                        push(IpAddr::V6(v6));
                    }
                }
            }
        }
        out
    }

    pub fn fw_view(&self) -> FirewallView {
        FirewallView {
            networks: self
                .networks
                .values()
                .map(|n| Core::net_view(&n.rec))
                .collect(),
            ports: self
                .atts
                .values()
                .filter(|a| a.ready && !self.releasing.contains(&a.host_ifname))
                .flat_map(|a| self.port_views(a))
                .collect(),
        }
    }

    pub fn dns_view(&self) -> DnsView {
        let mut networks = Vec::new();
        for n in self.networks.values().filter(|n| !n.rec.default) {
            let mut records: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
            for a in self
                .atts
                .values()
                .filter(|a| a.ready && a.network == n.rec.name)
            {
                let mut ips = vec![IpAddr::V4(a.ipv4)];
                ips.extend(a.ipv6.map(IpAddr::V6));
                for name in std::iter::once(&a.container_name).chain(&a.aliases) {
                    records
                        .entry(name.to_ascii_lowercase())
                        .or_default()
                        .extend(ips.iter().copied());
                }
            }
            let mut listen = vec![IpAddr::V4(n.rec.gateway)];
            listen.extend(n.rec.gateway6.map(IpAddr::V6));
            networks.push(DnsNetView {
                network: n.rec.name.clone(),
                bridge: n.rec.bridge.clone(),
                listen,
                records,
            });
        }
        DnsView { networks }
    }

    pub fn update_dns(&mut self) {
        let view = self.dns_view();
        if let Err(e) = self.dns.update(&view) {
            tracing::warn!("dns: {e}");
        }
    }

    /// Attachments of uid `uid`.
    pub fn count_of(&self, uid: u32) -> usize {
        self.atts.values().filter(|a| a.owner_uid == uid).count()
    }

    /// Turns a failure into the client's reply words.
    pub fn fail<T>(r: Result<T>) -> Result<T, Fail> {
        r.map_err(Fail::internal)
    }
}
