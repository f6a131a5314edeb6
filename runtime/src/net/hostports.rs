//! The host side of `-p` for the user-mode networks (pasta, slirp4netns): each published
//! port is tried on the host before the helper is started, so that a port in use, a
//! privileged port or an address the host does not have is one clear line (the helpers
//! report them vaguely or not at all), and a missing HOSTPORT gets a free one, as Docker and
//! Podman pick. Kernel interfaces: socket(7), bind(2), getsockname(2), SO_REUSEADDR;
//! /proc/sys/net/ipv4/ip_unprivileged_port_start (ip-sysctl.rst).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use netd_proto::{PortRequest, Proto, PublishedPort};
use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketFlags, SocketType};

use crate::error::{user, Result};

/// The ports of `req` with every host port fixed: tried on the host (bound and released at
/// once), a HOSTPORT of 0 replaced by a free one. `mode` names the `--net` for messages.
pub fn resolve(req: &[PortRequest], mode: &str) -> Result<Vec<PublishedPort>> {
    let mut out: Vec<PublishedPort> = Vec::with_capacity(req.len());
    for r in req {
        let host_port = probe(r, mode)?;
        let dup = out.iter().any(|p| {
            p.proto == r.proto
                && p.host_port == host_port
                && (p.host_ip.is_none() || r.host_ip.is_none() || p.host_ip == r.host_ip)
        });
        if dup {
            return Err(user(format!(
                "-p: host port {host_port}/{} is published twice: publish it once",
                r.proto
            )));
        }
        out.push(PublishedPort {
            proto: r.proto,
            host_ip: r.host_ip,
            host_port,
            port: r.port,
        });
    }
    Ok(out)
}

/// Binds the host address and port of `r` (port 0: any free one) and returns the port.
fn probe(r: &PortRequest, mode: &str) -> Result<u16> {
    let ip = r.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let family = match ip {
        IpAddr::V4(_) => AddressFamily::INET,
        IpAddr::V6(_) => AddressFamily::INET6,
    };
    let kind = match r.proto {
        Proto::Tcp => SocketType::STREAM,
        Proto::Udp => SocketType::DGRAM,
    };
    let shown = match ip {
        IpAddr::V6(v6) => format!("[{v6}]:{}", r.host_port),
        v4 => format!("{v4}:{}", r.host_port),
    };
    let what = format!("-p {shown}/{} (--net {mode})", r.proto);
    let fail = |e: Errno| {
        match e {
        Errno::ADDRINUSE => user(format!(
            "{what}: host port {}/{} is already in use: choose another HOSTPORT",
            r.host_port, r.proto
        )),
        Errno::ACCESS | Errno::PERM => user(format!(
            "{what}: host port {} is privileged for user {} (below net.ipv4.ip_unprivileged_port_start = {}): publish on a port at or above it",
            r.host_port,
            rustix::process::geteuid().as_raw(),
            unprivileged_port_start()
        )),
        Errno::ADDRNOTAVAIL => user(format!(
            "{what}: {ip} is not an address of this host: give one of its addresses or none"
        )),
        e => user(format!(
            "{what}: cannot bind it on the host: {}",
            std::io::Error::from(e)
        )),
    }
    };
    let s = rustix::net::socket_with(family, kind, SocketFlags::CLOEXEC, None).map_err(fail)?;
    if r.proto == Proto::Tcp {
        // As the helpers bind: a connection of the port's last user in TIME_WAIT is no
        // conflict, a listener is.
        rustix::net::sockopt::set_socket_reuseaddr(&s, true).map_err(fail)?;
    }
    rustix::net::bind(&s, &SocketAddr::new(ip, r.host_port)).map_err(fail)?;
    if r.host_port != 0 {
        return Ok(r.host_port);
    }
    match rustix::net::getsockname(&s).map_err(fail)?.try_into() {
        Ok(SocketAddr::V4(a)) => Ok(a.port()),
        Ok(SocketAddr::V6(a)) => Ok(a.port()),
        Err(_) => Err(fail(Errno::AFNOSUPPORT)),
    }
}

/// net.ipv4.ip_unprivileged_port_start (1024 when unreadable: the kernel's default).
fn unprivileged_port_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024)
}
