//! The network options of `rrun run` as rrun keeps them in a container's config: published
//! ports (`-p`), aliases, `--dns`, `--add-host`, and the namespace joined by
//! `--net container:NAME`. Parsing only; no kernel interface.

use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use netd_proto::{check_name, PortRequest, Proto};
use serde::{Deserialize, Serialize};

use crate::error::{user, Result};

/// What the command line asked for besides `--net`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NetOptions {
    #[serde(default)]
    pub ports: Vec<PortRequest>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub dns: Vec<IpAddr>,
    /// `--add-host NAME:IP` (IP may be `host-gateway`: the network's gateway).
    #[serde(default)]
    pub add_hosts: Vec<(String, String)>,
    /// `--net container:NAME`: that container's network namespace, opened when the command
    /// line was read (None in a state read back from disk).
    #[serde(skip)]
    pub join: Option<Arc<OwnedFd>>,
}

impl PartialEq for NetOptions {
    fn eq(&self, o: &NetOptions) -> bool {
        (&self.ports, &self.aliases, &self.dns, &self.add_hosts)
            == (&o.ports, &o.aliases, &o.dns, &o.add_hosts)
    }
}

/// Parses `-p [HOSTIP:][HOSTPORT:]PORT[/tcp|/udp]` (HOSTIP `[v6]` in brackets; an empty,
/// absent or 0 HOSTPORT lets netd pick a free one).
pub fn parse_publish(s: &str) -> Result<PortRequest> {
    let bad = |why: &str| {
        user(format!(
            "bad -p {s:?}: {why} (use [HOSTIP:]HOSTPORT:PORT[/tcp|/udp], e.g. 8080:80 or [2001:db8::1]:8080:80/udp)"
        ))
    };
    let (spec, proto) = match s.rsplit_once('/') {
        Some((a, "tcp")) => (a, Proto::Tcp),
        Some((a, "udp")) => (a, Proto::Udp),
        Some(_) => return Err(bad("the protocol is tcp or udp")),
        None => (s, Proto::Tcp),
    };
    let (host_ip, rest): (Option<IpAddr>, &str) = if let Some(r) = spec.strip_prefix('[') {
        let (ip, rest) = r
            .split_once(']')
            .ok_or_else(|| bad("no ']' after the IPv6 address"))?;
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| bad("not an IPv6 address in [...]"))?;
        let rest = rest
            .strip_prefix(':')
            .ok_or_else(|| bad("':' must follow [HOSTIP]"))?;
        (Some(ip), rest)
    } else {
        let parts: Vec<&str> = spec.split(':').collect();
        match parts.len() {
            1 | 2 => (None, spec),
            3 => {
                let ip = parts[0]
                    .parse()
                    .map_err(|_| bad("HOSTIP is not an IP address"))?;
                (Some(ip), &spec[parts[0].len() + 1..])
            }
            _ => return Err(bad("too many ':' (put an IPv6 HOSTIP in brackets)")),
        }
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    // HOSTPORT 0 picks a free one, as in Docker and Podman (`-p 0:80`, like `-p :80`).
    let port = |p: &str, what: &str| -> Result<u16> {
        let least = u16::from(what == "PORT");
        if p.split_once('-')
            .is_some_and(|(a, b)| digits(a) && digits(b))
        {
            return Err(bad(&format!(
                "{what} {p:?} is a range, and port ranges are not supported: publish each port"
            )));
        }
        match p.parse::<u16>() {
            Ok(n) if n >= least && digits(p) => Ok(n),
            _ => Err(bad(&format!(
                "{what} {p:?} is not a number in {least}-65535"
            ))),
        }
    };
    let (host_port, cport) = match rest.split_once(':') {
        Some(("", c)) => (0, port(c, "PORT")?),
        Some((h, c)) => (port(h, "HOSTPORT")?, port(c, "PORT")?),
        None if host_ip.is_none() => (0, port(rest, "PORT")?),
        None => return Err(bad("HOSTIP needs HOSTPORT:PORT (or HOSTIP::PORT)")),
    };
    Ok(PortRequest {
        proto,
        host_ip,
        host_port,
        port: cport,
    })
}

/// Parses `--add-host NAME:IP` (IP may be IPv6, or `host-gateway`).
pub fn parse_add_host(s: &str) -> Result<(String, String)> {
    let (name, ip) = s
        .split_once(':')
        .or_else(|| s.split_once('='))
        .ok_or_else(|| user(format!("bad --add-host {s:?}: use NAME:IP")))?;
    let ok_name = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c));
    if !ok_name {
        return Err(user(format!(
            "bad --add-host {s:?}: {name:?} is not a host name"
        )));
    }
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if ip != "host-gateway" && ip.parse::<IpAddr>().is_err() {
        return Err(user(format!(
            "bad --add-host {s:?}: {ip:?} is not an IP address (or host-gateway)"
        )));
    }
    Ok((name.to_string(), ip.to_string()))
}

/// Checks `--network-alias` names (DNS labels as netd wants them).
pub fn check_alias(a: &str) -> Result<()> {
    check_name("--network-alias", a).map_err(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> (Option<String>, u16, u16, Proto) {
        let r = parse_publish(s).unwrap();
        (
            r.host_ip.map(|i| i.to_string()),
            r.host_port,
            r.port,
            r.proto,
        )
    }

    #[test]
    fn publish_forms() {
        assert_eq!(p("8080:80"), (None, 8080, 80, Proto::Tcp));
        assert_eq!(p("80"), (None, 0, 80, Proto::Tcp));
        assert_eq!(p("53/udp"), (None, 0, 53, Proto::Udp));
        assert_eq!(
            p("127.0.0.1:8080:80/udp"),
            (Some("127.0.0.1".into()), 8080, 80, Proto::Udp)
        );
        assert_eq!(
            p("127.0.0.1::80"),
            (Some("127.0.0.1".into()), 0, 80, Proto::Tcp)
        );
        assert_eq!(
            p("[2001:db8::1]:8080:80"),
            (Some("2001:db8::1".into()), 8080, 80, Proto::Tcp)
        );
        assert_eq!(p(":80"), (None, 0, 80, Proto::Tcp));
        assert_eq!(p("0:80"), (None, 0, 80, Proto::Tcp));
        assert_eq!(
            p("127.0.0.1:0:80/udp"),
            (Some("127.0.0.1".into()), 0, 80, Proto::Udp)
        );
        for bad in [
            "",
            "0",
            "70000",
            "80/sctp",
            "1:2:3:4",
            "8000-8010:80",
            "[::1:80",
            "x:1:2",
            "127.0.0.1:80",
        ] {
            assert!(parse_publish(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_bad_port_is_named_in_one_line() {
        for (spec, want) in [
            ("-1:80", r#"HOSTPORT "-1" is not a number in 0-65535"#),
            ("80:0", r#"PORT "0" is not a number in 1-65535"#),
            ("70000:80", r#"HOSTPORT "70000" is not a number in 0-65535"#),
            ("a:80", r#"HOSTPORT "a" is not a number in 0-65535"#),
            ("+8080:80", r#"HOSTPORT "+8080" is not a number in 0-65535"#),
            ("8080:-80", r#"PORT "-80" is not a number in 1-65535"#),
            ("8080:", r#"PORT "" is not a number in 1-65535"#),
            (
                "127.0.0.1:-1:80",
                r#"HOSTPORT "-1" is not a number in 0-65535"#,
            ),
            ("-1", r#"PORT "-1" is not a number in 1-65535"#),
            (
                "8000-8010:80",
                r#"HOSTPORT "8000-8010" is a range, and port ranges are not supported"#,
            ),
        ] {
            let e = parse_publish(spec).unwrap_err().to_string();
            assert_eq!(e.lines().count(), 1, "{e}");
            assert!(
                e.starts_with(&format!("bad -p {spec:?}: {want}")),
                "{spec}: {e}"
            );
        }
    }

    #[test]
    fn add_host_forms() {
        assert_eq!(
            parse_add_host("db:10.0.0.5").unwrap(),
            ("db".into(), "10.0.0.5".into())
        );
        assert_eq!(parse_add_host("db:2001:db8::5").unwrap().1, "2001:db8::5");
        assert_eq!(parse_add_host("gw:host-gateway").unwrap().1, "host-gateway");
        assert!(parse_add_host("db").is_err());
        assert!(parse_add_host("a b:1.2.3.4").is_err());
        assert!(parse_add_host("db:nope").is_err());
    }
}
