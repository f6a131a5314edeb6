//! The host's resolvers, the default upstreams: `nameserver` lines of /etc/resolv.conf
//! (resolv.conf(5)) without loopback addresses, which mean a local stub such as
//! systemd-resolved's 127.0.0.53; then the stub's own upstreams in
//! /run/systemd/resolve/resolv.conf are used, as Docker does. No kernel interface.

use std::net::{IpAddr, SocketAddr};

/// Nameservers of `path` (port 53), loopback ones left out; falls back to systemd-resolved's
/// upstream list when nothing else is left. Empty when neither file names one.
pub fn host_resolvers(path: &str) -> Vec<SocketAddr> {
    let found = parse(&std::fs::read_to_string(path).unwrap_or_default());
    if !found.is_empty() {
        return found;
    }
    parse(&std::fs::read_to_string("/run/systemd/resolve/resolv.conf").unwrap_or_default())
}

fn parse(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == "nameserver").then_some(())?;
            // An IPv6 link-local nameserver may carry a %zone, which a SocketAddr cannot.
            w.next()?.parse::<IpAddr>().ok()
        })
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_loopback_and_garbage() {
        let t = "# c\nnameserver 127.0.0.53\nnameserver 198.18.0.2\nnameserver ::1\nnameserver 2001:db8::53\nnameserver x\nsearch lan\n";
        let v: Vec<String> = parse(t).iter().map(|s| s.to_string()).collect();
        assert_eq!(v, ["198.18.0.2:53", "[2001:db8::53]:53"]);
    }
}
