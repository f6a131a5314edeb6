//! The user-mode networks, `--net pasta` and `--net slirp4netns`: what both need before the
//! helper starts (the host ports tried, /dev/net/tun usable), starting it for rrun's child
//! once the child's id maps are written, and the record in network.json that lets every end
//! of the container stop it ([`crate::nethelper`]). Kernel interfaces: access(2) of
//! /dev/net/tun (the helpers open it inside the container's namespaces); the rest is the
//! helpers' (see pasta.rs and slirp.rs).

use std::path::Path;

use crate::error::{user, Result};
use crate::net::record::{NetRecord, UserNet};
use crate::net::{hostports, pasta, slirp};
use crate::spec::NetMode;
use crate::state::State;

/// The tun device both helpers open (tun(4)).
const TUN: &str = "/dev/net/tun";

/// Starts the user-mode network of container `st`, whose init (rrun's child, id maps written,
/// not yet set up) is `pid`, and records it in the container's folder `dir`. None for the
/// other network modes.
pub fn start(st: &State, pid: i32, dir: &Path) -> Result<Option<UserNet>> {
    let mode = &st.config.net;
    if !mode.user_mode() {
        return Ok(None);
    }
    let name = mode.name();
    if *mode == NetMode::Slirp4netns {
        if let Some(p) = st
            .config
            .net_opts
            .ports
            .iter()
            .find(|p| p.host_ip.is_some_and(|i| i.is_ipv6()))
        {
            return Err(user(format!(
                "-p with HOSTIP {}: slirp4netns publishes on IPv4 host addresses only: give an IPv4 HOSTIP, none, or use --net pasta",
                p.host_ip.map(|i| i.to_string()).unwrap_or_default()
            )));
        }
    }
    let ports = hostports::resolve(&st.config.net_opts.ports, &name)?;
    check_tun(&name)?;
    let userns = st.config.idmaps.own_userns();
    let rec = match mode {
        NetMode::Pasta => {
            let (address, gateway) = pasta::addresses();
            let helper = pasta::start(pid, userns, &ports, dir)?;
            let rec = UserNet {
                mode: name,
                helper,
                address,
                gateway,
                dns: pasta::dns(),
                ports,
            };
            save(&rec, dir)?;
            rec
        }
        _ => {
            let s = slirp::spawn(pid, userns, dir)?;
            let rec = UserNet {
                mode: name,
                helper: s.helper.clone(),
                address: Some(slirp::ADDRESS),
                gateway: Some(slirp::GATEWAY),
                dns: slirp::dns(),
                ports,
            };
            // Recorded before it is known to work: from here on, a failure stops it.
            save(&rec, dir)?;
            slirp::wait_ready(s, dir, &rec.ports)?;
            rec
        }
    };
    Ok(Some(rec))
}

/// Records `rec` in network.json; stops the helper when that fails (nothing else would).
fn save(rec: &UserNet, dir: &Path) -> Result<()> {
    let r = NetRecord {
        attachments: Vec::new(),
        user_net: Some(rec.clone()),
    }
    .save(dir);
    if r.is_err() {
        rec.helper.stop();
    }
    r
}

/// Whether `--net pasta` can start for this user: pasta on PATH and /dev/net/tun usable (the
/// default network of a rootless run that netd does not serve, as Podman's since v5).
pub fn pasta_usable() -> bool {
    let tun = rustix::fs::access(
        TUN,
        rustix::fs::Access::READ_OK | rustix::fs::Access::WRITE_OK,
    );
    tun.is_ok() && crate::nethelper::on_path("pasta")
}

/// Refuses in one line when this user cannot open /dev/net/tun (the helpers would fail with a
/// vaguer message). udev's default rule makes it mode 0666; a system without udev may have
/// the kernel's 0600.
fn check_tun(mode: &str) -> Result<()> {
    use rustix::fs::Access;
    if rustix::fs::access(TUN, Access::READ_OK | Access::WRITE_OK).is_ok() {
        return Ok(());
    }
    let how = match std::fs::metadata(TUN) {
        Ok(m) => {
            use std::os::unix::fs::PermissionsExt;
            format!("it is mode {:04o}", m.permissions().mode() & 0o7777)
        }
        Err(e) => format!("{e}"),
    };
    Err(user(format!(
        "--net {mode} needs {TUN} readable and writable by user {} ({how}): make it mode 0666, as udev's default rule does (KERNEL==\"tun\", MODE=\"0666\")",
        rustix::process::geteuid().as_raw()
    )))
}
