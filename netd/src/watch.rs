//! Releases the lease of a container whose network namespace ended without a detach (rrun
//! SIGKILLed): the kernel deletes the veth pair with the namespace, and netd, subscribed to
//! link events, sees the host end's RTM_DELLINK. No polling, and no netns descriptor kept.
//! Kernel interface: rtnetlink(7) RTMGRP_LINK.

use anyhow::{Context, Result};

use crate::attach::is_our_veth;
use crate::core::{lock, Shared};
use crate::sys::netlink::{LinkEvent, Netlink, GROUP_LINK};

/// Subscribes now (so no event after start-up is missed) and serves on a thread.
pub fn spawn(core: Shared, bridge_prefix: String) -> Result<()> {
    let mut nl = Netlink::open_groups(GROUP_LINK).context("subscribe to link events")?;
    // Anything that vanished between the reconcile and the subscription.
    lock(&core).rescan();
    std::thread::Builder::new()
        .name("link-events".into())
        .spawn(move || loop {
            let events = match nl.link_events() {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!("link events: {e}");
                    std::thread::sleep(std::time::Duration::from_secs(1));
                    continue;
                }
            };
            for ev in events {
                match ev {
                    LinkEvent::Del { index, name } if is_our_veth(&bridge_prefix, &name) => {
                        lock(&core).vanished(&name, index)
                    }
                    LinkEvent::Overrun => lock(&core).rescan(),
                    _ => {}
                }
            }
        })
        .context("start the link-event thread")?;
    Ok(())
}
