//! The responder's runtime (tokio, one thread of its own) and its listeners: one UDP socket and
//! one TCP listener per gateway address, created with IP_FREEBIND in the calling thread's
//! network namespace. Limits keep a hostile client from starving the others: 512 queries in
//! flight, 64 TCP connections, 10 s per TCP read. Kernel interface: udp(7), tcp(7), ip(7).

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use rustix::net::sockopt::{
    set_ip_freebind, set_ipv6_freebind, set_ipv6_v6only, set_socket_reuseaddr,
};
use rustix::net::{bind, listen, socket_with, AddressFamily, SocketFlags, SocketType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::answer::{self, Verdict};
use super::{forward, Zones};

const MAX_IN_FLIGHT: usize = 512;
const MAX_TCP: usize = 64;
const TCP_IDLE: Duration = Duration::from_secs(10);

/// What a listener needs to answer: the zones, its network's name, the upstreams.
#[derive(Clone)]
pub struct Ctx {
    pub zones: Zones,
    pub network: String,
    pub upstreams: Arc<Vec<SocketAddr>>,
}

impl Ctx {
    /// The reply to query `q`, if any.
    async fn handle(&self, q: &[u8], tcp: bool) -> Option<Vec<u8>> {
        let verdict = {
            let zones = self.zones.read().unwrap_or_else(|p| p.into_inner());
            answer::answer(q, zones.get(&self.network))
        };
        match verdict {
            Verdict::Reply(b) => Some(b),
            Verdict::Ignore => None,
            Verdict::Forward => match forward::forward(q, &self.upstreams, tcp).await {
                Some(r) => Some(r),
                None => answer::servfail(q),
            },
        }
    }
}

/// The runtime's thread; dropping it stops every listener.
pub struct Runtime {
    handle: tokio::runtime::Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    limit: Arc<Semaphore>,
    tcp_limit: Arc<Semaphore>,
}

impl Runtime {
    pub fn start() -> io::Result<Runtime> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = rt.handle().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("netd-dns".into())
            .spawn(move || {
                rt.block_on(async {
                    let _ = rx.await;
                })
            })?;
        Ok(Runtime {
            handle,
            stop: Some(tx),
            thread: Some(thread),
            limit: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            tcp_limit: Arc::new(Semaphore::new(MAX_TCP)),
        })
    }

    /// Binds UDP and TCP on `addr` (here, in this thread's netns) and serves them.
    pub fn listen(&self, addr: SocketAddr, ctx: Ctx) -> io::Result<Listener> {
        let udp = std::net::UdpSocket::from(socket(addr, SocketType::DGRAM)?);
        let tcp_fd = socket(addr, SocketType::STREAM)?;
        listen(&tcp_fd, 128)?;
        let tcp = std::net::TcpListener::from(tcp_fd);
        let _guard = self.handle.enter();
        let udp = UdpSocket::from_std(udp)?;
        let tcp = TcpListener::from_std(tcp)?;
        let u = self
            .handle
            .spawn(serve_udp(udp, ctx.clone(), self.limit.clone()));
        let t = self.handle.spawn(serve_tcp(
            tcp,
            ctx,
            self.limit.clone(),
            self.tcp_limit.clone(),
        ));
        Ok(Listener { tasks: vec![u, t] })
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One address's listener tasks; dropping it closes both sockets.
pub struct Listener {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// A nonblocking, close-on-exec socket bound to `addr` with IP_FREEBIND (IPV6_V6ONLY too).
fn socket(addr: SocketAddr, ty: SocketType) -> io::Result<OwnedFd> {
    let family = if addr.is_ipv6() {
        AddressFamily::INET6
    } else {
        AddressFamily::INET
    };
    let fd = socket_with(
        family,
        ty,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?;
    if addr.is_ipv6() {
        set_ipv6_v6only(&fd, true)?;
        set_ipv6_freebind(&fd, true)?;
    } else {
        set_ip_freebind(&fd, true)?;
    }
    if ty == SocketType::STREAM {
        set_socket_reuseaddr(&fd, true)?;
    }
    bind(&fd, &addr)?;
    Ok(fd)
}

async fn serve_udp(sock: UdpSocket, ctx: Ctx, limit: Arc<Semaphore>) {
    let sock = Arc::new(sock);
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        // Too many in flight: drop the query, the client retries.
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            continue;
        };
        let q = buf[..n].to_vec();
        let (sock, ctx) = (sock.clone(), ctx.clone());
        tokio::spawn(async move {
            if let Some(r) = ctx.handle(&q, false).await {
                let _ = sock.send_to(&r, peer).await;
            }
            drop(permit);
        });
    }
}

async fn serve_tcp(l: TcpListener, ctx: Ctx, limit: Arc<Semaphore>, tcp_limit: Arc<Semaphore>) {
    loop {
        let Ok((s, _)) = l.accept().await else {
            continue;
        };
        let Ok(conn) = tcp_limit.clone().try_acquire_owned() else {
            continue;
        };
        let (ctx, limit) = (ctx.clone(), limit.clone());
        tokio::spawn(async move {
            let _ = tcp_conn(s, &ctx, &limit).await;
            drop(conn);
        });
    }
}

/// Queries on one connection, each `u16 length, message`, until EOF, an error or 10 s idle.
async fn tcp_conn(mut s: TcpStream, ctx: &Ctx, limit: &Semaphore) -> io::Result<()> {
    loop {
        let n = match timeout(TCP_IDLE, s.read_u16()).await {
            Ok(r) => r? as usize,
            Err(_) => return Ok(()),
        };
        let mut q = vec![0u8; n];
        timeout(TCP_IDLE, s.read_exact(&mut q))
            .await
            .map_err(|_| io::ErrorKind::TimedOut)??;
        let Ok(_permit) = limit.try_acquire() else {
            return Ok(());
        };
        let Some(r) = ctx.handle(&q, true).await else {
            return Ok(());
        };
        let mut out = (r.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(&r);
        timeout(TCP_IDLE, s.write_all(&out))
            .await
            .map_err(|_| io::ErrorKind::TimedOut)??;
    }
}
