//! The nftables event socket: NETLINK_NETFILTER bound to the NFNLGRP_NFTABLES multicast group,
//! and the parsing of the messages the kernel sends there after each ruleset change. Kernel
//! interface: netlink(7), include/uapi/linux/netfilter/nfnetlink.h and nf_tables.h. The
//! nftables crate has no monitor; this is what `nft monitor` reads. No `unsafe`: rustix covers
//! the socket calls and the messages are parsed from bytes.

use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::net::netlink::{SocketAddrNetlink, NETFILTER};
use rustix::net::sockopt::{set_socket_recv_buffer_size, set_socket_timeout, Timeout};
use rustix::net::{bind, recv, socket_with, AddressFamily, RecvFlags, SocketFlags, SocketType};

/// NFNLGRP_NFTABLES (nfnetlink.h: enum nfnetlink_groups).
const NFNLGRP_NFTABLES: u32 = 7;
/// NFNL_SUBSYS_NFTABLES, the high byte of an nftables message type.
const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// Length of struct nlmsghdr and struct nfgenmsg.
const NLMSG_HDRLEN: usize = 16;
const NFGENMSG_LEN: usize = 4;
/// Every object message (table, chain, rule, set, set element list) has its table's name as
/// attribute 1 (NFTA_TABLE_NAME, NFTA_CHAIN_TABLE, NFTA_RULE_TABLE, NFTA_SET_TABLE,
/// NFTA_SET_ELEM_LIST_TABLE).
const NFTA_TABLE: u16 = 1;
/// NFT_MSG_NEWGEN and its NFTA_GEN_PROC_PID attribute (big-endian u32).
const NFT_MSG_NEWGEN: u16 = 15;
const NFTA_GEN_PROC_PID: u16 = 2;

/// What one event message says happened (enum nf_tables_msg_types).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// NFT_MSG_DELTABLE, DELCHAIN, DELRULE, DELSET, DELSETELEM, or their DESTROY twins: something
    /// was removed, perhaps from netd's table.
    Removed,
    /// NFT_MSG_NEWGEN, the message that ends each committed transaction, with the pid of the
    /// process that committed it (NFTA_GEN_PROC_PID, kernel 4.20+).
    Generation { pid: Option<u32> },
    /// Anything else (new objects).
    Other,
}

/// One event: its kind and the name of the table it concerns, when it names one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: Kind,
    pub family: u8,
    pub table: Option<String>,
}

/// A NETLINK_NETFILTER socket subscribed to nftables events, with a receive timeout so the
/// thread reading it can notice it should stop.
pub struct Events {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl Events {
    /// Opens and subscribes (needs CAP_NET_ADMIN in the network namespace's user namespace).
    pub fn open(timeout: Duration) -> io::Result<Self> {
        let fd = socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            Some(NETFILTER),
        )?;
        // A flush of a big ruleset sends one message per object: room for bursts.
        set_socket_recv_buffer_size(&fd, 4 << 20)?;
        set_socket_timeout(&fd, Timeout::Recv, Some(timeout))?;
        bind(&fd, &SocketAddrNetlink::new(0, 1 << (NFNLGRP_NFTABLES - 1)))?;
        Ok(Events {
            fd,
            buf: vec![0; 1 << 16],
        })
    }

    /// Changes how long [`Self::next`] blocks.
    pub fn set_timeout(&self, timeout: Duration) -> io::Result<()> {
        Ok(set_socket_timeout(&self.fd, Timeout::Recv, Some(timeout))?)
    }

    /// Waits for the next datagram (up to the timeout) and returns its events. `Ok(None)` on
    /// timeout; `Err` with ENOBUFS when the kernel dropped events (the caller must re-check).
    pub fn next(&mut self) -> io::Result<Option<Vec<Event>>> {
        match recv(&self.fd, &mut self.buf[..], RecvFlags::empty()) {
            Ok((n, _)) => Ok(Some(parse(&self.buf[..n.min(self.buf.len())]))),
            Err(e) if e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::INTR => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// The events in one netlink datagram; malformed bytes end the parse (never a panic).
pub fn parse(mut b: &[u8]) -> Vec<Event> {
    let mut out = Vec::new();
    while b.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let ty = u16::from_ne_bytes([b[4], b[5]]);
        if len < NLMSG_HDRLEN || len > b.len() {
            break;
        }
        let msg = &b[NLMSG_HDRLEN..len];
        if ty >> 8 == NFNL_SUBSYS_NFTABLES && msg.len() >= NFGENMSG_LEN {
            let attrs = &msg[NFGENMSG_LEN..];
            let kind = match ty & 0xff {
                NFT_MSG_NEWGEN => Kind::Generation {
                    pid: attr(attrs, NFTA_GEN_PROC_PID).and_then(be_u32),
                },
                t => kind(t),
            };
            let table = if matches!(kind, Kind::Generation { .. }) {
                None
            } else {
                attr(attrs, NFTA_TABLE).map(cstr)
            };
            out.push(Event {
                kind,
                family: msg[0],
                table,
            });
        }
        b = &b[align(len).min(b.len())..];
    }
    out
}

fn kind(msg: u16) -> Kind {
    // DELTABLE 2, DELCHAIN 5, DELRULE 8, DELSET 11, DELSETELEM 14; DESTROY* 26..30 (6.3+).
    match msg {
        2 | 5 | 8 | 11 | 14 | 26..=30 => Kind::Removed,
        _ => Kind::Other,
    }
}

/// The payload of the first attribute of type `want` (netlink(7) attributes, 4-byte aligned).
fn attr(mut a: &[u8], want: u16) -> Option<&[u8]> {
    while a.len() >= 4 {
        let len = u16::from_ne_bytes([a[0], a[1]]) as usize;
        let ty = u16::from_ne_bytes([a[2], a[3]]) & 0x3fff; // without NLA_F_NESTED/NET_BYTEORDER
        if len < 4 || len > a.len() {
            return None;
        }
        if ty == want {
            return Some(&a[4..len]);
        }
        a = &a[align(len).min(a.len())..];
    }
    None
}

fn cstr(v: &[u8]) -> String {
    String::from_utf8_lossy(v.split(|&c| c == 0).next().unwrap_or_default()).into_owned()
}

fn be_u32(v: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(v.get(..4)?.try_into().ok()?))
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ty: u16, attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = vec![1u8, 0, 0, 0]; // nfgenmsg: family 1 (inet)
        for (t, v) in attrs {
            body.extend_from_slice(&((4 + v.len()) as u16).to_ne_bytes());
            body.extend_from_slice(&t.to_ne_bytes());
            body.extend_from_slice(v);
            body.resize(align(body.len()), 0);
        }
        let mut m = ((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes().to_vec();
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend(body);
        m
    }

    #[test]
    fn parses_deltable_with_its_name_and_skips_garbage() {
        let mut b = msg((10 << 8) | 2, &[(1, b"rbox\0")]);
        b.extend(msg(
            (10 << 8) | 15,
            &[
                (1, b"\0\0\0\x07"),
                (2, &4242u32.to_be_bytes()),
                (3, b"nft\0"),
            ],
        ));
        b.extend(msg((10 << 8) | 12, &[(1, b"rbox\0")]));
        let ev = parse(&b);
        assert_eq!(
            ev[0],
            Event {
                kind: Kind::Removed,
                family: 1,
                table: Some("rbox".into())
            }
        );
        assert_eq!(ev[1].kind, Kind::Generation { pid: Some(4242) });
        assert_eq!(ev[2].kind, Kind::Other);
        assert!(parse(&[0xff; 7]).is_empty());
        let mut bad = msg((10 << 8) | 8, &[(1, b"x\0")]);
        bad[0] = 200; // length past the end
        assert!(parse(&bad).is_empty());
        let mut odd = msg((10 << 8) | 8, &[]);
        odd.extend_from_slice(&[5, 0, 1, 0]); // attribute longer than what is left
        odd[0] = odd.len() as u8;
        assert_eq!(parse(&odd)[0].table, None);
    }
}
