//! A throwaway lab for netd's firewall and DNS tests: a "host" netns with two bridges (networks
//! A and B), three "container" netns on them, and an "outside" netns with 198.18.0.2 and
//! 2001:db8:18::2 behind the host's uplink. Nothing touches the real host's ruleset: every
//! firewall call runs in a thread that entered the lab's host netns (`Lab::host`).
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

pub const HOST4: &str = "198.18.0.1";
pub const HOST6: &str = "2001:db8:18::1";
pub const OUT4: &str = "198.18.0.2";
pub const OUT6: &str = "2001:db8:18::2";
pub const GW_A4: &str = "10.77.1.1";
pub const GW_A6: &str = "fd77:1::1";
pub const GW_B4: &str = "10.77.2.1";
pub const C1_4: &str = "10.77.1.2";
pub const C1_6: &str = "fd77:1::2";
pub const C2_4: &str = "10.77.1.3";
pub const C2_6: &str = "fd77:1::3";
pub const C3_4: &str = "10.77.2.2";

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Runs a command, panicking with its stderr when it fails.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .env("LC_ALL", "C")
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `f` in a new thread that entered network namespace `ns` (/run/netns/NS).
pub fn in_ns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    let fd = File::open(format!("/run/netns/{ns}")).unwrap_or_else(|e| panic!("netns {ns}: {e}"));
    std::thread::scope(|s| {
        s.spawn(|| {
            move_into_link_name_space(fd.as_fd(), Some(LinkNameSpaceType::Network))
                .expect("setns (tests need root)");
            f()
        })
        .join()
        .unwrap()
    })
}

pub struct Lab {
    pub tag: String,
    pub h: String,
    pub o: String,
    pub c1: String,
    pub c2: String,
    pub c3: String,
    /// A unique table name, so that even a mistake could not touch another table.
    pub table: String,
    stop: Arc<AtomicBool>,
    servers: Vec<JoinHandle<()>>,
}

impl Lab {
    pub fn new() -> Lab {
        assert!(
            rustix::process::geteuid().is_root(),
            "netd tests need root (netns, nftables)"
        );
        let tag = format!(
            "nfw{}x{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let n = |s: &str| format!("{tag}{s}");
        let lab = Lab {
            h: n("h"),
            o: n("o"),
            c1: n("c1"),
            c2: n("c2"),
            c3: n("c3"),
            table: format!("rbt_{}", tag),
            tag,
            stop: Arc::new(AtomicBool::new(false)),
            servers: Vec::new(),
        };
        for ns in [&lab.h, &lab.o, &lab.c1, &lab.c2, &lab.c3] {
            sh(&["ip", "netns", "add", ns]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        let h = lab.h.as_str();
        sh(&[
            "ip", "-n", h, "link", "add", "up0", "type", "veth", "peer", "name", "wan0", "netns",
            &lab.o,
        ]);
        sh(&["ip", "-n", h, "addr", "add", "198.18.0.1/24", "dev", "up0"]);
        sh(&["ip", "-n", h, "addr", "add", "198.18.0.3/24", "dev", "up0"]);
        sh(&[
            "ip",
            "-n",
            h,
            "addr",
            "add",
            "2001:db8:18::1/64",
            "dev",
            "up0",
            "nodad",
        ]);
        sh(&["ip", "-n", h, "link", "set", "up0", "up"]);
        sh(&[
            "ip",
            "-n",
            &lab.o,
            "addr",
            "add",
            "198.18.0.2/24",
            "dev",
            "wan0",
        ]);
        sh(&[
            "ip",
            "-n",
            &lab.o,
            "addr",
            "add",
            "2001:db8:18::2/64",
            "dev",
            "wan0",
            "nodad",
        ]);
        sh(&["ip", "-n", &lab.o, "link", "set", "wan0", "up"]);
        for (br, a4, a6) in [
            ("br-a", "10.77.1.1/24", "fd77:1::1/64"),
            ("br-b", "10.77.2.1/24", "fd77:2::1/64"),
        ] {
            sh(&["ip", "-n", h, "link", "add", br, "type", "bridge"]);
            sh(&["ip", "-n", h, "addr", "add", a4, "dev", br]);
            sh(&["ip", "-n", h, "addr", "add", a6, "dev", br, "nodad"]);
            sh(&["ip", "-n", h, "link", "set", br, "up"]);
        }
        lab.container(
            &lab.c1,
            "va1",
            "br-a",
            "10.77.1.2/24",
            "fd77:1::2/64",
            GW_A4,
            GW_A6,
        );
        lab.container(
            &lab.c2,
            "va2",
            "br-a",
            "10.77.1.3/24",
            "fd77:1::3/64",
            GW_A4,
            GW_A6,
        );
        lab.container(
            &lab.c3,
            "vb1",
            "br-b",
            "10.77.2.2/24",
            "fd77:2::2/64",
            GW_B4,
            "fd77:2::1",
        );
        lab.settle_ipv6();
        lab
    }

    #[allow(clippy::too_many_arguments)]
    fn container(
        &self,
        ns: &str,
        host_end: &str,
        br: &str,
        a4: &str,
        a6: &str,
        gw4: &str,
        gw6: &str,
    ) {
        let h = self.h.as_str();
        sh(&[
            "ip", "-n", h, "link", "add", host_end, "type", "veth", "peer", "name", "eth0",
            "netns", ns,
        ]);
        sh(&["ip", "-n", h, "link", "set", host_end, "master", br, "up"]);
        // As netd's attach does: with br_netfilter, a container reaching its own published port
        // is bridged back out of the port it came in on.
        sh(&[
            "ip",
            "-n",
            h,
            "link",
            "set",
            host_end,
            "type",
            "bridge_slave",
            "hairpin",
            "on",
        ]);
        sh(&["ip", "-n", ns, "addr", "add", a4, "dev", "eth0"]);
        sh(&["ip", "-n", ns, "addr", "add", a6, "dev", "eth0", "nodad"]);
        sh(&["ip", "-n", ns, "link", "set", "eth0", "up"]);
        sh(&["ip", "-n", ns, "route", "add", "default", "via", gw4]);
        sh(&["ip", "-n", ns, "-6", "route", "add", "default", "via", gw6]);
    }

    /// Waits (up to 5 s) until no IPv6 address of the lab is tentative (duplicate address
    /// detection of the link-local addresses), so IPv6 works from the first packet.
    pub fn settle_ipv6(&self) {
        let start = Instant::now();
        for ns in [&self.h, &self.o, &self.c1, &self.c2, &self.c3] {
            while !sh(&["ip", "-n", ns, "-6", "addr", "show", "tentative"])
                .trim()
                .is_empty()
            {
                assert!(
                    start.elapsed() < Duration::from_secs(5),
                    "IPv6 addresses in {ns} stay tentative"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Runs `f` in the lab's host netns.
    pub fn host<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        in_ns(&self.h, f)
    }

    /// `nft ARGS` in the lab's host netns.
    pub fn nft(&self, args: &[&str]) -> String {
        let mut a = vec!["ip", "netns", "exec", &self.h, "nft"];
        a.extend_from_slice(args);
        sh(&a)
    }

    /// A TCP server on `addr` in `ns` that answers each connection with `NAME PEER` and
    /// closes; a UDP server on the same address that answers each datagram the same way.
    pub fn serve(&mut self, ns: &str, name: &str, addr: SocketAddr) {
        let (tcp, udp) = in_ns(ns, || {
            (
                TcpListener::bind(addr).unwrap(),
                UdpSocket::bind(addr).unwrap(),
            )
        });
        tcp.set_nonblocking(true).unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let (stop, stop2) = (self.stop.clone(), self.stop.clone());
        let (n1, n2) = (name.to_string(), name.to_string());
        self.servers.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match tcp.accept() {
                    Ok((mut s, peer)) => {
                        let _ =
                            s.write_all(format!("{n1} {}", peer.ip().to_canonical()).as_bytes());
                        let _ = s.shutdown(Shutdown::Both);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }));
        self.servers.push(std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            while !stop2.load(Ordering::Relaxed) {
                if let Ok((_, peer)) = udp.recv_from(&mut buf) {
                    let _ = udp.send_to(
                        format!("{n2} {}", peer.ip().to_canonical()).as_bytes(),
                        peer,
                    );
                }
            }
        }));
    }

    pub fn stop_servers(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.servers.drain(..) {
            let _ = t.join();
        }
        self.stop.store(false, Ordering::Relaxed);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop_servers();
        for ns in [&self.c1, &self.c2, &self.c3, &self.o, &self.h] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

pub fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse::<IpAddr>().unwrap(), port)
}

/// TCP from `ns` to `to`: what the server said, or the error.
pub fn tcp(ns: &str, to: SocketAddr, timeout: Duration) -> Result<String, String> {
    in_ns(ns, || {
        let mut s = TcpStream::connect_timeout(&to, timeout).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(timeout)).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).map_err(|e| e.to_string())?;
        Ok(out)
    })
}

/// One UDP datagram from `ns` to `to` and its answer (three tries within `timeout`).
pub fn udp(ns: &str, to: SocketAddr, timeout: Duration) -> Result<String, String> {
    in_ns(ns, || {
        let bind: SocketAddr = if to.is_ipv6() {
            "[::]:0".parse().unwrap()
        } else {
            "0.0.0.0:0".parse().unwrap()
        };
        let s = UdpSocket::bind(bind).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(timeout / 3)).unwrap();
        let mut buf = [0u8; 128];
        let mut last = String::new();
        for _ in 0..3 {
            s.send_to(b"ping", to).map_err(|e| e.to_string())?;
            match s.recv_from(&mut buf) {
                Ok((n, _)) => return Ok(String::from_utf8_lossy(&buf[..n]).into_owned()),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    })
}

/// Retries `f` until it returns Ok or `within` passes; returns the time it took.
pub fn until_ok<T>(
    within: Duration,
    mut f: impl FnMut() -> Result<T, String>,
) -> Result<(T, Duration), String> {
    let start = Instant::now();
    loop {
        match f() {
            Ok(v) => return Ok((v, start.elapsed())),
            Err(e) if start.elapsed() >= within => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}
