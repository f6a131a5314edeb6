//! The answers netd gives itself: a query parsed with hickory-proto, looked up in one network's
//! zone, and the reply (authoritative A/AAAA, NODATA, NXDOMAIN, FORMERR, NOTIMP). No kernel
//! interface.

use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};

use super::Zone;

/// Seconds a container's record may be cached: short, addresses change on restart.
pub const TTL: u32 = 10;

/// What to do with one query.
#[derive(Debug)]
pub enum Verdict {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Not netd's name: relay the query to the upstreams.
    Forward,
    /// Not worth an answer (not a DNS query, or a response): drop it.
    Ignore,
}

/// Decides on the raw query `q` against `zone`.
pub fn answer(q: &[u8], zone: Option<&Zone>) -> Verdict {
    let msg = match Message::from_vec(q) {
        Ok(m) => m,
        Err(_) => return formerr(q),
    };
    if msg.metadata.message_type != MessageType::Query {
        return Verdict::Ignore;
    }
    if msg.metadata.op_code != OpCode::Query {
        return reply(&msg, ResponseCode::NotImp, Vec::new());
    }
    let [query] = msg.queries.as_slice() else {
        return reply(&msg, ResponseCode::FormErr, Vec::new());
    };
    if query.query_class() != DNSClass::IN {
        return Verdict::Forward;
    }
    let name = query.name().to_lowercase().to_ascii();
    let name = name.trim_end_matches('.');
    let Some(zone) = zone else {
        return Verdict::Forward;
    };
    let label = if !name.contains('.') && !name.is_empty() {
        name
    } else if let Some(l) = name
        .strip_suffix(&format!(".{}", zone.domain))
        .filter(|l| !l.contains('.') && !l.is_empty())
    {
        l
    } else if name == zone.domain {
        return reply(&msg, ResponseCode::NoError, Vec::new());
    } else {
        return Verdict::Forward;
    };
    let Some(addrs) = zone.records.get(label) else {
        return reply(&msg, ResponseCode::NXDomain, Vec::new());
    };
    let qtype = query.query_type();
    let records = addrs
        .iter()
        .filter_map(|a| match (a, qtype) {
            (IpAddr::V4(v4), RecordType::A | RecordType::ANY) => Some(RData::A(A(*v4))),
            (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => Some(RData::AAAA(AAAA(*v6))),
            _ => None,
        })
        .map(|r| Record::from_rdata(query.name().clone(), TTL, r))
        .collect();
    reply(&msg, ResponseCode::NoError, records)
}

fn reply(req: &Message, code: ResponseCode, answers: Vec<Record>) -> Verdict {
    let mut r = Message::new(req.metadata.id, MessageType::Response, req.metadata.op_code);
    r.metadata = Metadata::response_from_request(&req.metadata);
    r.metadata.authoritative = true;
    r.metadata.recursion_available = true;
    r.metadata.response_code = code;
    r.queries = req.queries.clone();
    r.answers = answers;
    if req.edns.is_some() {
        r.edns = Some(Edns::new());
    }
    match r.to_vec() {
        Ok(b) => Verdict::Reply(b),
        Err(_) => Verdict::Ignore,
    }
}

/// SERVFAIL for a query no upstream answered.
pub fn servfail(q: &[u8]) -> Option<Vec<u8>> {
    let msg = Message::from_vec(q).ok()?;
    match reply(&msg, ResponseCode::ServFail, Vec::new()) {
        Verdict::Reply(b) => Some(b),
        _ => None,
    }
}

/// FORMERR with the query's id when at least a header came; nothing otherwise.
fn formerr(q: &[u8]) -> Verdict {
    if q.len() < 12 || q[2] & 0x80 != 0 {
        return Verdict::Ignore;
    }
    let mut r = Message::new(
        u16::from_be_bytes([q[0], q[1]]),
        MessageType::Response,
        OpCode::Query,
    );
    r.metadata.response_code = ResponseCode::FormErr;
    r.to_vec().map_or(Verdict::Ignore, Verdict::Reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;

    fn zone() -> Zone {
        let mut z = Zone {
            domain: "mynet".into(),
            ..Zone::default()
        };
        z.records.insert(
            "web".into(),
            vec!["10.0.0.2".parse().unwrap(), "fd00::2".parse().unwrap()],
        );
        z.records
            .insert("v4only".into(), vec!["10.0.0.3".parse().unwrap()]);
        z
    }

    fn ask(name: &str, t: RecordType) -> Verdict {
        let mut m = Message::query();
        m.metadata.id = 77;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        answer(&m.to_vec().unwrap(), Some(&zone()))
    }

    fn parsed(v: Verdict) -> Message {
        match v {
            Verdict::Reply(b) => Message::from_vec(&b).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_aliases_nodata_nxdomain_and_forward() {
        let m = parsed(ask("web.", RecordType::A));
        assert_eq!(
            (m.metadata.id, m.metadata.response_code, m.answers.len()),
            (77, ResponseCode::NoError, 1)
        );
        assert!(m.metadata.authoritative);
        assert_eq!(parsed(ask("WEB.mynet.", RecordType::AAAA)).answers.len(), 1);
        let nodata = parsed(ask("v4only", RecordType::AAAA));
        assert_eq!(
            (nodata.metadata.response_code, nodata.answers.len()),
            (ResponseCode::NoError, 0)
        );
        assert_eq!(parsed(ask("web", RecordType::MX)).answers.len(), 0);
        assert_eq!(
            parsed(ask("nope", RecordType::A)).metadata.response_code,
            ResponseCode::NXDomain
        );
        assert_eq!(
            parsed(ask("nope.mynet", RecordType::A))
                .metadata
                .response_code,
            ResponseCode::NXDomain
        );
        assert!(matches!(
            ask("example.org.", RecordType::A),
            Verdict::Forward
        ));
        assert!(matches!(ask("a.b.mynet.", RecordType::A), Verdict::Forward));
    }

    #[test]
    fn garbage_gets_formerr_or_nothing() {
        assert!(matches!(answer(&[1, 2, 3], None), Verdict::Ignore));
        let mut junk = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        junk.extend_from_slice(&[0xc0, 0xff, 0xff]); // a compression pointer to nowhere
        let m = parsed(answer(&junk, None));
        assert_eq!(
            (m.metadata.id, m.metadata.response_code),
            (0x1234, ResponseCode::FormErr)
        );
        for len in 0..64 {
            let _ = answer(&vec![0xff; len], Some(&zone()));
        }
    }
}
