//! The contents of a container's /etc/hosts and /etc/resolv.conf for its network: its own
//! addresses and hostname, `--add-host` entries, and the resolvers netd named (only netd's
//! own on a user network, since musl asks every nameserver at once). No kernel interface.

use std::fmt::Write;
use std::net::IpAddr;

use netd_proto::Attachment;

use crate::net::options::NetOptions;

/// /etc/hosts for a container on `att` (None: no address of its own, e.g. container:NAME).
pub fn hosts(hostname: &str, att: Option<&Attachment>, opts: &NetOptions) -> String {
    let mut s = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    match att {
        Some(a) => {
            let _ = writeln!(s, "{}\t{hostname}", a.ipv4.address);
            if let Some(v6) = a.ipv6 {
                let _ = writeln!(s, "{}\t{hostname}", v6.address);
            }
        }
        None => {
            let _ = writeln!(s, "127.0.1.1\t{hostname}");
        }
    }
    for (name, ip) in &opts.add_hosts {
        let ip = match (ip.as_str(), att) {
            ("host-gateway", Some(a)) => a.gateway4.to_string(),
            ("host-gateway", None) => continue,
            (ip, _) => ip.to_string(),
        };
        let _ = writeln!(s, "{ip}\t{name}");
    }
    s
}

/// /etc/resolv.conf: `--dns` if given, else the resolvers netd named; the host's `search`
/// and `options` lines are kept.
pub fn resolv_conf(att: Option<&Attachment>, opts: &NetOptions, host: &str) -> Vec<u8> {
    let mut s = String::new();
    let servers: Vec<IpAddr> = if !opts.dns.is_empty() {
        opts.dns.clone()
    } else {
        att.map(|a| a.dns.clone()).unwrap_or_default()
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
