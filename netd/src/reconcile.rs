//! Start-up and `netd down`. At start the kernel is brought back to the saved state: bridges
//! restored, veths and leases whose namespace is gone released, half-made attachments (netd
//! killed mid-way) rolled back, stray veths and bridges of this netd removed, the table
//! rebuilt. `netd down` removes every bridge, veth, lease and the table. Kernel interface:
//! rtnetlink(7) through `links`.

use anyhow::{Context, Result};

use crate::attach::is_our_veth;
use crate::core::{Core, Net};
use crate::links;
use crate::store::Store;

/// Brings the kernel in line with the saved state, then builds the table and the names.
pub fn start(core: &mut Core) -> Result<()> {
    let mut nets = core.store.networks()?;
    nets.sort_by_key(|n| !n.default);
    for rec in nets {
        match links::ensure_bridge(&mut core.nl, &rec, core.mtu) {
            Ok(index) => {
                core.networks.insert(
                    rec.name.clone(),
                    Net {
                        rec,
                        bridge_index: index,
                    },
                );
            }
            Err(e) => tracing::error!("network {}: {e:#}", rec.name),
        }
    }
    // Before the default network is made: a bridge left by a netd whose state is lost would
    // otherwise look like a host route in the way.
    remove_strays(core, false, true)?;
    if !core.networks.values().any(|n| n.rec.default) {
        let rec = core.default_network()?;
        core.add_network(rec, false)
            .map_err(|f| anyhow::anyhow!("default network: {}", f.message))?;
    }
    let links = core.nl.links()?;
    for a in core.store.attachments()? {
        let live = links
            .iter()
            .any(|l| l.name == a.host_ifname && (l.index == a.host_index || !a.ready));
        if a.ready && live && core.networks.contains_key(&a.network) {
            core.atts.insert(a.host_ifname.clone(), a);
            continue;
        }
        if live {
            links::remove_veth(&mut core.nl, &a.host_ifname, 0)?;
        }
        if a.ready {
            tracing::info!(
                "released {} of container {} on {}: its namespace is gone",
                a.ipv4,
                a.container_name,
                a.network
            );
        } else {
            tracing::info!(
                "rolled back an unfinished attach of container {}",
                a.container_name
            );
        }
        core.store.remove_attachment(&a.host_ifname)?;
    }
    remove_strays(core, true, false)?;
    let view = core.fw_view();
    for w in core
        .fw
        .rebuild(&view)
        .map_err(|e| anyhow::anyhow!("firewall: {e}"))?
    {
        tracing::warn!("{w}");
    }
    core.update_dns();
    Ok(())
}

/// Veths (`veths`) and bridges (`bridges`) named as this netd names them that its state does
/// not know.
fn remove_strays(core: &mut Core, veths: bool, bridges: bool) -> Result<()> {
    let prefix = core.cfg.bridge_prefix.clone();
    for l in core.nl.links()? {
        let stray_veth = veths
            && l.kind.as_deref() == Some("veth")
            && is_our_veth(&prefix, &l.name)
            && !core.atts.contains_key(&l.name);
        let stray_bridge = bridges
            && l.kind.as_deref() == Some("bridge")
            && is_our_bridge(&prefix, &l.name)
            && !core.networks.values().any(|n| n.rec.bridge == l.name);
        if stray_veth || stray_bridge {
            tracing::info!(
                "removing stray {} {}",
                l.kind.as_deref().unwrap_or(""),
                l.name
            );
            links::remove_veth(&mut core.nl, &l.name, l.index)?;
        }
    }
    Ok(())
}

/// Whether `name` is a bridge name of the netd with `prefix` (the prefix and a number).
pub fn is_our_bridge(prefix: &str, name: &str) -> bool {
    name.strip_prefix(prefix)
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
}

/// `netd down`: removes every veth (and so lease), every bridge and the table of this netd;
/// network definitions stay for the next start.
pub fn down(core: &mut Core) -> Result<()> {
    let prefix = core.cfg.bridge_prefix.clone();
    let known: Vec<String> = core
        .store
        .networks()?
        .into_iter()
        .map(|n| n.bridge)
        .collect();
    for a in core.store.attachments()? {
        links::remove_veth(&mut core.nl, &a.host_ifname, 0)?;
        core.store.remove_attachment(&a.host_ifname)?;
    }
    for l in core.nl.links()? {
        let veth = l.kind.as_deref() == Some("veth") && is_our_veth(&prefix, &l.name);
        let bridge = l.kind.as_deref() == Some("bridge")
            && (is_our_bridge(&prefix, &l.name) || known.contains(&l.name));
        if veth || bridge {
            links::remove_veth(&mut core.nl, &l.name, l.index)
                .with_context(|| format!("remove {}", l.name))?;
        }
    }
    core.fw
        .teardown()
        .map_err(|e| anyhow::anyhow!("firewall: {e}"))?;
    Ok(())
}

/// Opens the state for `down`: the same locks as a running netd, so `down` refuses while one
/// runs.
pub fn open_for_down(dir: &std::path::Path, table: &str) -> Result<Store> {
    Store::open(dir, table).context("netd down")
}
