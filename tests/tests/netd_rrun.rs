//! rrun on netd's networks, end to end: rrun and the containers run in a throwaway host
//! namespace (nsenter, the real mount namespace) with a netd of the test's own; the outside
//! is 198.18.0.2. The default bridge, -p with inspect and `rrun port`, --dns and --add-host,
//! user networks, --net container:NAME, removal (also after rrun was SIGKILLed), and the line
//! rrun prints without netd.

mod netd_common;
mod rrun_common;

use std::process::{Command, Output, Stdio};

use netd_common::Host;
use rbox_tests::bin;
use rrun_common::{eventually, output, Lab};

fn rrun(h: &Host, lab: &Lab) -> Command {
    let mut c = h.in_host(bin("rrun").to_str().unwrap());
    c.env("RBOX_ROOT", lab.store.path())
        .env("RBOX_NETD_SOCKET", h.socket())
        .stdin(Stdio::null());
    c
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "rrun failed ({}): {}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn setup(tag: &str) -> (Host, Lab) {
    let lab = Lab::new(&format!("netd-rrun-{tag}"));
    let mut h = Host::new(tag);
    h.start_netd();
    (h, lab)
}

#[test]
fn a_run_on_the_default_bridge_gets_eth0_a_route_resolv_conf_and_hosts() {
    let (h, lab) = setup("b");
    let mut c = rrun(&h, &lab);
    c.args([
        "--hostname",
        "box1",
        "--dns",
        "192.0.2.53",
        "--add-host",
        "db:10.1.2.3",
        "--image",
        &lab.image,
        "--",
    ])
    .args([
        "sh",
        "-c",
        "ip -o -4 addr show dev eth0; ip route; cat /etc/resolv.conf /etc/hosts",
    ]);
    let out = ok(output(c, 60));
    assert!(out.contains("inet 10.77.0.2/24"), "{out}");
    assert!(out.contains("default via 10.77.0.1 dev eth0"), "{out}");
    assert!(
        out.contains("nameserver 192.0.2.53") && !out.contains("nameserver 198.18.0.2"),
        "{out}"
    );
    assert!(
        out.contains("10.77.0.2\tbox1") && out.contains("10.1.2.3\tdb"),
        "{out}"
    );
    let mut c = rrun(&h, &lab);
    c.args(["--image", &lab.image, "--", "cat", "/etc/resolv.conf"]);
    let out = ok(output(c, 60));
    assert!(
        out.contains("nameserver 198.18.0.2"),
        "netd's upstreams on the default bridge: {out}"
    );
    assert!(
        eventually(5, || h.lease_files().is_empty()),
        "released at exit: {:?}",
        h.lease_files()
    );
    assert_eq!(h.links().len(), 1, "{:?}", h.links());
}

#[test]
fn published_ports_show_in_inspect_and_rrun_port_and_rm_closes_them() {
    let (h, lab) = setup("w");
    let mut c = rrun(&h, &lab);
    c.args([
        "-d", "--name", "web", "-p", "8080:80", "-p", "81", "--image", &lab.image, "--",
    ])
    .args(["sh", "-c", "while true; do echo WEB | nc -l -p 80; done"]);
    ok(output(c, 60));
    let out = h.out.clone();
    assert!(
        eventually(10, || h.fetch(&out, "tcp", "198.18.0.1", 8080) == "WEB"),
        "DNAT from outside"
    );
    let mut c = rrun(&h, &lab);
    c.args(["inspect", "web"]);
    let v: serde_json::Value = serde_json::from_str(&ok(output(c, 30))).unwrap();
    assert_eq!(v["network"]["mode"], "bridge");
    assert_eq!(v["network"]["ip"], "10.77.0.2");
    assert_eq!(v["network"]["gateway"], "10.77.0.1");
    assert_eq!(
        v["ports"][0],
        serde_json::json!({"host_ip": "0.0.0.0", "host_port": 8080, "port": 80, "proto": "tcp"})
    );
    let picked = v["ports"][1]["host_port"].as_u64().unwrap();
    assert!(picked >= 32768, "{v}");
    let mut c = rrun(&h, &lab);
    c.args(["port", "web"]);
    assert_eq!(
        ok(output(c, 30)),
        format!("80/tcp -> 0.0.0.0:8080\n81/tcp -> 0.0.0.0:{picked}")
    );
    let mut c = rrun(&h, &lab);
    c.args(["rm", "-f", "web"]);
    ok(output(c, 30));
    assert!(h.lease_files().is_empty(), "rm released the lease at once");
    assert_eq!(
        h.fetch(&out, "tcp", "198.18.0.1", 8080),
        "",
        "the port is closed"
    );
}

#[test]
fn removing_a_container_whose_rrun_was_killed_releases_everything() {
    let (h, lab) = setup("z");
    let before = h.links();
    let mut c = rrun(&h, &lab);
    c.args([
        "--name", "k", "-p", "9090:90", "--image", &lab.image, "--", "sleep", "100",
    ]);
    let mut child = c.spawn().unwrap();
    assert!(eventually(10, || h.lease_files().len() == 1), "attached");
    // nsenter execs rrun: the child's pid is rrun's.
    unsafe_kill(child.id());
    let _ = child.wait();
    let mut c = rrun(&h, &lab);
    c.args(["rm", "-f", "k"]);
    ok(output(c, 30));
    assert!(
        eventually(5, || h.lease_files().is_empty()),
        "{:?}",
        h.lease_files()
    );
    assert_eq!(h.links(), before);
    assert!(!h.table_text().contains("9090"), "{}", h.table_text());
}

fn unsafe_kill(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
}

#[test]
fn user_networks_and_container_mode() {
    let (h, lab) = setup("n");
    let mut c = rrun(&h, &lab);
    c.args(["network", "create", "n1", "--subnet", "10.79.1.0/24"]);
    assert_eq!(ok(output(c, 30)), "n1");
    let mut c = rrun(&h, &lab);
    c.args(["network", "ls"]);
    assert!(ok(output(c, 30)).lines().any(|l| l.starts_with("n1 ")));
    let mut c = rrun(&h, &lab);
    c.args([
        "--net",
        "n1",
        "--network-alias",
        "www",
        "--image",
        &lab.image,
        "--",
        "sh",
        "-c",
        "ip -o -4 addr show dev eth0; cat /etc/resolv.conf",
    ]);
    let out = ok(output(c, 60));
    assert!(out.contains("inet 10.79.1.2/24"), "{out}");
    let ns: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("nameserver"))
        .collect();
    assert_eq!(
        ns,
        vec!["nameserver 10.79.1.1"],
        "only netd's resolver on a user network: {out}"
    );
    let mut c = rrun(&h, &lab);
    c.args([
        "-d",
        "--name",
        "srv",
        "--image",
        &lab.image,
        "--",
        "sh",
        "-c",
        "while true; do echo SHARED | nc -l -p 8080; done",
    ]);
    ok(output(c, 60));
    let ns = h.ns.clone();
    assert!(eventually(10, || h.fetch(&ns, "tcp", "10.77.0.2", 8080) == "SHARED"));
    let mut c = rrun(&h, &lab);
    c.args([
        "--net",
        "container:srv",
        "--image",
        &lab.image,
        "--",
        "sh",
        "-c",
        "nc -w 3 127.0.0.1 8080 </dev/null",
    ]);
    assert_eq!(ok(output(c, 60)), "SHARED");
    // connect and disconnect a running container.
    let mut c = rrun(&h, &lab);
    c.args(["network", "connect", "--alias", "backend", "n1", "srv"]);
    ok(output(c, 30));
    let mut c = rrun(&h, &lab);
    c.args([
        "exec", "srv", "ip", "-o", "-4", "addr", "show", "dev", "eth1",
    ]);
    assert!(
        ok(output(c, 30)).contains("inet 10.79.1.2/24"),
        "eth1 on n1 (the earlier run's lease was released)"
    );
    let mut c = rrun(&h, &lab);
    c.args(["network", "rm", "n1"]);
    assert!(!output(c, 30).status.success(), "n1 is in use by srv");
    let mut c = rrun(&h, &lab);
    c.args(["network", "disconnect", "n1", "srv"]);
    ok(output(c, 30));
    let mut c = rrun(&h, &lab);
    c.args(["exec", "srv", "ip", "-o", "link"]);
    assert!(!ok(output(c, 30)).contains("eth1"), "eth1 is gone");
    let mut c = rrun(&h, &lab);
    c.args(["network", "rm", "n1"]);
    ok(output(c, 30));
    let mut c = rrun(&h, &lab);
    c.args(["rm", "-f", "srv"]);
    ok(output(c, 30));
    assert!(h.lease_files().is_empty());
}

#[test]
fn without_netd_one_line_says_how_to_start_it() {
    let lab = Lab::new("netd-rrun-none");
    let o = output(
        {
            let mut c = lab.rrun();
            c.env("RBOX_NETD_SOCKET", lab.store.join("no-netd.sock"))
                .args(["--image", &lab.image, "--", "true"]);
            c
        },
        30,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("netd is not running") && err.contains("start it with"),
        "{err}"
    );
    assert!(
        lab.container_ids().is_empty(),
        "nothing of the container is left"
    );
}
