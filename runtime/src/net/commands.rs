//! `rrun network create|ls|inspect|rm|connect|disconnect` and `rrun port`: requests to netd,
//! and the container's own record for connect, disconnect and port. No kernel interface but
//! open(2) of /proc/PID/ns/net for connect.

use std::io::Write;
use std::path::Path;

use netd_proto::{AttachRequest, Client, NetworkCreateRequest};

use crate::error::{user, Context, Error, Result};
use crate::net::attach::netd_error;
use crate::net::record::{port_lines, NetRecord};
use crate::state::{self, Containers};

fn client() -> Result<Client> {
    Client::connect_default().map_err(netd_error)
}

fn print(text: &str) -> Result<i32> {
    writeln!(std::io::stdout(), "{text}").ctx(|| "write to stdout".into())?;
    Ok(0)
}

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string_pretty(v).map_err(|source| Error::Json {
        what: "serialize".into(),
        source,
    })
}

/// `rrun network create NAME [--subnet CIDR] [--ipv6 [--subnet6 CIDR]]`: prints the name.
pub fn create(name: &str, subnet: Option<&str>, ipv6: bool, subnet6: Option<&str>) -> Result<i32> {
    let subnet = subnet
        .map(|s| {
            s.parse().map_err(|_| {
                user(format!(
                    "bad --subnet {s:?}: use an IPv4 CIDR such as 10.201.0.0/24"
                ))
            })
        })
        .transpose()?;
    let subnet6 = subnet6
        .map(|s| {
            s.parse().map_err(|_| {
                user(format!(
                    "bad --subnet6 {s:?}: use an IPv6 CIDR such as fd00:1::/64"
                ))
            })
        })
        .transpose()?;
    let n = client()?
        .network_create(NetworkCreateRequest {
            name: name.into(),
            subnet,
            ipv6: ipv6 || subnet6.is_some(),
            subnet6,
        })
        .map_err(netd_error)?;
    print(&n.name)
}

/// `rrun network ls`: one line per network.
pub fn ls() -> Result<i32> {
    let nets = client()?.network_list().map_err(netd_error)?;
    let mut out = format!(
        "{:<20} {:<12} {:<18} {:<24} {}",
        "NAME", "BRIDGE", "SUBNET", "SUBNET6", "CONTAINERS"
    );
    for n in nets {
        out.push_str(&format!(
            "\n{:<20} {:<12} {:<18} {:<24} {}",
            n.name,
            n.bridge,
            n.subnet.to_string(),
            n.subnet6
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            n.attached
        ));
    }
    print(&out)
}

/// `rrun network inspect NAME`: netd's description as JSON.
pub fn inspect(name: &str) -> Result<i32> {
    let n = client()?.network_inspect(name).map_err(netd_error)?;
    print(&json(&n)?)
}

/// `rrun network rm NAME...`.
pub fn rm(names: &[String]) -> Result<i32> {
    let mut c = client()?;
    for n in names {
        c.network_remove(n).map_err(netd_error)?;
        print(n)?;
    }
    Ok(0)
}

/// `rrun network connect [--alias A] NETWORK CONTAINER`: another interface (eth1, ...) in a
/// running container.
pub fn connect(root: &Path, network: &str, name: &str, aliases: &[String]) -> Result<i32> {
    let containers = Containers::open(root)?;
    let _l = containers.lock(&containers.find(name)?.id)?;
    let st = containers.find(name)?;
    if st.pid <= 0 || !state::init_alive(st.pid, st.pid_start) {
        return Err(user(format!(
            "container {name} is not running: start it first"
        )));
    }
    if crate::net::attach::network_of(&st.config.net).is_none() {
        return Err(user(format!(
            "container {name} runs with --net {}: only containers on netd's networks can be connected",
            st.config.net.name()
        )));
    }
    let p = format!("/proc/{}/ns/net", st.pid);
    let ns = std::fs::File::open(&p).ctx(|| format!("open {p}"))?;
    if !state::init_alive(st.pid, st.pid_start) {
        return Err(user(format!("container {name} is not running")));
    }
    for a in aliases {
        crate::net::options::check_alias(a)?;
    }
    let dir = containers.dir(&st.id);
    let mut rec = NetRecord::load(&dir);
    let att = client()?
        .attach(
            std::os::fd::AsFd::as_fd(&ns),
            AttachRequest {
                network: network.into(),
                container_id: st.id.clone(),
                container_name: st.name.clone(),
                aliases: aliases.to_vec(),
                ports: vec![],
            },
        )
        .map_err(netd_error)?;
    rec.attachments.push(att);
    rec.save(&dir)?;
    Ok(0)
}

/// `rrun network disconnect NETWORK CONTAINER`.
pub fn disconnect(root: &Path, network: &str, name: &str) -> Result<i32> {
    let containers = Containers::open(root)?;
    let st = containers.find(name)?;
    let _l = containers.lock(&st.id)?;
    let dir = containers.dir(&st.id);
    let mut rec = NetRecord::load(&dir);
    let done = client()?
        .detach(&st.id, Some(network))
        .map_err(netd_error)?;
    if done.is_empty() {
        return Err(user(format!(
            "container {name} is not on network {network}"
        )));
    }
    rec.attachments.retain(|a| a.network != network);
    rec.save(&dir)?;
    Ok(0)
}

/// `rrun port NAME`: the container's published ports, `80/tcp -> 0.0.0.0:8080` per line.
pub fn port(root: &Path, name: &str) -> Result<i32> {
    let containers = Containers::open(root)?;
    let st = containers.find(name)?;
    let lines = port_lines(&NetRecord::load(&containers.dir(&st.id)));
    if !lines.is_empty() {
        print(&lines.join("\n"))?;
    }
    Ok(0)
}
