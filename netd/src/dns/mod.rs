//! STUB (replaced by branch netfw): the DNS responder on user networks' gateways. The contract
//! netd's core relies on is written in lib.rs ("The seam"); this stub answers nothing.

use std::net::SocketAddr;

use crate::view::DnsView;

/// Settings from netd's config.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// Where names that are not containers' are forwarded (from the config, else the host's
    /// /etc/resolv.conf).
    pub upstreams: Vec<SocketAddr>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DnsError(pub String);

/// The responder.
pub struct Dns {
    _cfg: DnsConfig,
}

impl Dns {
    /// Starts the responder (on its own thread or runtime); listens nowhere yet.
    pub fn new(cfg: DnsConfig) -> Result<Dns, DnsError> {
        Ok(Dns { _cfg: cfg })
    }

    /// Replaces what the responder answers and where it listens with `view`. Called after
    /// every attach, detach, network create and rm; must be cheap (no blocking I/O).
    pub fn update(&mut self, _view: &DnsView) -> Result<(), DnsError> {
        Ok(())
    }
}
