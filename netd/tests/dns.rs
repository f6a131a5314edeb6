//! netd's DNS responder in a throwaway lab: containers' names and aliases (A, AAAA), NODATA,
//! NXDOMAIN, names of another network invisible, forwarding to an upstream resolver that the
//! test runs in the "outside" netns (198.18.0.2), over UDP and TCP, IPv4 and IPv6. Needs root.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use netd::dns::{Dns, DnsConfig};
use netd::view::{DnsNetView, DnsView};

const UPSTREAM_ANSWER: &str = "198.18.7.7";

/// A resolver in the outside netns: every A query gets 198.18.7.7, over UDP and TCP.
struct Upstream {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

fn upstream_reply(q: &[u8]) -> Vec<u8> {
    let m = Message::from_vec(q).unwrap();
    let mut r = Message::response(m.metadata.id, m.metadata.op_code);
    r.metadata.message_type = MessageType::Response;
    r.queries = m.queries.clone();
    let q = &m.queries[0];
    if q.query_type() == RecordType::A {
        r.answers.push(Record::from_rdata(
            q.name().clone(),
            60,
            RData::A(A(UPSTREAM_ANSWER.parse().unwrap())),
        ));
    }
    r.to_vec().unwrap()
}

impl Upstream {
    fn start(lab: &Lab) -> Upstream {
        let addr = sa(OUT4, 53);
        let (udp, tcp) = in_ns(&lab.o, || {
            (
                UdpSocket::bind(addr).unwrap(),
                TcpListener::bind(addr).unwrap(),
            )
        });
        udp.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        tcp.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (s1, s2) = (stop.clone(), stop.clone());
        let t1 = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !s1.load(Ordering::Relaxed) {
                if let Ok((n, peer)) = udp.recv_from(&mut buf) {
                    let _ = udp.send_to(&upstream_reply(&buf[..n]), peer);
                }
            }
        });
        let t2 = std::thread::spawn(move || {
            while !s2.load(Ordering::Relaxed) {
                let Ok((mut s, _)) = tcp.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                s.set_nonblocking(false).unwrap();
                let mut len = [0u8; 2];
                if s.read_exact(&mut len).is_err() {
                    continue;
                }
                let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
                if s.read_exact(&mut q).is_ok() {
                    let r = upstream_reply(&q);
                    let _ = s.write_all(&(r.len() as u16).to_be_bytes());
                    let _ = s.write_all(&r);
                }
            }
        });
        Upstream {
            stop,
            threads: vec![t1, t2],
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// One query from netns `ns` to `server`: (response code, the addresses answered).
fn ask(
    ns: &str,
    server: SocketAddr,
    name: &str,
    t: RecordType,
    tcp: bool,
) -> (ResponseCode, Vec<IpAddr>) {
    let mut m = Message::query();
    m.metadata.id = 4242;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    let q = m.to_vec().unwrap();
    let raw = in_ns(ns, || {
        if tcp {
            let mut s = TcpStream::connect_timeout(&server, Duration::from_secs(3)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(&(q.len() as u16).to_be_bytes()).unwrap();
            s.write_all(&q).unwrap();
            let mut len = [0u8; 2];
            s.read_exact(&mut len).unwrap();
            let mut r = vec![0u8; u16::from_be_bytes(len) as usize];
            s.read_exact(&mut r).unwrap();
            r
        } else {
            let bind = if server.is_ipv6() {
                "[::]:0"
            } else {
                "0.0.0.0:0"
            };
            let s = UdpSocket::bind(bind).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.send_to(&q, server).unwrap();
            let mut buf = [0u8; 1500];
            let (n, _) = s.recv_from(&mut buf).expect("no DNS answer");
            buf[..n].to_vec()
        }
    });
    let r = Message::from_vec(&raw).unwrap();
    assert_eq!(r.metadata.id, 4242);
    let addrs = r
        .answers
        .iter()
        .filter_map(|rec| match rec.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect();
    (r.metadata.response_code, addrs)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn view() -> DnsView {
    let mut a = BTreeMap::new();
    a.insert("c1".to_string(), vec![ip(C1_4), ip(C1_6)]);
    a.insert("web".to_string(), vec![ip(C1_4), ip(C1_6)]); // --network-alias web
    a.insert("c2".to_string(), vec![ip(C2_4), ip(C2_6)]);
    let mut b = BTreeMap::new();
    b.insert("c3".to_string(), vec![ip(C3_4)]);
    DnsView {
        networks: vec![
            DnsNetView {
                network: "neta".into(),
                bridge: "br-a".into(),
                listen: vec![ip(GW_A4), ip(GW_A6)],
                records: a,
            },
            DnsNetView {
                network: "netb".into(),
                bridge: "br-b".into(),
                listen: vec![ip(GW_B4)],
                records: b,
            },
        ],
    }
}

fn start(lab: &Lab, upstreams: Vec<SocketAddr>) -> Dns {
    lab.host(|| {
        let mut d = Dns::new(DnsConfig { upstreams }).unwrap();
        d.update(&view()).unwrap();
        d
    })
}

#[test]
fn answers_names_and_aliases_with_a_aaaa_nodata_and_nxdomain() {
    let lab = Lab::new();
    let _dns = start(&lab, vec![]);
    let gw = sa(GW_A4, 53);
    for tcp in [false, true] {
        assert_eq!(
            ask(&lab.c2, gw, "c1", RecordType::A, tcp),
            (ResponseCode::NoError, vec![ip(C1_4)])
        );
        assert_eq!(
            ask(&lab.c2, gw, "c1", RecordType::AAAA, tcp),
            (ResponseCode::NoError, vec![ip(C1_6)])
        );
        assert_eq!(
            ask(&lab.c2, gw, "web.", RecordType::A, tcp),
            (ResponseCode::NoError, vec![ip(C1_4)])
        );
        assert_eq!(
            ask(&lab.c2, gw, "WEB.neta.", RecordType::A, tcp),
            (ResponseCode::NoError, vec![ip(C1_4)])
        );
        // NODATA: the name exists, the type does not.
        assert_eq!(
            ask(&lab.c2, gw, "c1", RecordType::MX, tcp),
            (ResponseCode::NoError, vec![])
        );
        assert_eq!(
            ask(&lab.c1, sa(GW_B4, 53), "c3", RecordType::AAAA, tcp).0,
            ResponseCode::NoError
        );
        // NXDOMAIN for unknown names of its own zone, and for another network's containers.
        assert_eq!(
            ask(&lab.c2, gw, "nope", RecordType::A, tcp).0,
            ResponseCode::NXDomain
        );
        assert_eq!(
            ask(&lab.c2, gw, "nope.neta", RecordType::A, tcp).0,
            ResponseCode::NXDomain
        );
        assert_eq!(
            ask(&lab.c2, gw, "c3", RecordType::A, tcp).0,
            ResponseCode::NXDomain
        );
    }
    // On the IPv6 gateway too, and network B's own view.
    assert_eq!(
        ask(&lab.c2, sa(GW_A6, 53), "c1", RecordType::AAAA, false),
        (ResponseCode::NoError, vec![ip(C1_6)])
    );
    assert_eq!(
        ask(&lab.c3, sa(GW_B4, 53), "c3", RecordType::A, false),
        (ResponseCode::NoError, vec![ip(C3_4)])
    );
    assert_eq!(
        ask(&lab.c3, sa(GW_B4, 53), "c1", RecordType::A, false).0,
        ResponseCode::NXDomain
    );
}

#[test]
fn other_names_are_forwarded_to_the_upstream_in_the_outside_netns() {
    let lab = Lab::new();
    let _up = Upstream::start(&lab);
    let _dns = start(&lab, vec![sa(OUT4, 53)]);
    for (server, tcp) in [
        (sa(GW_A4, 53), false),
        (sa(GW_A4, 53), true),
        (sa(GW_A6, 53), false),
    ] {
        assert_eq!(
            ask(&lab.c1, server, "example.test.", RecordType::A, tcp),
            (ResponseCode::NoError, vec![ip(UPSTREAM_ANSWER)])
        );
    }
    // Still netd's own names first.
    assert_eq!(
        ask(&lab.c1, sa(GW_A4, 53), "c2", RecordType::A, false).1,
        vec![ip(C2_4)]
    );
}

#[test]
fn unreachable_upstream_gives_servfail() {
    let lab = Lab::new();
    // 198.18.0.9: in the outside's subnet, nobody there.
    let _dns = start(&lab, vec![sa("198.18.0.9", 53)]);
    let t = Instant::now();
    assert_eq!(
        ask(
            &lab.c1,
            sa(GW_A4, 53),
            "example.test.",
            RecordType::A,
            false
        )
        .0,
        ResponseCode::ServFail
    );
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
}

#[test]
fn update_changes_names_and_listeners() {
    let lab = Lab::new();
    let mut dns = start(&lab, vec![]);
    let mut v = view();
    v.networks[0].records.remove("web");
    v.networks.remove(1);
    lab.host(|| dns.update(&v).unwrap());
    assert_eq!(
        ask(&lab.c2, sa(GW_A4, 53), "web", RecordType::A, false).0,
        ResponseCode::NXDomain
    );
    assert_eq!(dns.listening(), vec![ip(GW_A4), ip(GW_A6)]);
    // Network B's listener is closed: nothing answers there any more.
    let refused = in_ns(&lab.c3, || {
        TcpStream::connect_timeout(&sa(GW_B4, 53), Duration::from_secs(1)).is_err()
    });
    assert!(refused, "network B's DNS listener still open");
}

#[test]
fn garbage_and_truncated_queries_do_not_stop_the_responder() {
    let lab = Lab::new();
    let _dns = start(&lab, vec![]);
    in_ns(&lab.c1, || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        for len in [0usize, 1, 11, 12, 13, 100, 4000] {
            let _ = s.send_to(&vec![0xa5; len], sa(GW_A4, 53));
        }
        // A TCP client that announces 500 bytes and sends 3, then goes away.
        let mut t = TcpStream::connect(sa(GW_A4, 53)).unwrap();
        t.write_all(&[1, 244, 1, 2, 3]).unwrap();
    });
    assert_eq!(
        ask(&lab.c2, sa(GW_A4, 53), "c1", RecordType::A, false).1,
        vec![ip(C1_4)]
    );
    assert_eq!(
        ask(&lab.c2, sa(GW_A4, 53), "c1", RecordType::A, true).1,
        vec![ip(C1_4)]
    );
}
