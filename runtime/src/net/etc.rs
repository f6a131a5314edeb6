//! The contents of a container's /etc/hosts and /etc/resolv.conf for its network: its own
//! addresses and hostname, `--add-host` entries, and the resolvers its network offers (only
//! netd's own on a user network, since musl asks every nameserver at once; the helper's DNS
//! forwarder under pasta and slirp4netns). No kernel interface.

use std::fmt::Write;
use std::net::IpAddr;

use netd_proto::Attachment;

use crate::net::options::NetOptions;
use crate::net::record::UserNet;

/// What a container's network gives it, whoever made it (netd or a user-mode helper).
#[derive(Debug, Clone, Default)]
pub struct Addresses {
    /// Its own addresses (none: e.g. it shares another container's namespace).
    pub own: Vec<IpAddr>,
    /// What `--add-host NAME:host-gateway` names.
    pub gateway: Option<IpAddr>,
    pub dns: Vec<IpAddr>,
}

impl From<&Attachment> for Addresses {
    fn from(a: &Attachment) -> Addresses {
        Addresses {
            own: std::iter::once(IpAddr::V4(a.ipv4.address))
                .chain(a.ipv6.map(|v| IpAddr::V6(v.address)))
                .collect(),
            gateway: Some(IpAddr::V4(a.gateway4)),
            dns: a.dns.clone(),
        }
    }
}

impl From<&UserNet> for Addresses {
    fn from(u: &UserNet) -> Addresses {
        Addresses {
            own: u.address.map(IpAddr::V4).into_iter().collect(),
            // pasta runs with --no-map-gw: its gateway is the real one, not the host.
            gateway: match u.mode.as_str() {
                "slirp4netns" => u.gateway.map(IpAddr::V4),
                _ => None,
            },
            dns: u.dns.clone(),
        }
    }
}

/// /etc/hosts for a container whose network gave it `addrs` (the hostname on 127.0.1.1 when
/// it has no address of its own, as Debian does).
pub fn hosts(hostname: &str, addrs: &Addresses, opts: &NetOptions) -> String {
    let mut s = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if addrs.own.is_empty() {
        let _ = writeln!(s, "127.0.1.1\t{hostname}");
    }
    for ip in &addrs.own {
        let _ = writeln!(s, "{ip}\t{hostname}");
    }
    for (name, ip) in &opts.add_hosts {
        let ip = match (ip.as_str(), addrs.gateway) {
            ("host-gateway", Some(gw)) => gw.to_string(),
            ("host-gateway", None) => continue,
            (ip, _) => ip.to_string(),
        };
        let _ = writeln!(s, "{ip}\t{name}");
    }
    s
}

/// /etc/resolv.conf: `--dns` if given, else the resolvers of `addrs`; the host's `search`
/// and `options` lines are kept.
pub fn resolv_conf(addrs: &Addresses, opts: &NetOptions, host: &str) -> Vec<u8> {
    let mut s = String::new();
    let servers: &[IpAddr] = if !opts.dns.is_empty() {
        &opts.dns
    } else {
        &addrs.dns
    };
    for l in host.lines() {
        let w = l.split_whitespace().next().unwrap_or("");
        if w == "search" || w == "options" {
            s.push_str(l);
            s.push('\n');
        }
    }
    if servers.is_empty() {
        s.push_str("# no resolver reachable from containers is known: pass --dns IP\n");
    }
    for ip in servers {
        let _ = writeln!(s, "nameserver {ip}");
    }
    s.into_bytes()
}
