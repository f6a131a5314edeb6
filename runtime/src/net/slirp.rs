//! `--net slirp4netns`: slirp4netns gives the container's network namespace a tap interface,
//! tap0, 10.0.2.100/24 behind a user-mode NAT (gateway 10.0.2.2, resolver 10.0.2.3), with no
//! privilege. rrun runs `slirp4netns --configure --mtu=65520 --disable-host-loopback
//! --api-socket S --ready-fd 3 [--userns-path /proc/PID/ns/user] PID tap0` (Podman's
//! options) in a session of its own once its child exists, waits for the "1" on the ready
//! descriptor, then publishes each `-p` through the API socket's `add_hostfwd` (one request
//! per connection, the write side shut down after it). The API socket lives in the
//! container's folder, named relative to slirp4netns's working directory (a socket path is
//! limited to 107 bytes) and reached through /proc/self/fd. Source: slirp4netns(1) 1.2.0.
//! Kernel interfaces: pipe2(2), poll(2), unix(7).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use netd_proto::{Proto, PublishedPort};
use rustix::event::{PollFd, PollFlags, Timespec};
use serde_json::{json, Value};

use crate::error::{user, Context, Result};
use crate::nethelper::Helper;

/// The container's address, gateway (the host) and resolver under slirp4netns's defaults.
pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 100);
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
pub const DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);

/// slirp4netns's log (stdout and stderr) and API socket in the container's folder.
const LOG: &str = "slirp4netns.log";
const SOCKET: &str = "slirp4netns.sock";

/// How long slirp4netns may take to configure the namespace.
const READY_SECS: u64 = 10;

/// A slirp4netns just started, not known to be ready yet.
pub struct Started {
    pub helper: Helper,
    child: Child,
    ready: OwnedFd,
}

/// Starts slirp4netns for the network namespace of process `pid` (`userns`: entering its user
/// namespace first); the caller records [`Started::helper`] before [`wait_ready`].
pub fn spawn(pid: i32, userns: bool, dir: &Path) -> Result<Started> {
    let log_path = dir.join(LOG);
    let log = std::fs::File::create(&log_path).ctx(|| format!("create {}", log_path.display()))?;
    let log2 = log
        .try_clone()
        .ctx(|| format!("dup {}", log_path.display()))?;
    let _ = std::fs::remove_file(dir.join(SOCKET));
    let (ready, ready_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .ctx(|| "pipe for slirp4netns's ready descriptor".into())?;
    let mut cmd = Command::new("slirp4netns");
    cmd.args([
        "--configure",
        "--mtu=65520",
        "--disable-host-loopback",
        "--api-socket",
        SOCKET,
        "--ready-fd=3",
    ]);
    if userns {
        cmd.arg(format!("--userns-path=/proc/{pid}/ns/user"));
    }
    cmd.arg(pid.to_string()).arg("tap0");
    cmd.current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    let child = crate::sys::process::spawn_in_new_session(&mut cmd, &[(ready_w.as_raw_fd(), 3)])
        .map_err(|e| crate::nethelper::spawn_error("slirp4netns", "slirp4netns", e))?;
    drop(ready_w);
    let helper = Helper::of("slirp4netns", child.id() as i32).ok_or_else(|| {
        user(format!(
            "--net slirp4netns: slirp4netns ended at once (its log: {})",
            log_path.display()
        ))
    })?;
    Ok(Started {
        helper,
        child,
        ready,
    })
}

/// Waits until slirp4netns reports the namespace configured and its API socket open (at most
/// 10 s), then publishes `ports`.
pub fn wait_ready(mut s: Started, dir: &Path, ports: &[PublishedPort]) -> Result<()> {
    let log_path = dir.join(LOG);
    let failed = |why: String| {
        user(format!(
            "--net slirp4netns: {why} (its log: {})",
            log_path.display()
        ))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(READY_SECS);
    loop {
        let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) else {
            return Err(failed(format!(
                "slirp4netns was not ready after {READY_SECS} s"
            )));
        };
        let mut fds = [PollFd::new(&s.ready, PollFlags::IN)];
        let t = Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos() as i64,
        };
        match rustix::event::poll(&mut fds, Some(&t)) {
            Err(rustix::io::Errno::INTR) | Ok(0) => continue,
            Err(e) => return Err(e).ctx(|| "poll slirp4netns's ready descriptor".into()),
            Ok(_) => break,
        }
    }
    let mut buf = [0u8; 1];
    let n = rustix::io::read(s.ready.as_fd(), &mut buf).unwrap_or(0);
    if n != 1 || buf[0] != b'1' {
        // It closed the descriptor without "1": it failed and exits.
        let _ = s.child.wait();
        return Err(failed(format!(
            "slirp4netns failed: {}",
            crate::nethelper::last_line(&log_path)
        )));
    }
    for p in ports {
        add_hostfwd(dir, p).map_err(&failed)?;
    }
    Ok(())
}

/// One `add_hostfwd` request on the API socket in `dir`.
fn add_hostfwd(dir: &Path, p: &PublishedPort) -> std::result::Result<(), String> {
    let host_addr = match p.host_ip {
        None => "0.0.0.0".to_string(),
        Some(IpAddr::V4(ip)) => ip.to_string(),
        Some(IpAddr::V6(_)) => return Err("slirp4netns publishes on IPv4 addresses only".into()),
    };
    let req = json!({
        "execute": "add_hostfwd",
        "arguments": {
            "proto": if p.proto == Proto::Udp { "udp" } else { "tcp" },
            "host_addr": host_addr,
            "host_port": p.host_port,
            "guest_port": p.port,
        }
    });
    let what = format!("-p {host_addr}:{}:{}/{}", p.host_port, p.port, p.proto);
    let d = std::fs::File::open(dir).map_err(|e| format!("open {}: {e}", dir.display()))?;
    let path = format!("/proc/self/fd/{}/{SOCKET}", d.as_raw_fd());
    let mut sock = UnixStream::connect(&path)
        .map_err(|e| format!("{what}: connect to slirp4netns's API socket: {e}"))?;
    let io = |e: std::io::Error| format!("{what}: slirp4netns's API socket: {e}");
    sock.set_read_timeout(Some(std::time::Duration::from_secs(READY_SECS)))
        .map_err(io)?;
    sock.write_all(req.to_string().as_bytes()).map_err(io)?;
    sock.shutdown(std::net::Shutdown::Write).map_err(io)?;
    let mut answer = Vec::new();
    sock.take(64 * 1024).read_to_end(&mut answer).map_err(io)?;
    let v: Value = serde_json::from_slice(&answer).map_err(|_| {
        format!(
            "{what}: slirp4netns answered {:?}",
            String::from_utf8_lossy(&answer)
        )
    })?;
    match v.get("error") {
        None => Ok(()),
        Some(e) => Err(format!(
            "{what}: slirp4netns refused it: {}",
            e.get("desc")
                .and_then(Value::as_str)
                .unwrap_or("no reason given")
        )),
    }
}

/// The resolvers of a slirp4netns container's /etc/resolv.conf.
pub fn dns() -> Vec<IpAddr> {
    vec![IpAddr::V4(DNS)]
}
