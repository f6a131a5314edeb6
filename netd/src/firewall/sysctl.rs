//! The sysctls netd's forwarding needs: `ip_forward`, IPv6 `forwarding` (with `accept_ra=2` on
//! the uplinks so the host keeps its router advertisements), and `route_localnet` on netd's
//! bridges only. Kernel interface: /proc/sys/net (Documentation/networking/ip-sysctl.rst).

use std::fs;

use super::FirewallError;

fn write(path: &str, value: &str) -> Result<(), FirewallError> {
    fs::write(path, value).map_err(|e| FirewallError::Sysctl(path.to_string(), e))
}

fn read(path: &str) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// Turns IPv4 forwarding on, and IPv6 forwarding when `v6`. Returns one note per uplink whose
/// `accept_ra` went from 1 to 2: with forwarding on, a value of 1 makes the kernel ignore router
/// advertisements, and the host would lose its IPv6 default route when the current one expires.
pub fn enable_forwarding(v6: bool) -> Result<Vec<String>, FirewallError> {
    if read("/proc/sys/net/ipv4/ip_forward").as_deref() != Some("1") {
        write("/proc/sys/net/ipv4/ip_forward", "1")?;
    }
    let mut notes = Vec::new();
    if !v6 {
        return Ok(notes);
    }
    for dev in ipv6_default_route_devices() {
        let path = format!("/proc/sys/net/ipv6/conf/{dev}/accept_ra");
        if read(&path).as_deref() == Some("1") {
            write(&path, "2")?;
            notes.push(format!("{dev}: accept_ra set to 2 so that router advertisements still count with IPv6 forwarding on"));
        }
    }
    if read("/proc/sys/net/ipv6/conf/all/forwarding").as_deref() != Some("1") {
        write("/proc/sys/net/ipv6/conf/all/forwarding", "1")?;
    }
    Ok(notes)
}

/// Lets the host's own 127.0.0.1 reach containers through DNAT on this bridge (and its replies
/// come back). The raw_prerouting rule keeps 127.0.0.0/8 closed to everything but `lo`.
pub fn set_route_localnet(bridge: &str) -> Result<(), FirewallError> {
    write(
        &format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet"),
        "1",
    )
}

/// Interfaces that carry an IPv6 default route (`/proc/thread-self/net/ipv6_route`, the calling
/// thread's netns: one route a line,
/// destination, prefix length in hex, ..., device name last).
fn ipv6_default_route_devices() -> Vec<String> {
    let Some(table) = read("/proc/thread-self/net/ipv6_route") else {
        return Vec::new();
    };
    let mut devs: Vec<String> = table
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 10 && f[0].bytes().all(|b| b == b'0') && f[1] == "00" && f[9] != "lo")
                .then(|| f[9].to_string())
        })
        .filter(|d| {
            d.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
                && !d.starts_with('.')
        })
        .collect();
    devs.sort();
    devs.dedup();
    devs
}
