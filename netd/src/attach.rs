//! Attach and detach: a lease, a veth pair, published ports and names for one container on one
//! network, made in order and undone in reverse when a step fails (the typed list [`Made`]).
//! Kernel interfaces: through `links` (rtnetlink) and the firewall; bind(2) to test a host
//! address.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};

use netd_proto::{
    check_container_id, check_name, AttachRequest, Attachment, ErrorKind, IfAddr4, IfAddr6,
    PortRequest, Proto, PublishedPort, MAX_ALIASES, MAX_PORTS,
};

use crate::auth::{self, Fail, Peer};
use crate::core::{lock, Core, Shared};
use crate::ipam;
use crate::links::{self, VethPlan};
use crate::store::AttachRec;
use crate::sys::netlink::Netlink;
use crate::view::PortView;

/// What an attach made so far, undone in reverse order on failure.
enum Made {
    Record(String),
    Veth { name: String, index: u32 },
    Ports(Vec<PortView>),
}

/// Host ports netd picks from for `-p PORT` (Linux's default ip_local_port_range).
const AUTO_PORTS: std::ops::RangeInclusive<u16> = 32768..=60999;

impl Core {
    pub(crate) fn attach(
        &mut self,
        peer: &Peer,
        req: AttachRequest,
        mut fds: Vec<OwnedFd>,
    ) -> Result<Attachment, Fail> {
        check_request(&req)?;
        let ns = match (fds.pop(), fds.is_empty()) {
            (Some(fd), true) => fd,
            _ => {
                return Err(Fail::bad(
                    "attach needs exactly one descriptor: the container's network namespace",
                ))
            }
        };
        auth::check_netns(peer, ns.as_fd(), self.own_ns)?;
        auth::check_ports(peer, &req.ports)?;
        auth::check_limit(
            peer,
            self.count_of(peer.uid),
            self.cfg.max_attachments_per_user,
        )?;
        let net = self.networks.get(&req.network).cloned().ok_or_else(|| {
            let n = &req.network;
            // Only root creates networks (auth::check_admin): a user asks root.
            let fix = match peer.is_root() {
                true => format!("create it with `rrun network create {n}`"),
                false => format!(
                    "ask root to create it (`rrun network create {n}`), or pick one of `rrun network ls`"
                ),
            };
            Fail::new(ErrorKind::NotFound, format!("no network {n}: {fix}"))
        })?;
        self.check_unique(&req, net.rec.default)?;
        let ports = self.resolve_ports(&req.ports, net.rec.subnet6.is_some())?;
        let used: HashSet<Ipv4Addr> = self
            .atts
            .values()
            .filter(|a| a.network == net.rec.name)
            .map(|a| a.ipv4)
            .collect();
        let ipv4 = ipam::pick_addr4(net.rec.subnet, &used).ok_or_else(|| {
            Fail::new(
                ErrorKind::Limit,
                format!(
                    "network {} has no free address left in {}",
                    net.rec.name, net.rec.subnet
                ),
            )
        })?;
        let ipv6 = net
            .rec
            .subnet6
            .map(|s6| ipam::addr6_for(s6, ipv4, net.rec.subnet));
        let rec = AttachRec {
            host_ifname: self.new_veth_name()?,
            host_index: 0,
            container_id: req.container_id.clone(),
            container_name: req.container_name.clone(),
            aliases: req.aliases.clone(),
            network: net.rec.name.clone(),
            ifname: String::new(),
            ipv4,
            ipv6,
            ports,
            owner_uid: peer.uid,
            ready: false,
        };
        let mut made = Vec::new();
        match self.attach_steps(rec, &net, ns, &mut made) {
            Ok(a) => Ok(a),
            Err(e) => {
                self.rollback(made);
                Err(e)
            }
        }
    }

    /// The steps that make something, each registered in `made` as soon as it exists.
    fn attach_steps(
        &mut self,
        mut rec: AttachRec,
        net: &crate::core::Net,
        ns: OwnedFd,
        made: &mut Vec<Made>,
    ) -> Result<Attachment, Fail> {
        Core::fail(self.store.save_attachment(&rec))?;
        made.push(Made::Record(rec.host_ifname.clone()));
        let plan = VethPlan {
            host_ifname: &rec.host_ifname,
            bridge_index: net.bridge_index,
            mtu: self.mtu,
            ipv4: (IpAddr::V4(rec.ipv4), net.rec.subnet.prefix_len()),
            gateway4: IpAddr::V4(net.rec.gateway),
            ipv6: rec
                .ipv6
                .zip(net.rec.subnet6)
                .map(|(a, s)| (IpAddr::V6(a), s.prefix_len())),
            gateway6: net.rec.gateway6.map(IpAddr::V6),
        };
        let mut ns_nl = Core::fail(links::netlink_in(ns.as_fd()))?;
        let (index, ifname) =
            Core::fail(links::add_veth(&mut self.nl, &mut ns_nl, ns.as_fd(), &plan))?;
        made.push(Made::Veth {
            name: rec.host_ifname.clone(),
            index,
        });
        drop(ns);
        let mac = Core::fail(links::configure_inside(&mut ns_nl, &ifname, &plan))?;
        drop(ns_nl);
        rec.host_index = index;
        rec.ifname = ifname;
        let views = self.port_views(&rec);
        if !views.is_empty() {
            self.fw
                .add_ports(&views)
                .map_err(|e| Fail::internal(anyhow::anyhow!("firewall: {e}")))?;
            made.push(Made::Ports(views));
        }
        rec.ready = true;
        Core::fail(self.store.save_attachment(&rec))?;
        self.atts.insert(rec.host_ifname.clone(), rec.clone());
        if !net.rec.default {
            self.update_dns();
        }
        tracing::debug!(container = %rec.container_name, ip = %rec.ipv4, veth = %rec.host_ifname, "attached");
        Ok(self.attachment(&rec, net, mac))
    }

    fn rollback(&mut self, made: Vec<Made>) {
        for m in made.into_iter().rev() {
            let r = match m {
                Made::Ports(v) => self
                    .fw
                    .remove_ports(&v)
                    .map_err(|e| anyhow::anyhow!("firewall: {e}")),
                Made::Veth { name, index } => links::remove_veth(&mut self.nl, &name, index),
                Made::Record(name) => self.store.remove_attachment(&name),
            };
            if let Err(e) = r {
                tracing::warn!("rollback: {e:#}");
            }
        }
    }

    fn attachment(&self, rec: &AttachRec, net: &crate::core::Net, mac: String) -> Attachment {
        let (dns, dns_is_netd) = if net.rec.default {
            let ups = self
                .cfg
                .upstreams()
                .into_iter()
                .map(|s| s.ip())
                .filter(|ip| ipam::is_routable(*ip))
                .collect();
            (ups, false)
        } else {
            (vec![IpAddr::V4(net.rec.gateway)], true)
        };
        Attachment {
            network: rec.network.clone(),
            container_id: rec.container_id.clone(),
            ifname: rec.ifname.clone(),
            host_ifname: rec.host_ifname.clone(),
            mac,
            ipv4: IfAddr4 {
                address: rec.ipv4,
                prefix_len: net.rec.subnet.prefix_len(),
            },
            gateway4: net.rec.gateway,
            ipv6: rec.ipv6.zip(net.rec.subnet6).map(|(a, s)| IfAddr6 {
                address: a,
                prefix_len: s.prefix_len(),
            }),
            gateway6: net.rec.gateway6,
            mtu: self.mtu,
            dns,
            dns_is_netd,
            ports: rec.ports.clone(),
        }
    }

    /// A container is on a network once; on a user network its names are its own.
    fn check_unique(&self, req: &AttachRequest, default: bool) -> Result<(), Fail> {
        let on_net = || self.atts.values().filter(|a| a.network == req.network);
        if on_net().any(|a| a.container_id == req.container_id) {
            return Err(Fail::new(
                ErrorKind::Conflict,
                format!(
                    "container {} is already on network {}",
                    req.container_name, req.network
                ),
            ));
        }
        if default {
            return Ok(());
        }
        for name in std::iter::once(&req.container_name).chain(&req.aliases) {
            let lower = name.to_ascii_lowercase();
            if let Some(a) = on_net().find(|a| {
                std::iter::once(&a.container_name)
                    .chain(&a.aliases)
                    .any(|n| n.to_ascii_lowercase() == lower)
            }) {
                return Err(Fail::new(
                    ErrorKind::Conflict,
                    format!(
                        "the name {name} is taken on network {} by container {}: choose another name or alias",
                        req.network, a.container_name
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks each `-p` and picks host ports for those that ask netd to.
    fn resolve_ports(
        &self,
        reqs: &[PortRequest],
        has_v6: bool,
    ) -> Result<Vec<PublishedPort>, Fail> {
        let mut taken: Vec<PublishedPort> =
            self.atts.values().flat_map(|a| a.ports.clone()).collect();
        let mut out = Vec::new();
        for p in reqs {
            let spec = describe(p);
            if p.port == 0 {
                return Err(Fail::bad(format!(
                    "-p {spec}: the container port must be 1-65535"
                )));
            }
            match p.host_ip {
                Some(IpAddr::V6(ip)) if ip.is_loopback() => {
                    return Err(Fail::bad(format!(
                        "-p {spec}: [::1] cannot be published (the kernel never routes ::1 off lo): use 127.0.0.1 or a host IPv6 address"
                    )))
                }
                Some(IpAddr::V6(_)) if !has_v6 => {
                    return Err(Fail::bad(format!(
                        "-p {spec}: the network has no IPv6: create it with --ipv6 to publish on an IPv6 address"
                    )))
                }
                Some(ip) if ip.is_unspecified() => {}
                Some(ip) => check_local(ip).map_err(|m| Fail::bad(format!("-p {spec}: {m}")))?,
                None => {}
            }
            let host_ip = p.host_ip.filter(|ip| !ip.is_unspecified());
            let host_port = if p.host_port != 0 {
                p.host_port
            } else {
                AUTO_PORTS
                    .clone()
                    .find(|&hp| {
                        let c = PublishedPort {
                            proto: p.proto,
                            host_ip,
                            host_port: hp,
                            port: p.port,
                        };
                        !taken.iter().any(|t| clash(t, &c)) && bindable(p.proto, host_ip, hp)
                    })
                    .ok_or_else(|| {
                        Fail::new(
                            ErrorKind::Limit,
                            format!("-p {spec}: no free host port left"),
                        )
                    })?
            };
            let c = PublishedPort {
                proto: p.proto,
                host_ip,
                host_port,
                port: p.port,
            };
            if let Some(t) = taken.iter().find(|t| clash(t, &c)) {
                return Err(Fail::new(
                    ErrorKind::Conflict,
                    format!(
                        "-p {spec}: host port {}/{} is already published{}: choose another host port",
                        c.host_port,
                        c.proto,
                        self.publisher_of(t).map(|n| format!(" by container {n}")).unwrap_or_default()
                    ),
                ));
            }
            taken.push(c);
            out.push(c);
        }
        Ok(out)
    }

    fn publisher_of(&self, p: &PublishedPort) -> Option<String> {
        self.atts
            .values()
            .find(|a| a.ports.contains(p))
            .map(|a| a.container_name.clone())
    }

    /// A new veth name of this netd's ([`veth_prefix`]).
    fn new_veth_name(&self) -> Result<String, Fail> {
        let prefix = veth_prefix(&self.cfg.bridge_prefix);
        let width = 15 - prefix.len();
        for _ in 0..16 {
            let mut b = [0u8; 8];
            Core::fail(
                std::fs::File::open("/dev/urandom")
                    .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
                    .map_err(anyhow::Error::from),
            )?;
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            let name = format!("{prefix}{}", &hex[..width]);
            if !self.atts.contains_key(&name) {
                return Ok(name);
            }
        }
        Err(Fail::internal(anyhow::anyhow!("no free veth name")))
    }

    /// Detach, first half (under the lock): the container's attachments on `network` (None:
    /// all) lose their ports and names at once and are marked releasing; their leases stay
    /// taken until [`Core::detach_end`]. Returns what to delete, and the host veths another
    /// detach is deleting already. Idempotent.
    pub(crate) fn detach_begin(
        &mut self,
        peer: &Peer,
        container_id: &str,
        network: Option<&str>,
    ) -> Result<(Vec<AttachRec>, Vec<String>), Fail> {
        check_container_id(container_id).map_err(Fail::bad)?;
        let all: Vec<&AttachRec> = self
            .atts
            .values()
            .filter(|a| a.container_id == container_id && network.is_none_or(|n| a.network == n))
            .filter(|a| a.ready)
            .collect();
        let others: Vec<String> = all
            .iter()
            .filter(|a| self.releasing.contains(&a.host_ifname))
            .map(|a| a.host_ifname.clone())
            .collect();
        let mine: Vec<AttachRec> = all
            .into_iter()
            .filter(|a| !self.releasing.contains(&a.host_ifname))
            .cloned()
            .collect();
        for a in &mine {
            auth::check_owner(peer, a.owner_uid, &a.container_name)?;
        }
        for a in &mine {
            let ports = self.port_views(a);
            if let Err(e) = self.fw.remove_ports(&ports) {
                tracing::warn!("firewall: {e}");
            }
            self.releasing.insert(a.host_ifname.clone());
        }
        if !mine.is_empty() {
            self.update_dns();
        }
        Ok((mine, others))
    }

    /// Detach, second half (under the lock, after the veths were deleted): the records and
    /// leases go.
    pub(crate) fn detach_end(&mut self, gone: &[AttachRec]) -> Result<(), Fail> {
        for a in gone {
            self.releasing.remove(&a.host_ifname);
            Core::fail(self.store.remove_attachment(&a.host_ifname))?;
            self.atts.remove(&a.host_ifname);
        }
        Ok(())
    }
}

/// Detach without holding the core's lock while the kernel deletes the veths (tens of
/// milliseconds each: the kernel waits for RCU grace periods), so other requests go on.
pub fn detach(
    core: &Shared,
    peer: &Peer,
    container_id: &str,
    network: Option<&str>,
) -> Result<Vec<String>, Fail> {
    let (mine, others) = lock(core).detach_begin(peer, container_id, network)?;
    if !others.is_empty() {
        // Another detach of the same container is deleting its veths: answer once it is done.
        let t0 = std::time::Instant::now();
        while t0.elapsed() < std::time::Duration::from_secs(10)
            && others.iter().any(|n| lock(core).atts.contains_key(n))
        {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
    if mine.is_empty() {
        return Ok(Vec::new());
    }
    let mut nl = Core::fail(Netlink::open().map_err(anyhow::Error::from))?;
    let mut err = None;
    for a in &mine {
        if let Err(e) = links::remove_veth(&mut nl, &a.host_ifname, a.host_index) {
            err.get_or_insert(e);
        }
    }
    lock(core).detach_end(&mine)?;
    match err {
        Some(e) => Err(Fail::internal(e)),
        None => Ok(mine.into_iter().map(|a| a.network).collect()),
    }
}

/// The veth names of the netd with `bridge_prefix`: "v", the prefix, "-" (not a hex digit,
/// so no other prefix's names match), then hex digits up to 15 characters.
pub fn veth_prefix(bridge_prefix: &str) -> String {
    format!("v{bridge_prefix}-")
}

/// Whether `name` is a veth name of the netd with `bridge_prefix`.
pub fn is_our_veth(bridge_prefix: &str, name: &str) -> bool {
    let p = veth_prefix(bridge_prefix);
    name.len() == 15
        && name.starts_with(&p)
        && name[p.len()..].bytes().all(|c| c.is_ascii_hexdigit())
}

fn check_request(req: &AttachRequest) -> Result<(), Fail> {
    check_name("network", &req.network).map_err(Fail::bad)?;
    check_container_id(&req.container_id).map_err(Fail::bad)?;
    check_name("container name", &req.container_name).map_err(Fail::bad)?;
    if req.aliases.len() > MAX_ALIASES {
        return Err(Fail::bad(format!("at most {MAX_ALIASES} aliases")));
    }
    for a in &req.aliases {
        check_name("alias", a).map_err(Fail::bad)?;
    }
    if req.ports.len() > MAX_PORTS {
        return Err(Fail::bad(format!("at most {MAX_PORTS} published ports")));
    }
    Ok(())
}

/// Two published ports clash when they share protocol and host port and their host
/// addresses overlap (None is every address).
fn clash(a: &PublishedPort, b: &PublishedPort) -> bool {
    a.proto == b.proto
        && a.host_port == b.host_port
        && match (a.host_ip, b.host_ip) {
            (None, _) | (_, None) => true,
            (Some(x), Some(y)) => x == y,
        }
}

fn describe(p: &PortRequest) -> String {
    let ip = match p.host_ip {
        Some(IpAddr::V6(ip)) => format!("[{ip}]:"),
        Some(ip) => format!("{ip}:"),
        None => String::new(),
    };
    let hp = if p.host_port == 0 {
        String::new()
    } else {
        p.host_port.to_string()
    };
    format!("{ip}{hp}:{}/{}", p.port, p.proto)
}

/// A host address must be one of this host's (bind(2) on it succeeds).
fn check_local(ip: IpAddr) -> Result<(), String> {
    match std::net::UdpSocket::bind(SocketAddr::new(ip, 0)) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => {
            Err(format!("{ip} is not an address of this host"))
        }
        Err(e) => Err(format!("cannot use host address {ip}: {e}")),
    }
}

/// Whether nothing on the host listens on that port (for ports netd picks itself).
fn bindable(proto: Proto, ip: Option<IpAddr>, port: u16) -> bool {
    let ip = ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let addr = SocketAddr::new(ip, port);
    match proto {
        Proto::Tcp => std::net::TcpListener::bind(addr).is_ok(),
        Proto::Udp => std::net::UdpSocket::bind(addr).is_ok(),
    }
}
