//! One NETLINK_ROUTE socket and the few rtnetlink requests netd makes: links (bridge, veth
//! pair), addresses, routes, dumps, and link events. Messages are built and parsed by
//! `netlink-packet-route`; the socket is rustix's. Kernel docs: rtnetlink(7), netlink(7),
//! Documentation/userspace-api/netlink/intro.rst.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE,
    NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoData, InfoKind, InfoVeth, LinkAttribute,
    LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use rustix::io::Errno;
use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{AddressFamily as Af, RecvFlags, SendFlags, SocketFlags, SocketType};

/// RTMGRP_LINK: link events (RTM_NEWLINK/RTM_DELLINK), see rtnetlink(7).
pub const GROUP_LINK: u32 = 1;

/// A NETLINK_ROUTE socket in the network namespace it was opened in.
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

/// A link as a dump shows it.
#[derive(Debug, Clone)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub kind: Option<String>,
    pub master: Option<u32>,
    pub mtu: u32,
    pub up: bool,
    /// The hardware address, as aa:bb:cc:dd:ee:ff.
    pub mac: String,
}

/// A route as a dump shows it (main table only).
#[derive(Debug, Clone)]
pub struct Route {
    pub dst: Option<IpAddr>,
    pub dst_len: u8,
    pub oif: Option<u32>,
    pub gateway: Option<IpAddr>,
}

/// A link event from a subscribed socket.
#[derive(Debug, Clone)]
pub enum LinkEvent {
    New {
        index: u32,
        name: String,
    },
    Del {
        index: u32,
        name: String,
    },
    /// The kernel dropped events (ENOBUFS): the listener must re-read the links.
    Overrun,
}

impl Netlink {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Netlink> {
        Netlink::open_groups(0)
    }

    /// Opens a socket subscribed to the multicast `groups` (a mask of RTMGRP_* bits).
    pub fn open_groups(groups: u32) -> io::Result<Netlink> {
        let fd =
            rustix::net::socket_with(Af::NETLINK, SocketType::RAW, SocketFlags::CLOEXEC, None)?;
        rustix::net::bind(&fd, &SocketAddrNetlink::new(0, groups))?;
        if groups != 0 {
            // Room for bursts of events (many containers removed at once).
            let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&fd, 4 << 20);
        }
        Ok(Netlink {
            fd,
            seq: 0,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Sends `msgs` in one datagram (the kernel handles them in order) and waits for each
    /// one's acknowledgement; the first error is returned with the index of its message.
    pub fn request_all(
        &mut self,
        msgs: Vec<(RouteNetlinkMessage, u16)>,
    ) -> Result<(), (usize, io::Error)> {
        let each = self.request_each(msgs).map_err(|e| (0, e))?;
        match each
            .into_iter()
            .enumerate()
            .find_map(|(i, r)| Some((i, r?)))
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Sends `msgs` in one datagram and returns each one's error, if any: the kernel handles
    /// every message of a datagram in order, whether or not the one before failed
    /// (netlink_rcv_skb). `Err` when the socket itself failed.
    pub fn request_each(
        &mut self,
        msgs: Vec<(RouteNetlinkMessage, u16)>,
    ) -> io::Result<Vec<Option<io::Error>>> {
        let first = self.seq.wrapping_add(1);
        let mut out = Vec::new();
        for (m, flags) in msgs.iter().cloned() {
            self.seq = self.seq.wrapping_add(1);
            let mut nl = NetlinkMessage::new(
                header(NLM_F_REQUEST | NLM_F_ACK | flags, self.seq),
                NetlinkPayload::InnerMessage(m),
            );
            nl.finalize();
            let start = out.len();
            out.resize(start + nl.buffer_len(), 0);
            nl.serialize(&mut out[start..]);
        }
        self.send(&out)?;
        let mut acked = vec![false; msgs.len()];
        let mut pending = msgs.len();
        let mut errors: Vec<Option<io::Error>> = (0..msgs.len()).map(|_| None).collect();
        while pending > 0 {
            for m in self.recv_messages()? {
                let i = m.header.sequence_number.wrapping_sub(first) as usize;
                if let (NetlinkPayload::Error(e), Some(false)) = (m.payload, acked.get(i)) {
                    acked[i] = true;
                    pending -= 1;
                    if e.code.is_some() {
                        errors[i] = Some(e.to_io());
                    }
                }
            }
        }
        Ok(errors)
    }

    /// One request, waiting for its acknowledgement.
    pub fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
        self.request_all(vec![(msg, flags)]).map_err(|(_, e)| e)
    }

    /// A dump request; returns every message of the answer.
    pub fn dump(&mut self, msg: RouteNetlinkMessage) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut nl = NetlinkMessage::new(
            header(NLM_F_REQUEST | NLM_F_DUMP, seq),
            NetlinkPayload::InnerMessage(msg),
        );
        nl.finalize();
        let mut out = vec![0; nl.buffer_len()];
        nl.serialize(&mut out);
        self.send(&out)?;
        let mut items = Vec::new();
        loop {
            for m in self.recv_messages()? {
                if m.header.sequence_number != seq {
                    continue;
                }
                match m.payload {
                    NetlinkPayload::Done(_) => return Ok(items),
                    NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io()),
                    NetlinkPayload::InnerMessage(i) => items.push(i),
                    _ => {}
                }
            }
        }
    }

    /// Waits for the next link events (a socket opened with [`GROUP_LINK`]).
    pub fn link_events(&mut self) -> io::Result<Vec<LinkEvent>> {
        let msgs = match self.recv_messages() {
            Ok(m) => m,
            Err(e) if e.raw_os_error() == Some(Errno::NOBUFS.raw_os_error()) => {
                return Ok(vec![LinkEvent::Overrun])
            }
            Err(e) => return Err(e),
        };
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) => {
                    let name = link_name(&l)?;
                    Some(LinkEvent::New {
                        index: l.header.index,
                        name,
                    })
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(l)) => {
                    let name = link_name(&l)?;
                    Some(LinkEvent::Del {
                        index: l.header.index,
                        name,
                    })
                }
                _ => None,
            })
            .collect())
    }

    fn send(&self, bytes: &[u8]) -> io::Result<()> {
        let kernel = SocketAddrNetlink::new(0, 0);
        loop {
            match rustix::net::sendto(&self.fd, bytes, SendFlags::empty(), &kernel) {
                Ok(_) => return Ok(()),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn recv_messages(&mut self) -> io::Result<Vec<NetlinkMessage<RouteNetlinkMessage>>> {
        let n = loop {
            match rustix::net::recv(&self.fd, &mut self.buf[..], RecvFlags::empty()) {
                Ok((n, _)) => break n,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        let mut out = Vec::new();
        let mut data = &self.buf[..n];
        while !data.is_empty() {
            let len = NetlinkBuffer::new_checked(data)
                .map(|b| b.length() as usize)
                .map_err(|e| io::Error::other(format!("netlink: {e}")))?;
            if len == 0 || len > data.len() {
                break;
            }
            match NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[..len]) {
                Ok(m) => out.push(m),
                Err(e) => tracing::debug!("netlink: skipping a message: {e}"),
            }
            data = &data[(len + 3) & !3..];
            if data.len() < 16 {
                break;
            }
        }
        Ok(out)
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    // ---- links

    /// Every link.
    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        let msgs = self.dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(to_link(&l)),
                _ => None,
            })
            .collect())
    }

    /// The link named `name`, if any.
    pub fn link_by_name(&mut self, name: &str) -> io::Result<Option<Link>> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.into()));
        match self.get_one(RouteNetlinkMessage::GetLink(m)) {
            Ok(Some(RouteNetlinkMessage::NewLink(l))) => Ok(Some(to_link(&l))),
            Ok(_) => Ok(None),
            Err(e) if e.raw_os_error() == Some(Errno::NODEV.raw_os_error()) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn get_one(&mut self, msg: RouteNetlinkMessage) -> io::Result<Option<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut nl = NetlinkMessage::new(
            header(NLM_F_REQUEST, seq),
            NetlinkPayload::InnerMessage(msg),
        );
        nl.finalize();
        let mut out = vec![0; nl.buffer_len()];
        nl.serialize(&mut out);
        self.send(&out)?;
        loop {
            for m in self.recv_messages()? {
                if m.header.sequence_number != seq {
                    continue;
                }
                match m.payload {
                    NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io()),
                    NetlinkPayload::InnerMessage(i) => return Ok(Some(i)),
                    _ => return Ok(None),
                }
            }
        }
    }

    /// Creates a bridge `name` with `mtu`, up. EEXIST when it exists.
    pub fn add_bridge(&mut self, name: &str, mtu: u32) -> io::Result<()> {
        let mut m = up_link();
        m.attributes.push(LinkAttribute::IfName(name.into()));
        m.attributes.push(LinkAttribute::Mtu(mtu));
        m.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
    }

    /// Sets a link up.
    pub fn set_up(&mut self, index: u32) -> io::Result<()> {
        let mut m = up_link();
        m.header.index = index;
        self.request(RouteNetlinkMessage::SetLink(m), 0)
    }

    /// Creates a veth pair in one request: `host` (on bridge `master`) here, and `peer`
    /// directly inside the network namespace `peer_ns`; both with `mtu`, both down (the
    /// kernel refuses IFF_UP at creation: the pair is not linked yet, veth_open gives
    /// ENOTCONN).
    pub fn add_veth(
        &mut self,
        host: &str,
        master: u32,
        mtu: u32,
        peer: &str,
        peer_ns: BorrowedFd<'_>,
    ) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let mut p = LinkMessage::default();
        p.attributes.push(LinkAttribute::IfName(peer.into()));
        p.attributes.push(LinkAttribute::Mtu(mtu));
        p.attributes
            .push(LinkAttribute::NetNsFd(peer_ns.as_raw_fd()));
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(host.into()));
        m.attributes.push(LinkAttribute::Mtu(mtu));
        m.attributes.push(LinkAttribute::Controller(master));
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
        ]));
        self.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
    }

    /// Deletes a link by index (a veth takes its peer along).
    pub fn del_link(&mut self, index: u32) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        self.request(RouteNetlinkMessage::DelLink(m), 0)
    }

    /// Deletes a link by name.
    pub fn del_link_name(&mut self, name: &str) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.into()));
        self.request(RouteNetlinkMessage::DelLink(m), 0)
    }

    // ---- addresses and routes

    /// Every address of a link as (address, prefix length).
    pub fn addresses(&mut self, index: u32) -> io::Result<Vec<(IpAddr, u8)>> {
        let msgs = self.dump(RouteNetlinkMessage::GetAddress(AddressMessage::default()))?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) if a.header.index == index => {
                    let addr = a.attributes.iter().find_map(|x| match x {
                        AddressAttribute::Address(ip) => Some(*ip),
                        _ => None,
                    })?;
                    Some((addr, a.header.prefix_len))
                }
                _ => None,
            })
            .collect())
    }

    /// The main table's routes of one family (AF_INET or AF_INET6).
    pub fn routes(&mut self, v6: bool) -> io::Result<Vec<Route>> {
        let mut q = RouteMessage::default();
        q.header.address_family = if v6 {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        let msgs = self.dump(RouteNetlinkMessage::GetRoute(q))?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) if r.header.table == 254 => Some(to_route(&r)),
                _ => None,
            })
            .collect())
    }
}

/// A message adding `addr/prefix` to link `index` (IPv6 without duplicate address
/// detection, so it is usable at once).
pub fn add_address_msg(index: u32, addr: IpAddr, prefix: u8) -> RouteNetlinkMessage {
    let mut m = AddressMessage::default();
    m.header.index = index;
    m.header.prefix_len = prefix;
    match addr {
        IpAddr::V4(a) => {
            m.header.family = AddressFamily::Inet;
            m.attributes.push(AddressAttribute::Local(addr));
            m.attributes.push(AddressAttribute::Address(addr));
            let host = u32::from(a) | (u32::MAX.checked_shr(prefix as u32).unwrap_or(0));
            if prefix < 31 {
                m.attributes.push(AddressAttribute::Broadcast(host.into()));
            }
        }
        IpAddr::V6(_) => {
            m.header.family = AddressFamily::Inet6;
            m.attributes.push(AddressAttribute::Address(addr));
            m.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
    }
    RouteNetlinkMessage::NewAddress(m)
}

/// A message adding a default route via `gateway` on link `index`.
pub fn default_route_msg(index: u32, gateway: IpAddr) -> RouteNetlinkMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = match gateway {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    m.header.table = 254;
    m.header.protocol = RouteProtocol::Boot;
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::Unicast;
    m.attributes.push(RouteAttribute::Oif(index));
    m.attributes
        .push(RouteAttribute::Gateway(RouteAddress::from(gateway)));
    RouteNetlinkMessage::NewRoute(m)
}

/// A message turning off IPv6 address generation on link `index` (IFLA_AF_SPEC, AF_INET6,
/// IFLA_INET6_ADDR_GEN_MODE = IN6_ADDR_GEN_MODE_NONE; rtnetlink(7), include/uapi/linux/
/// if_link.h). Sent before the link is set up, it comes up without an IPv6 link-local address,
/// so it sends no duplicate address detection, MLD report or router solicitation. A kernel
/// without IPv6 refuses it with EAFNOSUPPORT.
pub fn addr_gen_none_msg(index: u32) -> RouteNetlinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.attributes
        .push(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
            vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)],
        )]));
    RouteNetlinkMessage::SetLink(m)
}

/// A message setting link `index` up.
pub fn set_up_msg(index: u32) -> RouteNetlinkMessage {
    let mut m = up_link();
    m.header.index = index;
    RouteNetlinkMessage::SetLink(m)
}

fn up_link() -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.flags = LinkFlags::Up;
    m.header.change_mask = LinkFlags::Up;
    m
}

fn header(flags: u16, seq: u32) -> NetlinkHeader {
    let mut h = NetlinkHeader::default();
    h.flags = flags;
    h.sequence_number = seq;
    h
}

fn link_name(l: &LinkMessage) -> Option<String> {
    l.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    })
}

fn to_link(l: &LinkMessage) -> Link {
    let mut out = Link {
        index: l.header.index,
        name: String::new(),
        kind: None,
        master: None,
        mtu: 0,
        up: l.header.flags.contains(LinkFlags::Up),
        mac: String::new(),
    };
    for a in &l.attributes {
        match a {
            LinkAttribute::IfName(n) => out.name = n.clone(),
            LinkAttribute::Mtu(m) => out.mtu = *m,
            LinkAttribute::Controller(c) => out.master = Some(*c),
            LinkAttribute::Address(a) => {
                out.mac = a
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(":")
            }
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        out.kind = Some(k.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn to_route(r: &RouteMessage) -> Route {
    let mut out = Route {
        dst: None,
        dst_len: r.header.destination_prefix_length,
        oif: None,
        gateway: None,
    };
    for a in &r.attributes {
        match a {
            RouteAttribute::Destination(d) => out.dst = route_ip(d),
            RouteAttribute::Gateway(g) => out.gateway = route_ip(g),
            RouteAttribute::Oif(i) => out.oif = Some(*i),
            _ => {}
        }
    }
    out
}

fn route_ip(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v) => Some(IpAddr::V4(*v)),
        RouteAddress::Inet6(v) => Some(IpAddr::V6(*v)),
        _ => None,
    }
}
