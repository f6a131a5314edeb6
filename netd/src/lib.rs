//! netd: the host service that owns container networking: bridges, veth pairs, IP leases,
//! MASQUERADE and DNAT (one nftables table of its own), and name resolution on user networks.
//! Clients (rrun) speak the protocol of the `netd-proto` crate on a Unix socket.
//!
//! # Layout
//!
//! | module | owns | kernel interface |
//! |---|---|---|
//! | `config` | netd's settings (TOML): table, bridge prefix, subnets, resolvers, limits | none |
//! | `store` | networks and leases on disk under `--state-dir`, written atomically | rename(2), flock(2) |
//! | `ipam` | picking subnets and addresses; overlap checks | none |
//! | `sys/netlink` | one NETLINK_ROUTE socket: links, addresses, routes | rtnetlink(7) |
//! | `sys/netns` | netns descriptors: type, owner, a netlink socket inside one | setns(2), ioctl_ns(2) |
//! | `links` | bridges and veth pairs as netd makes them | through `sys/netlink` |
//! | `core` | the state behind one lock; dispatch; views for firewall and dns | none |
//! | `attach` | attach and detach; rollback over a typed list of what was made | through the above |
//! | `networks` | the default network, user networks: create, ls, inspect, rm | through `links` |
//! | `auth` | who may do what (SO_PEERCRED, netns owner, ports, limits) | ioctl_ns(2) |
//! | `server` | the socket, connections, time and size limits | unix(7) |
//! | `watch` | RTM_DELLINK: leases of veths that vanished with their namespace | rtnetlink(7) |
//! | `reconcile` | start-up: kernel ⇄ state; `netd down` | through the above |
//! | `firewall` | the nftables table (branch netfw) | nftables (JSON via `nft`), NFNLGRP_NFTABLES |
//! | `dns` | the resolver on user networks' gateways (branch netfw) | sockets |
//!
//! # The seam between the core and `firewall` / `dns`
//!
//! The core owns state; `firewall` and `dns` get views of it ([`view`]) and never read netd's
//! files. Every call below is made by the core **while it holds its state lock**, so calls
//! never overlap and each sees the state it describes.
//!
//! `firewall::Firewall` (see firewall.rs for signatures):
//! - `new(FirewallConfig { table, bridge_prefix })`: no kernel work.
//! - `rebuild(&FirewallView) -> Vec<warning>`: the whole table in one transaction (at start,
//!   after a flush); ip_forward, route_localnet on netd's bridges, accept_ra, drop-policy
//!   detection (a warning naming the other table).
//! - `add_network(&NetView, &FirewallView)`, `remove_network(&NetView, &FirewallView)`: a
//!   network was created (bridge up, addresses set) / is about to be deleted.
//! - `add_ports(&[PortView])`, `remove_ports(&[PortView])`: DNAT map elements, incrementally;
//!   called by attach/detach (nothing else in the table changes per container).
//! - `teardown()`: `netd down` deletes the table.
//! - `watch(on_gone)`: NFNLGRP_NFTABLES watcher on its own thread; calls `on_gone()` when the
//!   table vanished; the core then takes its lock and calls `rebuild`.
//!
//! `dns::Dns`: `new(DnsConfig { upstreams })`, `update(&DnsView)` after every change of names
//! or networks (cheap, no blocking I/O: the responder runs on its own thread/runtime).
//!
//! # Concurrency
//!
//! The core is synchronous: a thread per connection (bounded), one mutex over the state, one
//! NETLINK_ROUTE socket reused for the host's side. The container's side of an attach uses a
//! netlink socket opened inside the container's netns (setns on a short-lived thread), closed
//! before the reply: netd keeps no netns descriptor after an attach.

pub mod attach;
pub mod auth;
pub mod config;
pub mod core;
pub mod dns;
pub mod firewall;
pub mod ipam;
pub mod links;
pub mod networks;
pub mod reconcile;
pub mod server;
pub mod store;
pub mod sys;
pub mod view;
pub mod watch;
