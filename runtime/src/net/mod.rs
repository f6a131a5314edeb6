//! rrun's side of container networking through netd: the options of `rrun run` (`-p`,
//! `--network-alias`, `--dns`, `--add-host`), the attach and release of a container, the
//! container's /etc/hosts and /etc/resolv.conf, `network.json` in its folder, and the
//! `rrun network` and `rrun port` commands. rrun links only netd-proto: no netlink, no
//! nftables. `--net none` is in `netns.rs`; `--net container:NAME` joins that container's
//! namespace at clone time (`join`). Whether netd's socket is open to the user, and what to
//! tell one it is not open to, is `access`. `--net pasta` and `--net slirp4netns` need no
//! netd: a helper process of the user's runs the network (`usernet`, `pasta`, `slirp`).

pub mod access;
pub mod attach;
pub mod commands;
pub mod etc;
pub mod hostports;
pub mod join;
pub mod pasta;
pub mod slirp;
pub mod usernet;

pub use crate::netopts as options;
pub use crate::netopts::NetOptions;
pub use crate::netrecord as record;

use crate::channel::NetEtc;
use crate::error::Result;
use crate::spec::NetMode;
use crate::state::{Containers, State};

/// The /etc files of a container whose network netd made (waiting for netd's answer to
/// `pending`), a user-mode helper made (`user_net`), or that shares another container's
/// (`--net container:NAME`); None otherwise.
pub fn container_etc(
    containers: &Containers,
    st: &State,
    pending: Option<attach::Pending>,
    user_net: Option<&record::UserNet>,
) -> Result<Option<NetEtc>> {
    let dir = containers.dir(&st.id);
    let addrs = match (pending, user_net, &st.config.net) {
        (Some(p), _, _) => etc::Addresses::from(&attach::finish(p, &dir)?),
        (None, Some(u), _) => etc::Addresses::from(u),
        (None, None, NetMode::Container(name)) => {
            let att = containers.find(name).ok().and_then(|t| {
                record::NetRecord::load(&containers.dir(&t.id))
                    .attachments
                    .into_iter()
                    .next()
            });
            // Sharing another container's namespace, it has no address of its own to name
            // (nor a gateway for host-gateway): only that network's resolvers.
            etc::Addresses {
                dns: att.map(|a| a.dns).unwrap_or_default(),
                ..etc::Addresses::default()
            }
        }
        _ => return Ok(None),
    };
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let opts = &st.config.net_opts;
    Ok(Some(NetEtc {
        hosts: etc::hosts(&st.config.hostname, &addrs, opts),
        resolv_conf: etc::resolv_conf(&addrs, opts, &host),
    }))
}
