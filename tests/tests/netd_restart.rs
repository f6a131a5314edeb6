//! netd's lifetime: SIGKILL in the middle of attaches then a restart (no lease lost, nothing
//! leaked), SIGTERM leaving containers' networking in place, a namespace that ends without a
//! detach, one netd per table, and `netd down`.

mod netd_common;

use std::time::Duration;

use netd_common::{container_id, sh_ok, Host};
use rbox_tests::bin;

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..150 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what}: not within 3 s");
}

#[test]
fn sigkill_during_attaches_then_a_restart_loses_no_lease_and_leaks_nothing() {
    let mut h = Host::new("k");
    h.start_netd();
    let (fresh_links, fresh_table) = (h.links(), h.table_text());
    let nss: Vec<String> = (0..30).map(|_| h.container_ns()).collect();
    let ids: Vec<String> = (0..30).map(|_| container_id()).collect();
    let h = std::sync::Arc::new(std::sync::Mutex::new(h));
    let threads: Vec<_> = nss
        .iter()
        .zip(&ids)
        .enumerate()
        .map(|(i, (ns, id))| {
            let (h, ns, id) = (h.clone(), ns.clone(), id.clone());
            std::thread::spawn(move || {
                let socket = h.lock().unwrap().socket();
                let o = std::process::Command::new(bin("netd-client"))
                    .arg(socket)
                    .args([
                        "attach",
                        &format!("/run/netns/{ns}"),
                        "bridge",
                        &id,
                        &format!("k{i}"),
                        &format!("port=tcp/{}/80", 10000 + i),
                    ])
                    .output()
                    .unwrap();
                o.status.success()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(25));
    h.lock().unwrap().stop_netd("KILL");
    let answered: Vec<bool> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let mut h = std::sync::Arc::try_unwrap(h)
        .ok()
        .unwrap()
        .into_inner()
        .unwrap();
    h.start_netd();
    // Every attach that was answered is still there, with its address in its namespace.
    let leases = h.lease_files().len();
    let n_ok = answered.iter().filter(|a| **a).count();
    assert!(
        leases >= n_ok,
        "{leases} leases for {n_ok} answered attaches"
    );
    let mut seen = std::collections::BTreeSet::new();
    for (i, ns) in nss.iter().enumerate() {
        let inside = sh_ok(&format!(
            "ip -n {ns} -o -4 addr show dev eth0 2>/dev/null || true"
        ));
        if answered[i] {
            assert!(
                inside.contains("inet 10.77.0."),
                "attach {i} answered, its address is gone: {inside}"
            );
        }
        if let Some(ip) = inside
            .split_whitespace()
            .skip_while(|w| *w != "inet")
            .nth(1)
        {
            assert!(seen.insert(ip.to_string()), "address {ip} twice");
        }
    }
    // Links in the host are exactly the bridge and the veths of the kept leases.
    assert_eq!(
        h.links().len(),
        1 + h.lease_files().len(),
        "{:?} vs {:?}",
        h.links(),
        h.lease_files()
    );
    // Detach everything: back to a fresh netd's links, no lease left.
    for id in &ids {
        h.client_ok(&["detach", id]);
    }
    assert!(h.lease_files().is_empty(), "{:?}", h.lease_files());
    assert_eq!(h.links(), fresh_links);
    assert_eq!(
        h.table_text(),
        fresh_table,
        "no port of a container is left"
    );
}

#[test]
fn sigterm_leaves_networking_in_place_and_the_restart_keeps_it() {
    let mut h = Host::new("t");
    h.start_netd();
    let c = h.container_ns();
    let id = container_id();
    h.client_ok(&[
        "attach",
        &format!("/run/netns/{c}"),
        "bridge",
        &id,
        "web",
        "port=tcp/8080/80",
    ]);
    let _s = h.server(&c, "tcp", "0.0.0.0", 80, "UP");
    h.stop_netd("TERM");
    assert!(!h.socket().exists(), "the socket is removed");
    let out = h.out.clone();
    assert_eq!(
        h.fetch(&out, "tcp", "198.18.0.1", 8080),
        "UP",
        "still published with netd stopped"
    );
    h.start_netd();
    assert_eq!(h.lease_files().len(), 1);
    assert_eq!(
        h.fetch(&out, "tcp", "198.18.0.1", 8080),
        "UP",
        "and after the restart"
    );
    // netd keeps working with what it restored.
    h.client_ok(&["detach", &id]);
    assert_eq!(h.fetch(&out, "tcp", "198.18.0.1", 8080), "");
}

#[test]
fn a_namespace_gone_without_detach_releases_its_lease_and_port() {
    let mut h = Host::new("g");
    h.start_netd();
    let before = h.links();
    let c = h.container_ns();
    h.client_ok(&[
        "attach",
        &format!("/run/netns/{c}"),
        "bridge",
        &container_id(),
        "gone",
        "port=udp/5000/50",
    ]);
    assert!(h.table_text().contains("5000"));
    h.kill_container_ns(&c);
    wait_until("lease released", || h.lease_files().is_empty());
    assert_eq!(h.links(), before);
    assert!(!h.table_text().contains("5000"), "{}", h.table_text());
    assert!(h.log().contains("its network namespace is gone"));
}

#[test]
fn a_second_netd_for_the_same_table_refuses_to_start_in_one_line() {
    let mut h = Host::new("d");
    h.start_netd();
    let o = h
        .in_host(bin("netd").to_str().unwrap())
        .arg("--socket")
        .arg(h.dir.join("second.sock"))
        .arg("--state-dir")
        .arg(h.dir.join("second-state"))
        .arg("--config")
        .arg(h.config())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "another netd already owns nftables table \"{}\"",
            h.table
        )),
        "{err}"
    );
    h.client_ok(&["status"]);
}

#[test]
fn netd_down_removes_every_bridge_veth_lease_and_the_table() {
    let mut h = Host::new("w");
    h.start_netd();
    h.client_ok(&["create", "extra", "subnet=10.78.20.0/24"]);
    let (a, b) = (h.container_ns(), h.container_ns());
    h.client_ok(&[
        "attach",
        &format!("/run/netns/{a}"),
        "bridge",
        &container_id(),
        "a",
        "port=tcp/8080/80",
    ]);
    h.client_ok(&[
        "attach",
        &format!("/run/netns/{b}"),
        "extra",
        &container_id(),
        "b",
    ]);
    h.stop_netd("TERM");
    let o = h
        .in_host(bin("netd").to_str().unwrap())
        .arg("down")
        .arg("--socket")
        .arg(h.socket())
        .arg("--state-dir")
        .arg(h.state())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(h.links(), Vec::<String>::new());
    assert_eq!(h.table_text(), "", "the table is gone");
    assert!(h.lease_files().is_empty());
    assert!(!sh_ok(&format!("ip -n {a} -o link")).contains("eth0"));
}
