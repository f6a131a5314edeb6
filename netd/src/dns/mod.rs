//! netd's DNS responder on user networks: on each network's gateway addresses (UDP and TCP port
//! 53) it answers its containers' names and aliases, and forwards every other name to the
//! upstream resolvers. Kernel interface: sockets (udp(7), tcp(7), IP_FREEBIND).
//!
//! Built on `hickory-proto` (the Hickory DNS project's message codec) rather than
//! `hickory-server`: netd's zone is a small in-memory map replaced at every attach, and other
//! names are relayed byte for byte (the client's id, flags and EDNS options untouched, no cache
//! to poison). `hickory-server` would bring its Catalog/Authority layers and, for forwarding,
//! the whole `hickory-resolver`, to end up doing the same; its API also changed at each of the
//! last releases. The codec parses every query (hostile bytes get FORMERR or nothing) and
//! writes every answer netd makes.
//!
//! What is answered (for a network named `N`):
//! - `NAME` and `NAME.N` for a container's name or `--network-alias` on that network: A and
//!   AAAA records (TTL 10 s); other types get NODATA (NOERROR, no answer);
//! - any other single-label name, or `X.N`, gets NXDOMAIN (netd is authoritative there);
//! - everything else is forwarded to the upstreams in order (2 s each), SERVFAIL if none answers.
//!
//! The seam (lib.rs): [`Dns::new`] starts the responder's runtime on its own thread;
//! [`Dns::update`] replaces what it answers and where it listens, binding new listeners in the
//! calling thread's network namespace.

mod answer;
mod forward;
mod resolvconf;
mod server;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};

pub use resolvconf::host_resolvers;

use crate::view::DnsView;

/// Settings from netd's config.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// Where names that are not containers' are forwarded (from the config, else the host's
    /// /etc/resolv.conf without loopback addresses: see [`host_resolvers`]).
    pub upstreams: Vec<SocketAddr>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DnsError(pub String);

/// One network's names: lowercase name or alias -> addresses.
#[derive(Debug, Clone, Default)]
pub(crate) struct Zone {
    /// The network's name, the zone's domain (`web.N`).
    pub domain: String,
    pub records: BTreeMap<String, Vec<IpAddr>>,
}

/// Every network's zone, keyed by network name; the listeners read it at each query.
pub(crate) type Zones = Arc<RwLock<HashMap<String, Zone>>>;

/// The responder: a tokio runtime on its own thread, the zones, and one UDP and one TCP
/// listener per gateway address.
pub struct Dns {
    zones: Zones,
    upstreams: Arc<Vec<SocketAddr>>,
    runtime: server::Runtime,
    /// listen address -> (network, its listener tasks)
    listeners: HashMap<IpAddr, (String, server::Listener)>,
}

impl Dns {
    /// Starts the responder's runtime; listens nowhere until [`Self::update`].
    pub fn new(cfg: DnsConfig) -> Result<Dns, DnsError> {
        Ok(Dns {
            zones: Arc::default(),
            upstreams: Arc::new(cfg.upstreams),
            runtime: server::Runtime::start().map_err(|e| DnsError(format!("dns runtime: {e}")))?,
            listeners: HashMap::new(),
        })
    }

    /// Replaces what the responder answers and where it listens with `view`. New gateway
    /// addresses are bound (UDP and TCP port 53, IP_FREEBIND so a still-tentative IPv6 address
    /// works); addresses no longer in the view stop listening. An address that cannot be bound
    /// is an error naming it; the others are still served.
    pub fn update(&mut self, view: &DnsView) -> Result<(), DnsError> {
        let mut zones = HashMap::new();
        let mut want: HashMap<IpAddr, String> = HashMap::new();
        for n in &view.networks {
            let records = n
                .records
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect();
            zones.insert(
                n.network.clone(),
                Zone {
                    domain: n.network.to_ascii_lowercase(),
                    records,
                },
            );
            for a in &n.listen {
                want.insert(*a, n.network.clone());
            }
        }
        *self.zones.write().unwrap_or_else(|p| p.into_inner()) = zones;
        self.listeners
            .retain(|addr, (net, _)| want.get(addr) == Some(net));
        let mut errors = Vec::new();
        for (addr, net) in want {
            if self.listeners.contains_key(&addr) {
                continue;
            }
            let ctx = server::Ctx {
                zones: self.zones.clone(),
                network: net.clone(),
                upstreams: self.upstreams.clone(),
            };
            match self.runtime.listen(SocketAddr::new(addr, 53), ctx) {
                Ok(l) => {
                    self.listeners.insert(addr, (net, l));
                }
                Err(e) => errors.push(format!("dns on {}: {e}", SocketAddr::new(addr, 53))),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(DnsError(errors.join("; ")))
        }
    }

    /// The addresses listened on now.
    pub fn listening(&self) -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = self.listeners.keys().copied().collect();
        v.sort();
        v
    }
}
