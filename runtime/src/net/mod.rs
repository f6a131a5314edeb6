//! rrun's side of container networking through netd: the options of `rrun run` (`-p`,
//! `--network-alias`, `--dns`, `--add-host`), the attach and release of a container, the
//! container's /etc/hosts and /etc/resolv.conf, `network.json` in its folder, and the
//! `rrun network` and `rrun port` commands. rrun links only netd-proto: no netlink, no
//! nftables. `--net none` is in `netns.rs`; `--net container:NAME` joins that container's
//! namespace at clone time (`join`). Whether netd's socket is open to the user, and what to
//! tell one it is not open to, is `access`.

pub mod access;
pub mod attach;
pub mod commands;
pub mod etc;
pub mod join;

pub use crate::netopts as options;
pub use crate::netopts::NetOptions;
pub use crate::netrecord as record;

use crate::channel::NetEtc;
use crate::error::Result;
use crate::spec::NetMode;
use crate::state::{Containers, State};

/// The /etc files of a container whose network netd made (waiting for netd's answer to
/// `pending`), or shares with another container (`--net container:NAME`); None otherwise.
pub fn container_etc(
    containers: &Containers,
    st: &State,
    pending: Option<attach::Pending>,
) -> Result<Option<NetEtc>> {
    let dir = containers.dir(&st.id);
    let att = match (pending, &st.config.net) {
        (Some(p), _) => Some(attach::finish(p, &dir)?),
        (None, NetMode::Container(name)) => containers.find(name).ok().and_then(|t| {
            record::NetRecord::load(&containers.dir(&t.id))
                .attachments
                .into_iter()
                .next()
        }),
        (None, _) => return Ok(None),
    };
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let opts = &st.config.net_opts;
    // Sharing another container's namespace, it has no address of its own to name.
    let own = att
        .as_ref()
        .filter(|_| !matches!(st.config.net, NetMode::Container(_)));
    Ok(Some(NetEtc {
        hosts: etc::hosts(&st.config.hostname, own, opts),
        resolv_conf: etc::resolv_conf(att.as_ref(), opts, &host),
    }))
}
