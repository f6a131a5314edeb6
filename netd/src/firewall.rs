//! STUB (replaced by branch netfw): netd's nftables table. The contract netd's core relies on
//! is written in lib.rs ("The seam"); this stub keeps the crate building and does nothing.

use crate::view::{FirewallView, NetView, PortView};

/// Settings the firewall gets from netd's config.
#[derive(Debug, Clone)]
pub struct FirewallConfig {
    /// The nftables table (family inet) netd owns; nothing else is touched.
    pub table: String,
    /// Every bridge netd makes starts with this.
    pub bridge_prefix: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FirewallError(pub String);

/// netd's table.
pub struct Firewall {
    _cfg: FirewallConfig,
}

impl Firewall {
    /// Prepares the firewall; touches nothing in the kernel yet.
    pub fn new(cfg: FirewallConfig) -> Result<Firewall, FirewallError> {
        Ok(Firewall { _cfg: cfg })
    }

    /// Replaces netd's whole table with one built from `view`, in one transaction, and sets
    /// the sysctls it needs. Returns warnings to log (a drop policy elsewhere).
    pub fn rebuild(&mut self, _view: &FirewallView) -> Result<Vec<String>, FirewallError> {
        Ok(Vec::new())
    }

    /// A network (its bridge exists, with its addresses) was added; `view` includes it.
    pub fn add_network(
        &mut self,
        _net: &NetView,
        _view: &FirewallView,
    ) -> Result<Vec<String>, FirewallError> {
        Ok(Vec::new())
    }

    /// A network is going away (its bridge is deleted after this); `view` excludes it.
    pub fn remove_network(
        &mut self,
        _net: &NetView,
        _view: &FirewallView,
    ) -> Result<(), FirewallError> {
        Ok(())
    }

    /// Adds published ports (map elements), all or none.
    pub fn add_ports(&mut self, _ports: &[PortView]) -> Result<(), FirewallError> {
        Ok(())
    }

    /// Removes published ports; ports already absent are no error.
    pub fn remove_ports(&mut self, _ports: &[PortView]) -> Result<(), FirewallError> {
        Ok(())
    }

    /// `netd down`: deletes netd's table.
    pub fn teardown(&mut self) -> Result<(), FirewallError> {
        Ok(())
    }

    /// Starts watching nftables events: `on_gone` is called (from the watcher's own thread)
    /// whenever netd's table disappeared (`nft flush ruleset`, a firewall reload).
    pub fn watch(&self, _on_gone: Box<dyn Fn() + Send + 'static>) -> Result<(), FirewallError> {
        Ok(())
    }
}
