//! Relaying a query that is not netd's to the upstream resolvers, byte for byte: over UDP for
//! UDP clients (a fresh socket, so a fresh source port, per query), over TCP for TCP clients
//! (RFC 7766 two-byte length prefix). Kernel interface: udp(7), tcp(7).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

/// How long each upstream gets before the next is asked.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// The first upstream answer to `q` (whose id it must carry), or `None`.
pub async fn forward(q: &[u8], upstreams: &[SocketAddr], tcp: bool) -> Option<Vec<u8>> {
    for up in upstreams {
        let r = if tcp {
            timeout(UPSTREAM_TIMEOUT, via_tcp(q, *up)).await
        } else {
            timeout(UPSTREAM_TIMEOUT, via_udp(q, *up)).await
        };
        if let Ok(Some(r)) = r {
            return Some(r);
        }
    }
    None
}

async fn via_udp(q: &[u8], up: SocketAddr) -> Option<Vec<u8>> {
    let bind: SocketAddr = if up.is_ipv6() {
        "[::]:0".parse().ok()?
    } else {
        "0.0.0.0:0".parse().ok()?
    };
    let s = UdpSocket::bind(bind).await.ok()?;
    s.connect(up).await.ok()?;
    s.send(q).await.ok()?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = s.recv(&mut buf).await.ok()?;
        // A datagram with another id is not the answer (a late or forged one): keep waiting.
        if n >= 12 && buf[..2] == q[..2] {
            buf.truncate(n);
            return Some(buf);
        }
    }
}

async fn via_tcp(q: &[u8], up: SocketAddr) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect(up).await.ok()?;
    let len = u16::try_from(q.len()).ok()?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(q);
    s.write_all(&out).await.ok()?;
    let n = s.read_u16().await.ok()? as usize;
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).await.ok()?;
    (n >= 12 && buf[..2] == q[..2]).then_some(buf)
}
