//! `--net pasta`: pasta (Debian's passt package, Podman's default rootless network) gives the
//! container's network namespace a tap interface with the host's addresses and routes and
//! forwards its traffic through ordinary sockets of the host: no privilege needed. rrun runs
//! `pasta --config-net --netns /proc/PID/ns/net [--userns /proc/PID/ns/user] -t/-u ...` once
//! its child exists; pasta configures the namespace, forks to the background, writes its pid
//! (`-P`) and exits 0, or exits non-zero with a line on stderr. Options as Podman passes them:
//! `-T none -U none` (nothing forwarded from the container to the host's ports), `--no-map-gw`
//! (the gateway address is not the host), `--dns-forward 169.254.1.1` (a resolver address in
//! the container, forwarded to the host's first resolver). Source: pasta(1) of passt
//! 0.0~git20230309 (Debian 12). Kernel interfaces: /proc/net/route (proc(5)) and SIOCGIFADDR
//! (netdevice(7)) for the address pasta copies.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Command, Stdio};

use netd_proto::{Proto, PublishedPort};

use crate::error::{user, Context, Result};
use crate::nethelper::Helper;

/// The resolver address the container sees (pasta's `--dns-forward`), Podman's choice.
pub const DNS_FORWARD: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

/// pasta's log (its stderr) and pid file in the container's folder.
const LOG: &str = "pasta.log";
const PID_FILE: &str = "pasta.pid";

/// The command line: namespaces, ports, Podman's defaults.
pub fn args(
    netns: &Path,
    userns: Option<&Path>,
    ports: &[PublishedPort],
    pid_file: &Path,
) -> Vec<String> {
    let mut a: Vec<String> = [
        "--config-net",
        "--quiet",
        "--no-map-gw",
        "-T",
        "none",
        "-U",
        "none",
        "--dns-forward",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push(DNS_FORWARD.to_string());
    for proto in [Proto::Tcp, Proto::Udp] {
        let flag = if proto == Proto::Tcp { "-t" } else { "-u" };
        let mine: Vec<&PublishedPort> = ports.iter().filter(|p| p.proto == proto).collect();
        if mine.is_empty() {
            a.extend([flag.to_string(), "none".into()]);
        }
        for p in mine {
            let spec = match p.host_ip {
                Some(ip) => format!("{ip}/{}:{}", p.host_port, p.port),
                None => format!("{}:{}", p.host_port, p.port),
            };
            a.extend([flag.to_string(), spec]);
        }
    }
    a.push("-P".into());
    a.push(pid_file.display().to_string());
    a.push("--netns".into());
    a.push(netns.display().to_string());
    if let Some(u) = userns {
        a.push("--userns".into());
        a.push(u.display().to_string());
    }
    a
}

/// Starts pasta for the namespaces of process `pid` (`userns`: join its user namespace too)
/// and returns the background pasta once the namespace is configured. `dir` is the
/// container's folder (log and pid file).
pub fn start(pid: i32, userns: bool, ports: &[PublishedPort], dir: &Path) -> Result<Helper> {
    let netns = format!("/proc/{pid}/ns/net");
    let user_ns = format!("/proc/{pid}/ns/user");
    let pid_file = dir.join(PID_FILE);
    let log_path = dir.join(LOG);
    let log = std::fs::File::create(&log_path).ctx(|| format!("create {}", log_path.display()))?;
    let mut cmd = Command::new("pasta");
    cmd.args(args(
        Path::new(&netns),
        userns.then_some(Path::new(&user_ns)),
        ports,
        &pid_file,
    ));
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
    let mut child = crate::sys::process::spawn_in_new_session(&mut cmd, &[])
        .map_err(|e| crate::nethelper::spawn_error("pasta", "passt", e))?;
    let status = child.wait().ctx(|| "wait for pasta".into())?;
    if !status.success() {
        return Err(user(format!(
            "--net pasta: pasta failed: {} (its log: {})",
            crate::nethelper::last_line(&log_path),
            log_path.display()
        )));
    }
    let text = std::fs::read_to_string(&pid_file).ctx(|| format!("read {}", pid_file.display()))?;
    let daemon: i32 = text
        .trim()
        .parse()
        .map_err(|_| user(format!("--net pasta: {} holds no pid", pid_file.display())))?;
    Helper::of("pasta", daemon).ok_or_else(|| {
        user(format!(
            "--net pasta: pasta (pid {daemon}) ended at once (its log: {})",
            log_path.display()
        ))
    })
}

/// The container's IPv4 address under pasta: the host's own on the interface of its first
/// default route (pasta's default), and that route's gateway, when the host has one.
pub fn addresses() -> (Option<Ipv4Addr>, Option<Ipv4Addr>) {
    let Some((ifname, gw)) = default_route() else {
        return (None, None);
    };
    let addr = rustix::net::socket_with(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::DGRAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .ok()
    .zip(std::ffi::CString::new(ifname).ok())
    .and_then(|(s, name)| crate::sys::netdevice::ipv4_address(&s, &name).ok());
    (addr, Some(gw))
}

/// The interface and gateway of the first IPv4 default route of /proc/net/route (proc(5):
/// hexadecimal fields in host byte order).
fn default_route() -> Option<(String, Ipv4Addr)> {
    let text = std::fs::read_to_string("/proc/net/route").ok()?;
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 8 || f[1] != "00000000" || f[7] != "00000000" {
            return None;
        }
        let gw = u32::from_str_radix(f[2], 16).ok()?;
        Some((f[0].to_string(), Ipv4Addr::from(gw.to_ne_bytes())))
    })
}

/// The resolvers of a pasta container's /etc/resolv.conf.
pub fn dns() -> Vec<IpAddr> {
    vec![IpAddr::V4(DNS_FORWARD)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_become_t_and_u_options() {
        let p = |proto, host_ip: Option<&str>, host_port, port| PublishedPort {
            proto,
            host_ip: host_ip.map(|i| i.parse().unwrap()),
            host_port,
            port,
        };
        let a = args(
            Path::new("/proc/9/ns/net"),
            Some(Path::new("/proc/9/ns/user")),
            &[
                p(Proto::Tcp, None, 8080, 80),
                p(Proto::Tcp, Some("::1"), 8443, 443),
                p(Proto::Udp, Some("127.0.0.1"), 5353, 53),
            ],
            Path::new("/d/pasta.pid"),
        )
        .join(" ");
        assert!(
            a.contains("-t 8080:80 -t ::1/8443:443 -u 127.0.0.1/5353:53"),
            "{a}"
        );
        assert!(a.ends_with("-P /d/pasta.pid --netns /proc/9/ns/net --userns /proc/9/ns/user"));
        let none = args(Path::new("/n"), None, &[], Path::new("/p")).join(" ");
        assert!(
            none.contains("-t none -u none") && !none.contains("--userns"),
            "{none}"
        );
    }
}
