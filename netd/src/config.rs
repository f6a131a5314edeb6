//! netd's settings: a TOML file (`--config`), every key optional. No kernel interface but
//! reading the host's /etc/resolv.conf for the default resolvers.
//!
//! ```toml
//! table = "rbox"                  # the nftables table (family inet) netd owns
//! bridge_prefix = "rbox"          # bridges rbox0 (default network), rbox1, ...; veths rboxv<hex>
//! default_subnet = "10.222.0.0/16"
//! pool = "10.223.0.0/16"          # subnets for user networks and a colliding default bridge
//! pool_prefix = 24
//! pool6 = "fd00::/48"             # ULA /64s for --ipv6 networks (default: fd + 40 random bits)
//! dns = ["192.0.2.53"]            # upstream resolvers (default: the host's /etc/resolv.conf)
//! socket_group = "rbox"           # who may connect besides root (socket mode 0660)
//! max_attachments_per_user = 64   # for callers other than root
//! request_timeout_ms = 5000       # a client must send a whole request frame in this time
//! max_connections = 256
//! ```

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use anyhow::{bail, Context, Result};
use ipnet::{Ipv4Net, Ipv6Net};
use serde::Deserialize;

/// The settings in force.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub table: String,
    pub bridge_prefix: String,
    pub default_subnet: Ipv4Net,
    pub pool: Ipv4Net,
    pub pool_prefix: u8,
    pub pool6: Option<Ipv6Net>,
    pub dns: Option<Vec<IpAddr>>,
    pub socket_group: Option<String>,
    pub max_attachments_per_user: usize,
    pub request_timeout_ms: u64,
    pub max_connections: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            table: "rbox".into(),
            bridge_prefix: "rbox".into(),
            default_subnet: "10.222.0.0/16".parse().expect("constant"),
            pool: "10.223.0.0/16".parse().expect("constant"),
            pool_prefix: 24,
            pool6: None,
            dns: None,
            socket_group: None,
            max_attachments_per_user: 64,
            request_timeout_ms: 5000,
            max_connections: 256,
        }
    }
}

/// Longest bridge prefix: bridges are PREFIX + a number, veths PREFIX + "v" + at least 6 hex
/// digits, all within IFNAMSIZ (15 characters).
pub const MAX_PREFIX: usize = 8;

impl Config {
    /// Reads `path` (TOML), or the defaults without a file.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let cfg = match path {
            None => Config::default(),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("read config {}", p.display()))?;
                toml::from_str(&text).map_err(|e| {
                    anyhow::anyhow!("config {}: {}", p.display(), one_line(&e.to_string()))
                })?
            }
        };
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> Result<()> {
        let ident = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        };
        if !ident(&self.table) || self.table.len() > 64 {
            bail!(
                "config: bad table {:?}: use letters, digits, '_' and '-'",
                self.table
            );
        }
        if !ident(&self.bridge_prefix) || self.bridge_prefix.len() > MAX_PREFIX {
            bail!(
                "config: bad bridge_prefix {:?}: 1 to {MAX_PREFIX} letters, digits, '_' or '-'",
                self.bridge_prefix
            );
        }
        if self.default_subnet.prefix_len() > 30 {
            bail!(
                "config: default_subnet {} is too small (at most /30)",
                self.default_subnet
            );
        }
        if self.pool_prefix > 30 || self.pool_prefix < self.pool.prefix_len() {
            bail!(
                "config: pool_prefix {} must lie between the pool's /{} and /30",
                self.pool_prefix,
                self.pool.prefix_len()
            );
        }
        if let Some(p6) = self.pool6 {
            if p6.prefix_len() > 64 {
                bail!("config: pool6 {p6} must be /64 or larger");
            }
        }
        Ok(())
    }

    /// The upstream resolvers: the config's, else the host's /etc/resolv.conf nameservers
    /// (port 53).
    pub fn upstreams(&self) -> Vec<SocketAddr> {
        let ips = match &self.dns {
            Some(d) => d.clone(),
            None => host_nameservers(),
        };
        ips.into_iter().map(|ip| SocketAddr::new(ip, 53)).collect()
    }
}

/// The `nameserver` lines of /etc/resolv.conf (systemd-resolved's stub replaced by its
/// upstream list when the stub is all there is, as Docker does).
pub fn host_nameservers() -> Vec<IpAddr> {
    let read = |p: &str| -> Vec<IpAddr> {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                (w.next() == Some("nameserver")).then(|| w.next()?.parse().ok())?
            })
            .collect()
    };
    let ns = read("/etc/resolv.conf");
    if !ns.is_empty() && ns.iter().all(|ip| ip.is_loopback()) {
        let up = read("/run/systemd/resolve/resolv.conf");
        if !up.is_empty() {
            return up;
        }
    }
    ns
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c: Config = toml::from_str("table = \"t1\"\nbridge_prefix = \"tb\"\n").unwrap();
        assert_eq!(c.table, "t1");
        assert_eq!(c.pool_prefix, 24);
        c.check().unwrap();
        assert!(toml::from_str::<Config>("tabel = \"x\"").is_err());
        let c: Config = toml::from_str("bridge_prefix = \"toolongprefix\"").unwrap();
        assert!(c.check().is_err());
    }
}
