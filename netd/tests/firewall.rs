//! netd's firewall applied inside a throwaway "host" netns: DNAT (TCP, UDP, IPv4, IPv6), from
//! the host's 127.0.0.1, hairpin, MASQUERADE/NAT66, isolation between networks, restoring after
//! `nft flush ruleset`, constant rule count, foreign drop policies. Needs root.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use netd::firewall::{Firewall, FirewallConfig, PortBinding};
use netd::view::{FirewallView, NetView, Proto};

const T: Duration = Duration::from_secs(2);
const SHORT: Duration = Duration::from_millis(400);

fn networks() -> Vec<NetView> {
    let net = |name: &str, bridge: &str, s4: &str, g4: &str, s6: Option<(&str, &str)>| NetView {
        name: name.into(),
        bridge: bridge.into(),
        subnet4: s4.parse().unwrap(),
        gateway4: g4.parse().unwrap(),
        subnet6: s6.map(|(s, _)| s.parse().unwrap()),
        gateway6: s6.map(|(_, g)| g.parse().unwrap()),
        isolated: true,
    };
    vec![
        net(
            "a",
            "br-a",
            "10.77.1.0/24",
            GW_A4,
            Some(("fd77:1::/64", GW_A6)),
        ),
        net("b", "br-b", "10.77.2.0/24", GW_B4, None),
    ]
}

fn firewall(lab: &Lab) -> Firewall {
    Firewall::new(FirewallConfig {
        table: lab.table.clone(),
        bridge_prefix: "br-".into(),
    })
    .unwrap()
}

fn port(proto: Proto, host_ip: Option<&str>, host_port: u16, addr: &str, port: u16) -> PortBinding {
    PortBinding {
        proto,
        host_ip: host_ip.map(|s| s.parse().unwrap()),
        host_port,
        addr: addr.parse().unwrap(),
        port,
    }
}

/// A lab with servers on port 80 of c1, c2, c3 and the outside, the firewall built with c1's port 80
/// published on 8080 (TCP and UDP, IPv4 and IPv6) and on 198.18.0.3:9090 only.
fn lab_with_ports() -> (Lab, Firewall) {
    let mut lab = Lab::new();
    lab.serve(&lab.c1.clone(), "c1", sa("::", 80));
    lab.serve(&lab.c2.clone(), "c2", sa("::", 80));
    lab.serve(&lab.o.clone(), "out", sa("::", 80));
    lab.serve(&lab.c3.clone(), "c3", sa("::", 80));
    let fw = firewall(&lab);
    let ports = vec![
        port(Proto::Tcp, None, 8080, C1_4, 80),
        port(Proto::Udp, None, 8080, C1_4, 80),
        port(Proto::Tcp, None, 8080, C1_6, 80),
        port(Proto::Udp, None, 8080, C1_6, 80),
        port(Proto::Tcp, Some("198.18.0.3"), 9090, C1_4, 80),
    ];
    lab.host(|| {
        fw.rebuild(&FirewallView {
            networks: networks(),
            ports,
        })
        .unwrap()
    });
    (lab, fw)
}

#[test]
fn dnat_tcp_and_udp_ipv4_and_ipv6_from_outside_keeps_the_client_address() {
    let (lab, _fw) = lab_with_ports();
    assert_eq!(
        tcp(&lab.o, sa(HOST4, 8080), T).unwrap(),
        format!("c1 {OUT4}")
    );
    assert_eq!(
        udp(&lab.o, sa(HOST4, 8080), T).unwrap(),
        format!("c1 {OUT4}")
    );
    assert_eq!(
        tcp(&lab.o, sa(HOST6, 8080), T).unwrap(),
        format!("c1 {OUT6}")
    );
    assert_eq!(
        udp(&lab.o, sa(HOST6, 8080), T).unwrap(),
        format!("c1 {OUT6}")
    );
    // A port published on one host address answers there only.
    assert_eq!(
        tcp(&lab.o, sa("198.18.0.3", 9090), T).unwrap(),
        format!("c1 {OUT4}")
    );
    assert!(tcp(&lab.o, sa(HOST4, 9090), SHORT).is_err());
    // Nothing unpublished reaches a container from outside, even with a route to it.
    sh(&[
        "ip",
        "-n",
        &lab.o,
        "route",
        "add",
        "10.77.1.0/24",
        "via",
        HOST4,
    ]);
    assert!(tcp(&lab.o, sa(C1_4, 80), SHORT).is_err());
}

#[test]
fn dnat_from_the_host_itself_on_127_0_0_1_and_its_own_addresses() {
    let (lab, _fw) = lab_with_ports();
    // The host's 127.0.0.1 reaches the container, seen from the gateway (masqueraded).
    assert_eq!(
        tcp(&lab.h, sa("127.0.0.1", 8080), T).unwrap(),
        format!("c1 {GW_A4}")
    );
    assert_eq!(
        udp(&lab.h, sa("127.0.0.1", 8080), T).unwrap(),
        format!("c1 {GW_A4}")
    );
    assert_eq!(
        tcp(&lab.h, sa(HOST4, 8080), T).unwrap(),
        format!("c1 {HOST4}")
    );
    assert_eq!(
        tcp(&lab.h, sa(HOST6, 8080), T).unwrap(),
        format!("c1 {HOST6}")
    );
    let fwd = sh(&[
        "ip",
        "netns",
        "exec",
        &lab.h,
        "cat",
        "/proc/sys/net/ipv4/ip_forward",
        "/proc/sys/net/ipv6/conf/all/forwarding",
    ]);
    assert_eq!(fwd, "1\n1\n");
    let rl = |dev: &str| {
        sh(&[
            "ip",
            "netns",
            "exec",
            &lab.h,
            "cat",
            &format!("/proc/sys/net/ipv4/conf/{dev}/route_localnet"),
        ])
    };
    assert_eq!(rl("br-a").trim(), "1");
    assert_eq!(
        rl("up0").trim(),
        "0",
        "route_localnet only on netd's bridges"
    );
}

#[test]
fn loopback_addresses_stay_closed_to_containers_and_the_lan() {
    let (mut lab, _fw) = lab_with_ports();
    // A service on the host's 127.0.0.1, and a container that routes 127.0.0.0/8 to the host
    // (as an attacker on the bridge's LAN would, CVE-2020-8558).
    lab.serve(&lab.h.clone(), "host-lo", sa("127.0.0.1", 7777));
    let c = lab.c1.clone();
    sh(&[
        "ip",
        "-n",
        &c,
        "route",
        "del",
        "127.0.0.0/8",
        "dev",
        "lo",
        "table",
        "local",
    ]);
    sh(&[
        "ip",
        "netns",
        "exec",
        &c,
        "sysctl",
        "-qw",
        "net.ipv4.conf.eth0.route_localnet=1",
    ]);
    sh(&["ip", "-n", &c, "route", "add", "127.0.0.0/8", "via", GW_A4]);
    assert!(
        tcp(&c, sa("127.0.0.1", 7777), SHORT).is_err(),
        "a container reached the host's 127.0.0.1"
    );
    assert!(
        tcp(&c, sa("127.0.0.1", 8080), SHORT).is_err(),
        "a container reached a port through the host's 127.0.0.1"
    );
    assert!(
        tcp(&lab.h, sa("127.0.0.1", 7777), T).is_ok(),
        "the host's own 127.0.0.1 must work"
    );
}

#[test]
fn hairpin_container_reaches_a_published_port_through_the_host_address() {
    let (lab, _fw) = lab_with_ports();
    // c2 -> host:8080 -> c1, masqueraded to the gateway so c1's reply comes back the same way.
    assert_eq!(
        tcp(&lab.c2, sa(HOST4, 8080), T).unwrap(),
        format!("c1 {GW_A4}")
    );
    assert_eq!(
        udp(&lab.c2, sa(HOST4, 8080), T).unwrap(),
        format!("c1 {GW_A4}")
    );
    assert_eq!(
        tcp(&lab.c2, sa(HOST6, 8080), T).unwrap(),
        format!("c1 {GW_A6}")
    );
    // c1 through its own published port.
    assert_eq!(
        tcp(&lab.c1, sa(HOST4, 8080), T).unwrap(),
        format!("c1 {GW_A4}")
    );
    // A container of another network reaches it too: a published port is public.
    assert!(tcp(&lab.c3, sa(HOST4, 8080), T).unwrap().starts_with("c1 "));
}

#[test]
fn networks_are_isolated_and_masqueraded_to_the_outside() {
    let (lab, _fw) = lab_with_ports();
    // Same network: direct, unchanged source.
    assert_eq!(tcp(&lab.c2, sa(C1_4, 80), T).unwrap(), format!("c1 {C2_4}"));
    // Another network: dropped both ways.
    assert!(
        tcp(&lab.c3, sa(C1_4, 80), SHORT).is_err(),
        "network B reached network A"
    );
    assert!(
        udp(&lab.c3, sa(C1_4, 80), SHORT).is_err(),
        "network B reached network A (udp)"
    );
    assert!(
        tcp(&lab.c1, sa(C3_4, 80), SHORT).is_err(),
        "network A reached network B"
    );
    // Leaving: MASQUERADE and NAT66 to the uplink's address.
    assert_eq!(
        tcp(&lab.c1, sa(OUT4, 80), T).unwrap(),
        format!("out {HOST4}")
    );
    assert_eq!(
        udp(&lab.c3, sa(OUT4, 80), T).unwrap(),
        format!("out {HOST4}")
    );
    assert_eq!(
        tcp(&lab.c1, sa(OUT6, 80), T).unwrap(),
        format!("out {HOST6}")
    );
}

#[test]
fn unpublish_and_publish_change_only_map_elements() {
    let (lab, fw) = lab_with_ports();
    let p = port(Proto::Tcp, None, 8080, C1_4, 80);
    lab.host(|| fw.remove_ports(&[p]).unwrap());
    assert!(tcp(&lab.o, sa(HOST4, 8080), SHORT).is_err());
    assert!(
        udp(&lab.o, sa(HOST4, 8080), T).is_ok(),
        "the udp binding stays"
    );
    let q = port(Proto::Tcp, None, 8081, C2_4, 80);
    lab.host(|| fw.add_ports(&[q]).unwrap());
    assert_eq!(
        tcp(&lab.o, sa(HOST4, 8081), T).unwrap(),
        format!("c2 {OUT4}")
    );
    // A second binding of the same port is refused, naming both.
    let e = lab
        .host(|| {
            fw.add_ports(&[port(Proto::Tcp, Some(HOST4), 8081, C1_4, 80)])
                .unwrap_err()
        })
        .to_string();
    assert!(e.contains("already published"), "{e}");
    assert_eq!(lab.host(|| fw.damage().unwrap()), None);
    // Removing a port that is not published is no error (detach after a failed attach).
    lab.host(|| fw.remove_ports(&[p]).unwrap());
    // A network removed and added again: its elements only.
    let b = networks().remove(1);
    let view = FirewallView {
        networks: networks(),
        ports: vec![],
    };
    assert_eq!(
        udp(&lab.c3, sa(OUT4, 80), T).unwrap(),
        format!("out {HOST4}")
    );
    lab.host(|| fw.remove_network(&b, &view).unwrap());
    assert!(
        udp(&lab.c3, sa(OUT4, 80), SHORT).is_err(),
        "no MASQUERADE once the network is gone"
    );
    lab.host(|| fw.add_network(&b, &view).unwrap());
    assert_eq!(
        udp(&lab.c3, sa(OUT4, 80), T).unwrap(),
        format!("out {HOST4}")
    );
    assert_eq!(lab.host(|| fw.damage().unwrap()), None);
    let e = lab
        .host(|| {
            fw.add_ports(&[port(Proto::Tcp, Some("::1"), 8082, C1_6, 80)])
                .unwrap_err()
        })
        .to_string();
    assert!(e.contains("[::1] cannot be published"), "{e}");
}

#[test]
fn flush_ruleset_is_repaired_within_a_second() {
    let (lab, fw) = lab_with_ports();
    let view = FirewallView {
        networks: networks(),
        ports: fw.state().ports,
    };
    let fw = Arc::new(fw);
    let weak = Arc::downgrade(&fw);
    // As the service does: the watcher reports, the owner of the state rebuilds.
    lab.host(|| {
        fw.watch(Box::new(move || {
            if let Some(fw) = weak.upgrade() {
                fw.rebuild(&view).unwrap();
            }
        }))
        .unwrap()
    });
    assert!(tcp(&lab.o, sa(HOST4, 8080), T).is_ok());
    let quick = Duration::from_millis(100);
    for _ in 0..3 {
        lab.nft(&["flush", "ruleset"]);
        let (_, took) = until_ok(Duration::from_secs(1), || {
            tcp(&lab.o, sa(HOST4, 8080), quick)
        })
        .expect("published port did not work again within a second of nft flush ruleset");
        assert!(took < Duration::from_secs(1), "{took:?}");
    }
    // Deleting only netd's table, or emptying one of its maps, is repaired too.
    lab.nft(&["delete", "table", "inet", &lab.table]);
    until_ok(Duration::from_secs(1), || {
        tcp(&lab.o, sa(HOST4, 8080), quick)
    })
    .unwrap();
    lab.nft(&["flush", "map", "inet", &lab.table, "dnat4_addr"]);
    until_ok(Duration::from_secs(1), || {
        tcp(&lab.o, sa(HOST4, 8080), quick)
    })
    .unwrap();
    assert_eq!(lab.host(|| fw.damage().unwrap()), None);
    // After netd down the watcher leaves the table deleted.
    lab.host(|| fw.teardown().unwrap());
    std::thread::sleep(Duration::from_millis(300));
    assert!(!lab.nft(&["list", "tables"]).contains(&lab.table));
}

#[test]
fn rule_count_is_the_same_for_1_and_500_published_ports() {
    let lab = Lab::new();
    let mut serv = lab;
    serv.serve(&serv.c1.clone(), "c1", sa("::", 80));
    let fw = firewall(&serv);
    let one = vec![port(Proto::Tcp, None, 20000, C1_4, 80)];
    let n1 = serv.host(|| {
        fw.rebuild(&FirewallView {
            networks: networks(),
            ports: one,
        })
        .unwrap();
        fw.kernel_rule_count().unwrap()
    });
    let more: Vec<PortBinding> = (20001..20500)
        .map(|p| port(Proto::Tcp, None, p, C1_4, 80))
        .collect();
    let n500 = serv.host(|| {
        fw.add_ports(&more).unwrap();
        fw.kernel_rule_count().unwrap()
    });
    assert_eq!(serv.host(|| fw.state().ports.len()), 500);
    assert_eq!(n1, n500, "rules with 1 port: {n1}, with 500: {n500}");
    assert_eq!(n1, 18);
    assert_eq!(
        tcp(&serv.o, sa(HOST4, 20499), T).unwrap(),
        format!("c1 {OUT4}")
    );
    // A rebuild from the same state gives the same table.
    let view = FirewallView {
        networks: networks(),
        ports: serv.host(|| fw.state().ports),
    };
    serv.host(|| fw.rebuild(&view).unwrap());
    assert_eq!(serv.host(|| fw.damage().unwrap()), None);
}

#[test]
fn foreign_forward_drop_policy_is_detected_and_named() {
    let (lab, fw) = lab_with_ports();
    assert!(lab.host(|| fw.foreign_drops().unwrap()).is_empty());
    lab.nft(&["add", "table", "ip", "filter"]);
    lab.nft(&[
        "add",
        "chain",
        "ip",
        "filter",
        "FORWARD",
        "{ type filter hook forward priority 0; policy drop; }",
    ]);
    let found = lab.host(|| fw.foreign_drops().unwrap());
    assert_eq!(found.len(), 1, "{found:?}");
    let w = found[0].warning("br-");
    assert!(
        w.starts_with("table ip filter: forward chain FORWARD has policy drop"),
        "{w}"
    );
    // It does defeat forwarding: the published port no longer answers from outside.
    assert!(tcp(&lab.o, sa(HOST4, 8080), SHORT).is_err());
    // netd's delete leaves the other table alone.
    lab.host(|| fw.teardown().unwrap());
    assert!(lab.nft(&["list", "tables"]).contains("table ip filter"));
}

#[test]
fn changes_before_the_first_rebuild_build_the_table() {
    let mut lab = Lab::new();
    lab.serve(&lab.c1.clone(), "c1", sa("::", 80));
    let fw = firewall(&lab);
    let nets = networks();
    let view = FirewallView {
        networks: nets.clone(),
        ports: vec![],
    };
    // As netd's start does: the default network first, then the ports of attachments.
    lab.host(|| fw.add_network(&nets[0], &view).unwrap());
    lab.host(|| {
        fw.add_ports(&[port(Proto::Tcp, None, 8080, C1_4, 80)])
            .unwrap()
    });
    assert_eq!(
        tcp(&lab.o, sa(HOST4, 8080), T).unwrap(),
        format!("c1 {OUT4}")
    );
    assert_eq!(lab.host(|| fw.damage().unwrap()), None);
    assert_eq!(lab.host(|| fw.kernel_rule_count().unwrap()), 18);
    // nft's own error comes back as one line naming the table.
    lab.nft(&["delete", "table", "inet", &lab.table]);
    let e = lab
        .host(|| {
            fw.add_ports(&[port(Proto::Tcp, None, 8081, C1_4, 80)])
                .unwrap_err()
        })
        .to_string();
    assert!(
        e.starts_with("nft adding elements netd's table: ")
            && e.contains("No such file or directory"),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");
}

#[test]
fn ipv6_forwarding_keeps_router_advertisements_on_the_uplink() {
    let lab = Lab::new();
    let set = |dev: &str, v: &str| {
        sh(&[
            "ip",
            "netns",
            "exec",
            &lab.h,
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{dev}.accept_ra={v}"),
        ])
    };
    let get = |dev: &str| {
        sh(&[
            "ip",
            "netns",
            "exec",
            &lab.h,
            "cat",
            &format!("/proc/sys/net/ipv6/conf/{dev}/accept_ra"),
        ])
    };
    set("up0", "1");
    set("br-b", "1");
    sh(&[
        "ip", "-n", &lab.h, "-6", "route", "add", "default", "via", OUT6, "dev", "up0",
    ]);
    let fw = firewall(&lab);
    let warnings = lab.host(|| {
        fw.rebuild(&FirewallView {
            networks: networks(),
            ports: vec![],
        })
        .unwrap()
    });
    assert_eq!(
        get("up0").trim(),
        "2",
        "the uplink (IPv6 default route) keeps accepting RAs"
    );
    assert_eq!(get("br-b").trim(), "1", "only the uplink is changed");
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("up0: accept_ra set to 2")),
        "{warnings:?}"
    );
}
