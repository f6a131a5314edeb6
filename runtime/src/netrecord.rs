//! `network.json` in a container's folder: what netd made for it (one attachment per
//! network), written when netd answers, or the user-mode network (pasta, slirp4netns) rrun
//! started for it; read by inspect, `rrun port` and removal. Owned by rrun; netd keeps its
//! own state. Also the release of those when the container goes, at netd or by stopping the
//! helper process (a lower layer than `net`, so that the container store can call it). No
//! kernel interface but files, netd's socket (netd-proto) and [`crate::nethelper`]'s.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use netd_proto::{Attachment, PublishedPort};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use netd_proto::Client;

use crate::error::{Context, Result};
use crate::nethelper::Helper;

/// The file's name in the container's folder.
pub const FILE: &str = "network.json";
const MAX: u64 = 1 << 20;

/// A container's attachments, first (eth0) first, or its user-mode network.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NetRecord {
    pub attachments: Vec<Attachment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_net: Option<UserNet>,
}

/// A user-mode network (`--net pasta|slirp4netns`): its helper process and what the container
/// sees of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserNet {
    /// `pasta` or `slirp4netns`.
    pub mode: String,
    pub helper: Helper,
    /// The container's IPv4 address (pasta: the host's own; slirp4netns: 10.0.2.100), when
    /// known.
    pub address: Option<Ipv4Addr>,
    pub gateway: Option<Ipv4Addr>,
    /// The resolvers for its /etc/resolv.conf (the helper's DNS forwarder).
    pub dns: Vec<IpAddr>,
    /// The published ports, host ports resolved.
    pub ports: Vec<PublishedPort>,
}

impl NetRecord {
    /// Reads the record of the container folder `dir` (none: empty).
    pub fn load(dir: &Path) -> NetRecord {
        let p = dir.join(FILE);
        let Ok(f) = std::fs::File::open(&p) else {
            return NetRecord::default();
        };
        let mut buf = Vec::new();
        use std::io::Read;
        if f.take(MAX).read_to_end(&mut buf).is_err() {
            return NetRecord::default();
        }
        serde_json::from_slice(&buf).unwrap_or_default()
    }

    /// Writes it atomically (temporary file, rename).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let p = dir.join(FILE);
        let tmp = dir.join(format!(".{FILE}.tmp"));
        let text = serde_json::to_vec_pretty(self)
            .map_err(std::io::Error::other)
            .ctx(|| "serialize network.json".into())?;
        std::fs::write(&tmp, text).ctx(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, &p).ctx(|| format!("rename {}", p.display()))
    }

    /// Removes the record of `dir`.
    pub fn remove(dir: &Path) {
        let _ = std::fs::remove_file(dir.join(FILE));
    }

    /// `inspect`'s `network` object: mode, ip, ipv6, gateway (of the first network), and
    /// every network by name.
    pub fn inspect_network(&self, mode: &str) -> Value {
        if let Some(u) = &self.user_net {
            return json!({
                "mode": mode,
                "ip": u.address,
                "ipv6": null,
                "gateway": u.gateway,
                "gateway6": null,
                "mac": null,
                "networks": {},
                "helper": {"program": u.helper.program, "pid": u.helper.pid},
            });
        }
        let first = self.attachments.first();
        let networks: serde_json::Map<String, Value> = self
            .attachments
            .iter()
            .map(|a| {
                (
                    a.network.clone(),
                    json!({
                        "ip": a.ipv4.address,
                        "prefix_len": a.ipv4.prefix_len,
                        "gateway": a.gateway4,
                        "ipv6": a.ipv6.map(|v| v.address),
                        "gateway6": a.gateway6,
                        "mac": a.mac,
                        "interface": a.ifname,
                        "host_interface": a.host_ifname,
                    }),
                )
            })
            .collect();
        json!({
            "mode": mode,
            "ip": first.map(|a| a.ipv4.address),
            "ipv6": first.and_then(|a| a.ipv6.map(|v| v.address)),
            "gateway": first.map(|a| a.gateway4),
            "gateway6": first.and_then(|a| a.gateway6),
            "mac": first.map(|a| a.mac.clone()),
            "networks": networks,
        })
    }

    /// Every published port.
    pub fn ports(&self) -> Vec<PublishedPort> {
        self.attachments
            .iter()
            .flat_map(|a| a.ports.clone())
            .chain(self.user_net.iter().flat_map(|u| u.ports.clone()))
            .collect()
    }

    /// `inspect`'s `ports`: `{"host_ip","host_port","port","proto"}` each.
    pub fn inspect_ports(&self) -> Value {
        Value::Array(
            self.ports()
                .iter()
                .map(|p| {
                    json!({
                        "host_ip": p.host_ip.map_or("0.0.0.0".to_string(), |i| i.to_string()),
                        "host_port": p.host_port,
                        "port": p.port,
                        "proto": p.proto,
                    })
                })
                .collect(),
        )
    }
}

/// The lines of `rrun port`: `80/tcp -> 0.0.0.0:8080` (Docker's form), one per host address
/// family a port is published on.
pub fn port_lines(rec: &NetRecord) -> Vec<String> {
    let mut out = Vec::new();
    for a in &rec.attachments {
        for p in &a.ports {
            let hosts: Vec<String> = match p.host_ip {
                Some(IpAddr::V6(ip)) => vec![format!("[{ip}]")],
                Some(ip) => vec![ip.to_string()],
                None if a.ipv6.is_some() => vec!["0.0.0.0".into(), "[::]".into()],
                None => vec!["0.0.0.0".into()],
            };
            for h in hosts {
                out.push(format!("{}/{} -> {h}:{}", p.port, p.proto, p.host_port));
            }
        }
    }
    for p in rec.user_net.iter().flat_map(|u| &u.ports) {
        let h = match p.host_ip {
            Some(IpAddr::V6(ip)) => format!("[{ip}]"),
            Some(ip) => ip.to_string(),
            None => "0.0.0.0".into(),
        };
        out.push(format!("{}/{} -> {h}:{}", p.port, p.proto, p.host_port));
    }
    out
}

/// Containers this process already asked netd to release without waiting.
static RELEASED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Asks netd to release everything of container `id` whose folder is `dir` and waits until
/// it is done (nothing when it never asked netd for anything, or when this process sent the
/// release already with [`release_nowait`]). netd unreachable is no error: the veth went with
/// the namespace, and netd releases leases of vanished veths itself.
pub fn release(dir: &Path, id: &str) {
    if stop_helper(dir) || !dir.join(FILE).exists() {
        return;
    }
    if RELEASED.lock().is_ok_and(|r| r.iter().any(|x| x == id)) {
        return;
    }
    let r = Client::connect_default().and_then(|mut c| c.detach(id, None));
    match r {
        Ok(_) => NetRecord::remove(dir),
        Err(e) => tracing::debug!("release the network of {id}: {e}"),
    }
}

/// As [`release`], without waiting for netd: for a container whose init just ended, at the
/// end of `rrun run` (its namespace is going away with its veth anyway). A release asked for
/// later by another process (`rrun rm`) waits for this one to finish.
pub fn release_nowait(dir: &Path, id: &str) {
    if stop_helper(dir) || !dir.join(FILE).exists() {
        return;
    }
    let req = netd_proto::Request::Detach(netd_proto::DetachRequest {
        container_id: id.into(),
        network: None,
    });
    match Client::connect_default().and_then(|mut c| c.send(&req, None)) {
        Ok(()) => {
            if let Ok(mut r) = RELEASED.lock() {
                r.push(id.to_string());
            }
        }
        Err(e) => tracing::debug!("release the network of {id}: {e}"),
    }
}

/// Stops the user-mode network helper of the container folder `dir`, if it has one (true
/// then: netd has nothing of it), and any helper started there that no record names (its
/// rrun was killed while it started). The record stays, for inspect and `rrun port`.
pub fn stop_helper(dir: &Path) -> bool {
    crate::nethelper::stop_strays(dir);
    let Some(u) = NetRecord::load(dir).user_net else {
        return false;
    };
    u.helper.stop();
    true
}
