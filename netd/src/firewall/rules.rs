//! netd's table as nftables JSON objects (the `nftables` crate's types): the whole table from a
//! [`FwState`], and the set and map elements of one network or one published port. No kernel
//! access; `apply.rs` sends these to `nft -j`. The layout is documented in `mod.rs`.

use std::borrow::Cow;
use std::collections::HashSet;

use nftables::expr::{
    Expression, Fib, FibFlag, FibResult, Map as MapExpr, Meta, MetaKey, NamedExpression, Payload,
    PayloadField, Prefix, CT,
};
use nftables::schema::{
    Chain, Element, Map, NfListObject, Rule, Set, SetFlag, SetType, SetTypeValue, Table,
};
use nftables::stmt::{Match, NATFamily, Operator, Statement, NAT};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use super::model::{FwState, Network, PortBinding};

/// Set of every netd bridge (`ifname`).
pub const SET_BRIDGES: &str = "bridges";
/// Set of `bridge . bridge` pairs: traffic routed inside one network.
pub const SET_INTRA: &str = "intra";
/// Interval sets of netd's subnets.
pub const SET_NETS4: &str = "nets4";
pub const SET_NETS6: &str = "nets6";

/// The four DNAT maps of one family: published on every host address (`any`) or on one
/// (`host`), each split in an address map and a port map with the same key (see mod.rs: nft
/// 1.0.6 cannot read concatenated map data from JSON).
pub struct DnatMaps {
    pub any_addr: &'static str,
    pub any_port: &'static str,
    pub host_addr: &'static str,
    pub host_port: &'static str,
}

pub const DNAT4: DnatMaps = DnatMaps {
    any_addr: "dnat4_addr",
    any_port: "dnat4_port",
    host_addr: "dnat4_haddr",
    host_port: "dnat4_hport",
};
pub const DNAT6: DnatMaps = DnatMaps {
    any_addr: "dnat6_addr",
    any_port: "dnat6_port",
    host_addr: "dnat6_haddr",
    host_port: "dnat6_hport",
};

/// The chains netd creates, in the order they are added.
pub const CHAINS: [&str; 6] = [
    "raw_prerouting",
    "prerouting",
    "output",
    "published",
    "forward",
    "postrouting",
];

const FAMILY: NfFamily = NfFamily::INet;

/// Everything that makes one table, in an order `nft` accepts in one transaction.
pub fn table(name: &str, state: &FwState) -> Vec<NfListObject<'static>> {
    let t = name.to_string();
    let mut out = vec![NfListObject::Table(Table {
        family: FAMILY,
        name: t.clone().into(),
        handle: None,
    })];
    out.extend(sets(&t));
    out.extend(chains(&t));
    out.extend(rules(&t).into_iter().map(|(chain, expr)| {
        NfListObject::Rule(Rule {
            family: FAMILY,
            table: t.clone().into(),
            chain: chain.into(),
            expr: expr.into(),
            ..Rule::default()
        })
    }));
    for net in &state.networks {
        out.extend(network_elements(&t, net));
    }
    out.extend(port_elements(&t, &state.ports));
    out
}

/// Number of rules [`table`] makes: the same for any number of networks and ports.
pub fn rule_count() -> usize {
    rules("x").len()
}

fn sets(t: &str) -> Vec<NfListObject<'static>> {
    let set = |name: &'static str, ty: SetTypeValue<'static>, interval: bool| {
        NfListObject::Set(Box::new(Set {
            family: FAMILY,
            table: t.to_string().into(),
            name: name.into(),
            set_type: ty,
            flags: interval.then(|| HashSet::from([SetFlag::Interval])),
            ..Set::default()
        }))
    };
    let mut out = vec![
        set(SET_BRIDGES, SetTypeValue::Single(SetType::Ifname), false),
        set(
            SET_INTRA,
            concat(&[SetType::Ifname, SetType::Ifname]),
            false,
        ),
        set(SET_NETS4, SetTypeValue::Single(SetType::Ipv4Addr), true),
        set(SET_NETS6, SetTypeValue::Single(SetType::Ipv6Addr), true),
    ];
    for (maps, addr) in [(&DNAT4, SetType::Ipv4Addr), (&DNAT6, SetType::Ipv6Addr)] {
        let any_key = concat(&[SetType::InetProto, SetType::InetService]);
        let host_key = concat(&[addr, SetType::InetProto, SetType::InetService]);
        for (name, key, data) in [
            (maps.any_addr, any_key.clone(), addr),
            (maps.any_port, any_key, SetType::InetService),
            (maps.host_addr, host_key.clone(), addr),
            (maps.host_port, host_key, SetType::InetService),
        ] {
            out.push(NfListObject::Map(Box::new(Map {
                family: FAMILY,
                table: t.to_string().into(),
                name: name.into(),
                set_type: key,
                map: SetTypeValue::Single(data),
                ..Map::default()
            })));
        }
    }
    out
}

fn concat(types: &[SetType]) -> SetTypeValue<'static> {
    SetTypeValue::Concatenated(Cow::Owned(types.to_vec()))
}

fn chains(t: &str) -> Vec<NfListObject<'static>> {
    let base = |name: &'static str, ty, hook, prio| {
        NfListObject::Chain(Chain {
            family: FAMILY,
            table: t.to_string().into(),
            name: name.into(),
            _type: Some(ty),
            hook: Some(hook),
            prio: Some(prio),
            policy: Some(NfChainPolicy::Accept),
            ..Chain::default()
        })
    };
    vec![
        base(
            "raw_prerouting",
            NfChainType::Filter,
            NfHook::Prerouting,
            -300,
        ),
        base("prerouting", NfChainType::NAT, NfHook::Prerouting, -100),
        base("output", NfChainType::NAT, NfHook::Output, -100),
        NfListObject::Chain(Chain {
            family: FAMILY,
            table: t.to_string().into(),
            name: "published".into(),
            ..Chain::default()
        }),
        base("forward", NfChainType::Filter, NfHook::Forward, 0),
        base("postrouting", NfChainType::NAT, NfHook::Postrouting, 100),
    ]
}

/// Every rule, as (chain, statements). Documented line by line in mod.rs.
fn rules(_t: &str) -> Vec<(&'static str, Vec<Statement<'static>>)> {
    let bridges = || s(&format!("@{SET_BRIDGES}"));
    let intra = || concat_expr(vec![meta(MetaKey::Iifname), meta(MetaKey::Oifname)]);
    vec![
        // route_localnet on netd's bridges must not open 127.0.0.0/8 to anything but lo.
        (
            "raw_prerouting",
            vec![
                m(meta(MetaKey::Iifname), Operator::NEQ, s("lo")),
                m(payload("ip", "daddr"), Operator::EQ, prefix("127.0.0.0", 8)),
                drop(),
            ],
        ),
        (
            "prerouting",
            vec![
                m(fib_daddr_type(), Operator::EQ, s("local")),
                jump("published"),
            ],
        ),
        (
            "output",
            vec![
                m(fib_daddr_type(), Operator::EQ, s("local")),
                jump("published"),
            ],
        ),
        ("published", dnat(NATFamily::IP, "ipv4", &DNAT4, true)),
        ("published", dnat(NATFamily::IP, "ipv4", &DNAT4, false)),
        ("published", dnat(NATFamily::IP6, "ipv6", &DNAT6, true)),
        ("published", dnat(NATFamily::IP6, "ipv6", &DNAT6, false)),
        // Published ports, from anywhere that reaches the host.
        (
            "forward",
            vec![
                m(meta(MetaKey::Oifname), Operator::EQ, bridges()),
                m(ct("status"), Operator::IN, s("dnat")),
                accept(),
            ],
        ),
        // Inside one network (routed through its gateway).
        (
            "forward",
            vec![
                m(intra(), Operator::EQ, s(&format!("@{SET_INTRA}"))),
                accept(),
            ],
        ),
        // Networks isolated from each other.
        (
            "forward",
            vec![
                m(meta(MetaKey::Iifname), Operator::EQ, bridges()),
                m(meta(MetaKey::Oifname), Operator::EQ, bridges()),
                drop(),
            ],
        ),
        // Leaving a network.
        (
            "forward",
            vec![m(meta(MetaKey::Iifname), Operator::EQ, bridges()), accept()],
        ),
        // Replies back into a network.
        (
            "forward",
            vec![
                m(meta(MetaKey::Oifname), Operator::EQ, bridges()),
                m(
                    ct("state"),
                    Operator::IN,
                    Expression::List(vec![s("established"), s("related")]),
                ),
                accept(),
            ],
        ),
        // Nothing unsolicited reaches a container but its published ports.
        (
            "forward",
            vec![m(meta(MetaKey::Oifname), Operator::EQ, bridges()), drop()],
        ),
        // The host's own 127.0.0.1 towards a container: the gateway address as source.
        (
            "postrouting",
            vec![
                m(meta(MetaKey::Oifname), Operator::EQ, bridges()),
                m(payload("ip", "saddr"), Operator::EQ, prefix("127.0.0.0", 8)),
                masquerade(),
            ],
        ),
        // Hairpin: a container reaching a published port through a host address. Matched on
        // the source subnet, not on iifname: with br_netfilter the hairpinned packet is bridged
        // and postrouting sees no input interface.
        (
            "postrouting",
            vec![
                m(ct("status"), Operator::IN, s("dnat")),
                m(
                    payload("ip", "saddr"),
                    Operator::EQ,
                    s(&format!("@{SET_NETS4}")),
                ),
                m(meta(MetaKey::Oifname), Operator::EQ, bridges()),
                masquerade(),
            ],
        ),
        (
            "postrouting",
            vec![
                m(ct("status"), Operator::IN, s("dnat")),
                m(
                    payload("ip6", "saddr"),
                    Operator::EQ,
                    s(&format!("@{SET_NETS6}")),
                ),
                m(meta(MetaKey::Oifname), Operator::EQ, bridges()),
                masquerade(),
            ],
        ),
        // MASQUERADE (NAT66 for IPv6) for traffic leaving a network.
        (
            "postrouting",
            vec![
                m(
                    payload("ip", "saddr"),
                    Operator::EQ,
                    s(&format!("@{SET_NETS4}")),
                ),
                m(meta(MetaKey::Oifname), Operator::NEQ, bridges()),
                masquerade(),
            ],
        ),
        (
            "postrouting",
            vec![
                m(
                    payload("ip6", "saddr"),
                    Operator::EQ,
                    s(&format!("@{SET_NETS6}")),
                ),
                m(meta(MetaKey::Oifname), Operator::NEQ, bridges()),
                masquerade(),
            ],
        ),
    ]
}

/// `meta nfproto F dnat F to KEY map @addr : KEY map @port`, KEY being `l4proto . th dport`
/// (with `daddr .` in front for the maps of bindings on one host address).
fn dnat(
    family: NATFamily,
    nfproto: &'static str,
    maps: &DnatMaps,
    on_host_addr: bool,
) -> Vec<Statement<'static>> {
    let ip = if nfproto == "ipv4" { "ip" } else { "ip6" };
    let key = || {
        let mut k = vec![meta(MetaKey::L4proto), payload("th", "dport")];
        if on_host_addr {
            k.insert(0, payload(ip, "daddr"));
        }
        concat_expr(k)
    };
    let (a, p) = if on_host_addr {
        (maps.host_addr, maps.host_port)
    } else {
        (maps.any_addr, maps.any_port)
    };
    let lookup = |map: &str| {
        Expression::Named(NamedExpression::Map(Box::new(MapExpr {
            key: key(),
            data: s(&format!("@{map}")),
        })))
    };
    vec![
        m(meta(MetaKey::Nfproto), Operator::EQ, s(nfproto)),
        Statement::DNAT(Some(NAT {
            addr: Some(lookup(a)),
            family: Some(family),
            port: Some(lookup(p)),
            flags: None,
        })),
    ]
}

/// Set elements of one network: its bridge, its `bridge . bridge` pair, its subnets.
pub fn network_elements(t: &str, net: &Network) -> Vec<NfListObject<'static>> {
    let br = || s(&net.bridge);
    let mut out = vec![
        element(t, SET_BRIDGES, vec![br()]),
        element(t, SET_INTRA, vec![concat_expr(vec![br(), br()])]),
    ];
    if let Some(n) = net.subnet4 {
        out.push(element(
            t,
            SET_NETS4,
            vec![prefix(&n.trunc().addr().to_string(), n.prefix_len().into())],
        ));
    }
    if let Some(n) = net.subnet6 {
        out.push(element(
            t,
            SET_NETS6,
            vec![prefix(&n.trunc().addr().to_string(), n.prefix_len().into())],
        ));
    }
    out
}

/// Map elements of some published ports: for each, the key in the address map and the same key
/// in the port map. With `with_data: false`, only the keys (what `delete element` takes).
pub fn port_elements(t: &str, ports: &[PortBinding]) -> Vec<NfListObject<'static>> {
    port_elements_with(t, ports, true)
}

pub fn port_keys(t: &str, ports: &[PortBinding]) -> Vec<NfListObject<'static>> {
    port_elements_with(t, ports, false)
}

fn port_elements_with(
    t: &str,
    ports: &[PortBinding],
    with_data: bool,
) -> Vec<NfListObject<'static>> {
    let mut by_map: Vec<(&'static str, Vec<Expression<'static>>)> = Vec::new();
    let mut push = |map: &'static str, e: Expression<'static>| match by_map
        .iter_mut()
        .find(|(n, _)| *n == map)
    {
        Some((_, v)) => v.push(e),
        None => by_map.push((map, vec![e])),
    };
    for p in ports {
        let maps = if p.addr.is_ipv6() { &DNAT6 } else { &DNAT4 };
        let mut key = vec![s(p.proto.as_str()), Expression::Number(p.host_port.into())];
        let (a, pm) = match p.host_ip {
            Some(h) => {
                key.insert(0, s(&h.to_string()));
                (maps.host_addr, maps.host_port)
            }
            None => (maps.any_addr, maps.any_port),
        };
        let key = concat_expr(key);
        if with_data {
            push(a, pair(key.clone(), s(&p.addr.to_string())));
            push(pm, pair(key, Expression::Number(p.port.into())));
        } else {
            push(a, key.clone());
            push(pm, key);
        }
    }
    by_map
        .into_iter()
        .map(|(name, elems)| element(t, name, elems))
        .collect()
}

/// A map element `key : data` as nft's JSON writes it (a two-item array).
fn pair(key: Expression<'static>, data: Expression<'static>) -> Expression<'static> {
    Expression::List(vec![key, data])
}

fn element(t: &str, set: &'static str, elem: Vec<Expression<'static>>) -> NfListObject<'static> {
    NfListObject::Element(Element {
        family: FAMILY,
        table: t.to_string().into(),
        name: set.into(),
        elem: elem.into(),
    })
}

fn s(v: &str) -> Expression<'static> {
    Expression::String(Cow::Owned(v.to_string()))
}

fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

fn payload(protocol: &'static str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: protocol.into(),
            field: field.into(),
        },
    )))
}

fn ct(key: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::CT(CT {
        key: key.into(),
        family: None,
        dir: None,
    }))
}

fn prefix(addr: &str, len: u32) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(s(addr)),
        len,
    }))
}

fn concat_expr(v: Vec<Expression<'static>>) -> Expression<'static> {
    Expression::Named(NamedExpression::Concat(v))
}

fn fib_daddr_type() -> Expression<'static> {
    Expression::Named(NamedExpression::Fib(Fib {
        result: FibResult::Type,
        flags: HashSet::from([FibFlag::Daddr]),
    }))
}

fn m(left: Expression<'static>, op: Operator, right: Expression<'static>) -> Statement<'static> {
    Statement::Match(Match { left, right, op })
}

fn accept() -> Statement<'static> {
    Statement::Accept(None)
}

fn drop() -> Statement<'static> {
    Statement::Drop(None)
}

fn masquerade() -> Statement<'static> {
    Statement::Masquerade(None)
}

fn jump(target: &'static str) -> Statement<'static> {
    Statement::Jump(nftables::stmt::JumpTarget {
        target: target.into(),
    })
}
