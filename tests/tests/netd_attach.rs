//! netd's attach and detach, networks and published ports, driven through its socket with the
//! netd-client test binary, in a throwaway host namespace with an outside namespace at
//! 198.18.0.2 (never the real uplink).

mod netd_common;

use std::collections::BTreeSet;

use netd_common::{container_id, sh_ok, Host};

fn ip_of(reply: &serde_json::Value) -> String {
    reply["body"]["ipv4"]["address"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn attach_gives_eth0_a_lease_a_default_route_lo_and_the_uplink_mtu_and_detach_undoes_it() {
    let mut h = Host::new("a");
    sh_ok(&format!("ip -n {} link set up0 mtu 1400", h.ns));
    h.start_netd();
    let before = h.links();
    assert_eq!(
        before,
        vec![format!("{}0", h.prefix)],
        "netd made its default bridge"
    );
    let c = h.container_ns();
    let id = container_id();
    let r = h.client_ok(&["attach", &format!("/run/netns/{c}"), "bridge", &id, "c1"]);
    assert_eq!(ip_of(&r), "10.77.0.2");
    assert_eq!(r["body"]["gateway4"], "10.77.0.1");
    assert_eq!(r["body"]["ifname"], "eth0");
    assert_eq!(r["body"]["mtu"], 1400);
    let inside = sh_ok(&format!(
        "ip -n {c} -o addr show dev eth0; ip -n {c} route; ip -n {c} -o link"
    ));
    assert!(inside.contains("inet 10.77.0.2/24"), "{inside}");
    assert!(
        inside.contains("default via 10.77.0.1 dev eth0"),
        "{inside}"
    );
    assert!(inside.contains("mtu 1400"), "{inside}");
    assert!(
        inside
            .lines()
            .any(|l| l.contains(": lo:") && l.contains(",UP")),
        "lo is up: {inside}"
    );
    // The host reaches the container through the bridge.
    let _srv = h.server(&c, "tcp", "10.77.0.2", 7000, "HELLO");
    assert_eq!(h.fetch(&h.ns, "tcp", "10.77.0.2", 7000), "HELLO");
    assert_eq!(h.lease_files().len(), 1);
    let d = h.client_ok(&["detach", &id]);
    assert_eq!(d["body"]["networks"], serde_json::json!(["bridge"]));
    assert_eq!(h.links(), before, "detach removed the veth");
    assert!(h.lease_files().is_empty(), "detach released the lease");
    let inside = sh_ok(&format!("ip -n {c} -o link"));
    assert!(!inside.contains("eth0"), "{inside}");
    // Idempotent.
    let d = h.client_ok(&["detach", &id]);
    assert_eq!(d["body"]["networks"], serde_json::json!([]));
}

#[test]
fn published_ports_reach_the_container_tcp_and_udp_over_ipv4_and_ipv6() {
    let mut h = Host::new("p");
    h.start_netd();
    h.client_ok(&[
        "create",
        "v6",
        "subnet=10.78.9.0/24",
        "ipv6",
        "subnet6=fd00:77::/64",
    ]);
    let c = h.container_ns();
    let id = container_id();
    let r = h.client_ok(&[
        "attach",
        &format!("/run/netns/{c}"),
        "v6",
        &id,
        "web",
        "port=tcp/8080/80",
        "port=udp/5353/53",
        "port=tcp/0/81",
    ]);
    assert_eq!(ip_of(&r), "10.78.9.2");
    assert_eq!(r["body"]["ipv6"]["address"], "fd00:77::2");
    let auto = r["body"]["ports"][2]["host_port"].as_u64().unwrap();
    assert!(auto >= 32768, "a free host port was picked: {auto}");
    let _t = h.server(&c, "tcp", "::", 80, "TCP80");
    let _u = h.server(&c, "udp", "::", 53, "UDP53");
    let _t81 = h.server(&c, "tcp", "0.0.0.0", 81, "TCP81");
    let out = h.out.clone();
    assert_eq!(
        h.fetch(&out, "tcp", "198.18.0.1", 8080),
        "TCP80",
        "TCP over IPv4 from outside"
    );
    assert_eq!(
        h.fetch(&out, "udp", "198.18.0.1", 5353),
        "UDP53",
        "UDP over IPv4 from outside"
    );
    assert_eq!(
        h.fetch(&out, "tcp", "2001:db8::1", 8080),
        "TCP80",
        "TCP over IPv6 from outside"
    );
    assert_eq!(
        h.fetch(&out, "udp", "2001:db8::1", 5353),
        "UDP53",
        "UDP over IPv6 from outside"
    );
    assert_eq!(
        h.fetch(&out, "tcp", "198.18.0.1", auto as u16),
        "TCP81",
        "the picked port"
    );
    assert_eq!(
        h.fetch(&h.ns, "tcp", "127.0.0.1", 8080),
        "TCP80",
        "from the host's 127.0.0.1"
    );
    // The same host port twice is refused, naming the container.
    let c2 = h.container_ns();
    let o = h.client(&[
        "attach",
        &format!("/run/netns/{c2}"),
        "v6",
        &container_id(),
        "web2",
        "port=tcp/8080/80",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("refused conflict") && err.contains("web"),
        "{err}"
    );
    // [::1] cannot be DNATed.
    let o = h.client(&[
        "attach",
        &format!("/run/netns/{c2}"),
        "v6",
        &container_id(),
        "web3",
        "port=tcp/8081/80/::1",
    ]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("::1"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    h.client_ok(&["detach", &id]);
    assert_eq!(
        h.fetch(&out, "tcp", "198.18.0.1", 8080),
        "",
        "closed once detached"
    );
    assert!(h.lease_files().is_empty());
}

#[test]
fn subnets_that_overlap_a_network_or_a_host_route_are_refused_naming_it() {
    let mut h = Host::new("o");
    // A host route in the way of the default subnet: the default bridge takes the pool's first.
    sh_ok(&format!(
        "ip -n {} route add 10.77.0.0/24 via 198.18.0.2",
        h.ns
    ));
    h.start_netd();
    let ls = h.client_ok(&["ls"]);
    assert_eq!(ls["body"][0]["name"], "bridge");
    assert_eq!(ls["body"][0]["subnet"], "10.78.0.0/24", "{ls}");
    h.client_ok(&["create", "a", "subnet=10.78.5.0/24"]);
    let o = h.client(&["create", "b", "subnet=10.78.5.128/25"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("overlaps network a (10.78.5.0/24)"), "{err}");
    let o = h.client(&["create", "c", "subnet=198.18.0.0/29"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("route to 198.18.0.0/30 on up0"), "{err}");
    // The default route does not count.
    h.client_ok(&["create", "d", "subnet=10.200.0.0/24"]);
    let auto = h.client_ok(&["create", "e"]);
    assert_eq!(
        auto["body"]["subnet"], "10.78.1.0/24",
        "next free /24 of the pool: {auto}"
    );
    // In use: refused; then removed.
    let c = h.container_ns();
    let id = container_id();
    h.client_ok(&["attach", &format!("/run/netns/{c}"), "a", &id, "user1"]);
    let o = h.client(&["rm", "a"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("in use") && err.contains("user1"), "{err}");
    h.client_ok(&["detach", &id]);
    h.client_ok(&["rm", "a"]);
    let o = h.client(&["rm", "bridge"]);
    assert!(!o.status.success(), "the default network stays");
    for n in ["d", "e"] {
        h.client_ok(&["rm", n]);
    }
    assert_eq!(h.links(), vec![format!("{}0", h.prefix)]);
}

#[test]
fn user_networks_are_isolated_from_each_other() {
    let mut h = Host::new("i");
    h.start_netd();
    h.client_ok(&["create", "n1", "subnet=10.78.11.0/24"]);
    h.client_ok(&["create", "n2", "subnet=10.78.12.0/24"]);
    let (a, b, a2) = (h.container_ns(), h.container_ns(), h.container_ns());
    h.client_ok(&[
        "attach",
        &format!("/run/netns/{a}"),
        "n1",
        &container_id(),
        "a",
    ]);
    h.client_ok(&[
        "attach",
        &format!("/run/netns/{a2}"),
        "n1",
        &container_id(),
        "a2",
    ]);
    h.client_ok(&[
        "attach",
        &format!("/run/netns/{b}"),
        "n2",
        &container_id(),
        "b",
    ]);
    let _s = h.server(&a, "tcp", "10.78.11.2", 7000, "A");
    assert_eq!(h.fetch(&a2, "tcp", "10.78.11.2", 7000), "A", "same network");
    assert_eq!(
        h.fetch(&b, "tcp", "10.78.11.2", 7000),
        "",
        "another network"
    );
}

#[test]
fn fifty_concurrent_attaches_get_fifty_distinct_addresses() {
    let mut h = Host::new("c");
    h.start_netd();
    let before = h.links();
    let nss: Vec<String> = (0..50).map(|_| h.container_ns()).collect();
    let ids: Vec<String> = (0..50).map(|_| container_id()).collect();
    let h = std::sync::Arc::new(h);
    let threads: Vec<_> = nss
        .iter()
        .zip(&ids)
        .enumerate()
        .map(|(i, (ns, id))| {
            let (h, ns, id) = (h.clone(), ns.clone(), id.clone());
            std::thread::spawn(move || {
                ip_of(&h.client_ok(&[
                    "attach",
                    &format!("/run/netns/{ns}"),
                    "bridge",
                    &id,
                    &format!("c{i}"),
                ]))
            })
        })
        .collect();
    let ips: BTreeSet<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(ips.len(), 50, "{ips:?}");
    assert_eq!(h.lease_files().len(), 50);
    let threads: Vec<_> = ids
        .iter()
        .map(|id| {
            let (h, id) = (h.clone(), id.clone());
            std::thread::spawn(move || h.client_ok(&["detach", &id]))
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(h.lease_files().is_empty());
    assert_eq!(h.links(), before);
}

#[test]
fn five_hundred_attach_detach_cycles_end_exactly_as_they_began() {
    let mut h = Host::new("r");
    h.start_netd();
    let c = h.container_ns();
    // One attachment stays throughout, so the table holds a port the whole time.
    let keep = h.container_ns();
    h.client_ok(&[
        "attach",
        &format!("/run/netns/{keep}"),
        "bridge",
        &container_id(),
        "keep",
        "port=tcp/9000/80",
    ]);
    let (links, table, leases) = (h.links(), h.table_text(), h.lease_files());
    assert!(table.contains(&h.table), "netd's table exists: {table}");
    let id = container_id();
    for i in 0..500 {
        let r = h.client_ok(&[
            "attach",
            &format!("/run/netns/{c}"),
            "bridge",
            &id,
            "cyc",
            "port=tcp/0/80",
            "port=udp/7000/70",
        ]);
        assert_eq!(
            ip_of(&r),
            "10.77.0.3",
            "cycle {i}: the lowest free address again"
        );
        h.client_ok(&["detach", &id]);
    }
    assert_eq!(h.links(), links);
    assert_eq!(h.table_text(), table);
    assert_eq!(h.lease_files(), leases);
    let inside = sh_ok(&format!("ip -n {c} -o link"));
    assert_eq!(
        inside.lines().count(),
        1,
        "only lo left in the container: {inside}"
    );
}
