//! Networks: the default `bridge` and user networks (create, ls, inspect, rm), each a Linux
//! bridge holding its gateway addresses. Subnets never overlap another network or a host
//! route (default routes don't count). Kernel interface: rtnetlink(7) through `links`.

use ipnet::{IpNet, Ipv4Net};
use netd_proto::{check_name, Endpoint, ErrorKind, NetworkCreateRequest, NetworkInfo};

use crate::auth::{self, Fail, Peer};
use crate::core::{Core, Net};
use crate::ipam::{self, Taken};
use crate::links;
use crate::store::NetworkRec;

/// The default network's name, as in Docker.
pub const DEFAULT_NETWORK: &str = "bridge";
/// Names `--net` gives other meanings.
const RESERVED: [&str; 4] = ["bridge", "host", "none", "default"];

impl Core {
    /// Subnets in use: netd's networks and the host's routes, but default routes and the
    /// routes of netd's own bridges.
    pub fn taken(&mut self) -> anyhow::Result<Vec<Taken>> {
        let mut taken: Vec<Taken> = Vec::new();
        for n in self.networks.values() {
            taken.push(Taken::Network {
                name: n.rec.name.clone(),
                subnet: IpNet::V4(n.rec.subnet),
            });
            if let Some(s6) = n.rec.subnet6 {
                taken.push(Taken::Network {
                    name: n.rec.name.clone(),
                    subnet: IpNet::V6(s6),
                });
            }
        }
        let links = self.nl.links()?;
        let ours: Vec<u32> = self.networks.values().map(|n| n.bridge_index).collect();
        for v6 in [false, true] {
            for r in self.nl.routes(v6)? {
                let (Some(dst), false) = (r.dst, r.dst_len == 0) else {
                    continue;
                };
                if r.oif.is_some_and(|i| ours.contains(&i)) {
                    continue;
                }
                let Ok(net) = IpNet::new(dst, r.dst_len) else {
                    continue;
                };
                // fe80::/64 is on every IPv6 link and never collides with a ULA.
                if matches!(net, IpNet::V6(n) if n.network().segments()[0] & 0xffc0 == 0xfe80) {
                    continue;
                }
                let dev = r
                    .oif
                    .and_then(|i| links.iter().find(|l| l.index == i))
                    .map(|l| l.name.clone())
                    .unwrap_or_else(|| "?".into());
                taken.push(Taken::Route { dst: net, dev });
            }
        }
        Ok(taken)
    }

    /// The default network's record: the stored one, else the configured subnet, else (when
    /// that collides with a host route) the next free one from the pool, as Docker does.
    pub fn default_network(&mut self) -> anyhow::Result<NetworkRec> {
        if let Some(n) = self.networks.get(DEFAULT_NETWORK) {
            return Ok(n.rec.clone());
        }
        let taken = self.taken()?;
        let want = self.cfg.default_subnet;
        let subnet = match ipam::conflict(IpNet::V4(want), &taken) {
            None => want,
            Some(c) => {
                let pick = ipam::pick_subnet4(self.cfg.pool, self.cfg.pool_prefix, &taken)
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "the default subnet {want} overlaps {} and the pool {} has no free /{}: set default_subnet in netd's config",
                            c.describe(),
                            self.cfg.pool,
                            self.cfg.pool_prefix
                        )
                    })?;
                tracing::warn!(
                    "default subnet {want} overlaps {}: the default network uses {pick}",
                    c.describe()
                );
                pick
            }
        };
        Ok(NetworkRec {
            name: DEFAULT_NETWORK.into(),
            bridge: format!("{}0", self.cfg.bridge_prefix),
            subnet,
            gateway: ipam::gateway4(subnet),
            subnet6: None,
            gateway6: None,
            default: true,
        })
    }

    pub(crate) fn network_create(
        &mut self,
        peer: &Peer,
        req: NetworkCreateRequest,
    ) -> Result<NetworkInfo, Fail> {
        auth::check_admin(peer, "network create")?;
        check_name("network name", &req.name).map_err(Fail::bad)?;
        if RESERVED.contains(&req.name.as_str()) || self.networks.contains_key(&req.name) {
            return Err(Fail::new(
                ErrorKind::Conflict,
                format!("network {} exists already: choose another name", req.name),
            ));
        }
        if req.subnet6.is_some() && !req.ipv6 {
            return Err(Fail::bad("--subnet6 needs --ipv6"));
        }
        let taken = Core::fail(self.taken())?;
        let subnet = match req.subnet {
            Some(s) => {
                check_subnet4(s)?;
                if let Some(c) = ipam::conflict(IpNet::V4(s), &taken) {
                    return Err(Fail::new(
                        ErrorKind::Conflict,
                        format!(
                            "subnet {s} overlaps {}: choose another --subnet",
                            c.describe()
                        ),
                    ));
                }
                s
            }
            None => ipam::pick_subnet4(self.cfg.pool, self.cfg.pool_prefix, &taken).ok_or_else(
                || {
                    Fail::new(
                        ErrorKind::Limit,
                        format!(
                            "no free /{} left in the pool {}: pass --subnet",
                            self.cfg.pool_prefix, self.cfg.pool
                        ),
                    )
                },
            )?,
        };
        let subnet6 = match (req.ipv6, req.subnet6) {
            (false, _) => None,
            (true, Some(s6)) => {
                if s6 != s6.trunc()
                    || 128 - u32::from(s6.prefix_len()) < 32 - u32::from(subnet.prefix_len())
                {
                    return Err(Fail::bad(format!(
                        "--subnet6 {s6}: use a network address with room for the IPv4 subnet's hosts (e.g. a /64)"
                    )));
                }
                if let Some(c) = ipam::conflict(IpNet::V6(s6), &taken) {
                    return Err(Fail::new(
                        ErrorKind::Conflict,
                        format!(
                            "subnet {s6} overlaps {}: choose another --subnet6",
                            c.describe()
                        ),
                    ));
                }
                Some(s6)
            }
            (true, None) => Some(ipam::pick_subnet6(self.ula, &taken).ok_or_else(|| {
                Fail::new(
                    ErrorKind::Limit,
                    format!("no free /64 left in {}", self.ula),
                )
            })?),
        };
        let rec = NetworkRec {
            name: req.name.clone(),
            bridge: self.new_bridge_name(),
            subnet,
            gateway: ipam::gateway4(subnet),
            subnet6,
            gateway6: subnet6.map(ipam::gateway6),
            default: false,
        };
        self.add_network(rec.clone(), true)?;
        self.update_dns();
        tracing::info!(
            "network {} created: {} on {}",
            rec.name,
            rec.subnet,
            rec.bridge
        );
        Ok(self.info(&rec, false))
    }

    /// Saves, makes the bridge and (with `firewall`; at start-up the table is built after)
    /// tells the firewall; all or nothing.
    pub fn add_network(&mut self, rec: NetworkRec, firewall: bool) -> Result<(), Fail> {
        Core::fail(self.store.save_network(&rec))?;
        let index = match links::ensure_bridge(&mut self.nl, &rec, self.mtu) {
            Ok(i) => i,
            Err(e) => {
                let _ = links::remove_bridge(&mut self.nl, &rec.bridge);
                let _ = self.store.remove_network(&rec.name);
                return Err(Fail::internal(e));
            }
        };
        self.networks.insert(
            rec.name.clone(),
            Net {
                rec: rec.clone(),
                bridge_index: index,
            },
        );
        if !firewall {
            return Ok(());
        }
        let view = self.fw_view();
        if let Err(e) = self.fw.add_network(&Core::net_view(&rec), &view) {
            self.networks.remove(&rec.name);
            let _ = links::remove_bridge(&mut self.nl, &rec.bridge);
            let _ = self.store.remove_network(&rec.name);
            return Err(Fail::internal(anyhow::anyhow!("firewall: {e}")));
        }
        Ok(())
    }

    fn new_bridge_name(&self) -> String {
        (1..)
            .map(|i| format!("{}{i}", self.cfg.bridge_prefix))
            .find(|b| !self.networks.values().any(|n| &n.rec.bridge == b))
            .expect("an unbounded range has a free name")
    }

    pub(crate) fn network_list(&self) -> Vec<NetworkInfo> {
        self.networks
            .values()
            .map(|n| self.info(&n.rec, false))
            .collect()
    }

    pub(crate) fn network_inspect(&self, name: &str) -> Result<NetworkInfo, Fail> {
        let n = self.networks.get(name).ok_or_else(|| not_found(name))?;
        Ok(self.info(&n.rec, true))
    }

    pub(crate) fn network_remove(&mut self, peer: &Peer, name: &str) -> Result<(), Fail> {
        auth::check_admin(peer, "network rm")?;
        let n = self
            .networks
            .get(name)
            .cloned()
            .ok_or_else(|| not_found(name))?;
        if n.rec.default {
            return Err(Fail::denied(format!(
                "the default network {name} cannot be removed"
            )));
        }
        let users: Vec<&str> = self
            .atts
            .values()
            .filter(|a| a.network == name)
            .map(|a| a.container_name.as_str())
            .collect();
        if !users.is_empty() {
            return Err(Fail::new(
                ErrorKind::Conflict,
                format!(
                    "network {name} is in use by container(s) {}: remove or disconnect them first",
                    users.join(", ")
                ),
            ));
        }
        self.networks.remove(name);
        let view = self.fw_view();
        if let Err(e) = self.fw.remove_network(&Core::net_view(&n.rec), &view) {
            tracing::warn!("firewall: {e}");
        }
        Core::fail(links::remove_bridge(&mut self.nl, &n.rec.bridge))?;
        Core::fail(self.store.remove_network(name))?;
        self.update_dns();
        tracing::info!("network {name} removed");
        Ok(())
    }

    fn info(&self, n: &NetworkRec, endpoints: bool) -> NetworkInfo {
        let atts = self
            .atts
            .values()
            .filter(|a| a.network == n.name && a.ready);
        NetworkInfo {
            name: n.name.clone(),
            bridge: n.bridge.clone(),
            subnet: n.subnet,
            gateway: n.gateway,
            subnet6: n.subnet6,
            gateway6: n.gateway6,
            default: n.default,
            attached: atts.clone().count() as u32,
            endpoints: if endpoints {
                atts.map(|a| Endpoint {
                    container_id: a.container_id.clone(),
                    container_name: a.container_name.clone(),
                    aliases: a.aliases.clone(),
                    ipv4: a.ipv4,
                    ipv6: a.ipv6,
                    host_ifname: a.host_ifname.clone(),
                    ports: a.ports.clone(),
                    owner_uid: a.owner_uid,
                })
                .collect()
            } else {
                Vec::new()
            },
        }
    }
}

fn not_found(name: &str) -> Fail {
    Fail::new(
        ErrorKind::NotFound,
        format!("no network {name} (see `rrun network ls`)"),
    )
}

fn check_subnet4(s: Ipv4Net) -> Result<(), Fail> {
    if s != s.trunc() {
        return Err(Fail::bad(format!(
            "--subnet {s}: use the network address ({})",
            s.trunc()
        )));
    }
    if s.prefix_len() > 30 {
        return Err(Fail::bad(format!(
            "--subnet {s} is too small: at most /30 (a gateway and a container)"
        )));
    }
    if s.network().is_loopback() || s.network().is_multicast() || s.network().is_unspecified() {
        return Err(Fail::bad(format!(
            "--subnet {s} cannot be used for a network"
        )));
    }
    Ok(())
}
