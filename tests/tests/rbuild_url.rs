//! rbuild layer add from http:// URLs served by a server the test starts on 127.0.0.1:
//! streaming import with checksum checks, no second download of a blob already stored,
//! nothing left behind by a wrong checksum, an HTTP error or a download cut off mid-body, and
//! an idle (per-read) timeout instead of a deadline on the whole body.

mod rbuild_common;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rbox_tests::{require_root, Scratch};
use rbuild_common::*;

/// A tiny HTTP/1.1 server on 127.0.0.1 (loopback only): `/layer.tar.gz` whole, `/cut.tar.gz`
/// announced whole but closed half way, `/slow.tar.gz` whole in ten pieces 0.4 s apart,
/// `/stall.tar.gz` half of it and then silence (until the test ends), anything else 404.
struct Server {
    port: u16,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(body: Vec<u8>) -> Server {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, st) = (hits.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for _ in 0..64 {
                let Ok((mut c, _)) = l.accept() else { break };
                if st.load(Ordering::SeqCst) {
                    break;
                }
                h.fetch_add(1, Ordering::SeqCst);
                let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
                let mut req = Vec::new();
                let mut b = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut b) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&b[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&req)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string();
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let head = |len: usize| {
                    format!("HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
                };
                let _ = match path.as_str() {
                    "/layer.tar.gz" => c.write_all(head(body.len()).as_bytes()).and_then(|_| c.write_all(&body)),
                    "/cut.tar.gz" => c.write_all(head(body.len()).as_bytes()).and_then(|_| c.write_all(&body[..body.len() / 2])),
                    "/slow.tar.gz" => c.write_all(head(body.len()).as_bytes()).and_then(|_| {
                        for piece in body.chunks(body.len().div_ceil(10)) {
                            std::thread::sleep(Duration::from_millis(400));
                            c.write_all(piece)?;
                            c.flush()?;
                        }
                        Ok(())
                    }),
                    "/stall.tar.gz" => c.write_all(head(body.len()).as_bytes()).and_then(|_| {
                        c.write_all(&body[..body.len() / 2])?;
                        c.flush()?;
                        for _ in 0..600 {
                            if st.load(Ordering::SeqCst) {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        Ok(())
                    }),
                    _ => c.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found"),
                };
                let _ = c.flush();
                let _ = c.shutdown(std::net::Shutdown::Both);
            }
        });
        Server {
            port,
            hits,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wake accept()
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Lab {
    _s: Scratch,
    root: PathBuf,
    tar: Vec<u8>,
    gz: Vec<u8>,
    server: Server,
}

impl Lab {
    fn new() -> Lab {
        require_root();
        let s = Scratch::new("rbu");
        let root = s.join("store");
        let mut t = RawTar::new();
        for i in 0..50 {
            t.file(
                format!("usr/share/f{i}").as_bytes(),
                &(0..20_000u32)
                    .map(|j| ((j * 31 + i) % 251) as u8)
                    .collect::<Vec<_>>(),
            );
        }
        let tar = t.finish();
        let gz = gzip(&tar);
        // an existing store (with a layer from a file: a listing would not make one)
        let seed = s.join("seed.tar");
        std::fs::write(&seed, RawTar::new().file(b"seed", b"seed").finish()).unwrap();
        ok_line(&rbuild(&root, &["layer", "add", seed.to_str().unwrap()]));
        let server = Server::start(gz.clone());
        Lab {
            _s: s,
            root,
            tar,
            gz,
            server,
        }
    }
}

#[test]
fn layer_add_imports_a_url_and_checks_its_sha256() {
    let lab = Lab::new();
    let sum = sha256_hex(&lab.gz);
    let id = ok_line(&rbuild(
        &lab.root,
        &[
            "layer",
            "add",
            &lab.server.url("/layer.tar.gz"),
            "--sha256",
            &sum,
        ],
    ));
    assert_eq!(id, format!("sha256:{}", sha256_hex(&lab.tar)));
    assert_eq!(lab.server.hits(), 1);
    let ls = stdout(&rbuild(&lab.root, &["layer", "ls"]));
    assert!(
        ls.contains(&lab.server.url("/layer.tar.gz")),
        "the URL is the source: {ls}"
    );
    assert_eq!(
        fs::read(rootfs(&lab.root, &id).join("usr/share/f3"))
            .unwrap()
            .len(),
        20_000
    );
}

#[test]
fn layer_add_does_not_download_a_blob_already_stored() {
    let lab = Lab::new();
    let sum = sha256_hex(&lab.gz);
    let sum512 = {
        use sha2::Digest;
        sha2::Sha512::digest(&lab.gz)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let url = lab.server.url("/layer.tar.gz");
    let id = ok_line(&rbuild(
        &lab.root,
        &["layer", "add", &url, "--sha256", &sum, "--sha512", &sum512],
    ));
    assert_eq!(lab.server.hits(), 1);
    assert_eq!(
        ok_line(&rbuild(
            &lab.root,
            &["layer", "add", &url, "--sha256", &sum]
        )),
        id
    );
    assert_eq!(
        ok_line(&rbuild(
            &lab.root,
            &["layer", "add", &url, "--sha512", &sum512]
        )),
        id
    );
    assert_eq!(
        lab.server.hits(),
        1,
        "the blob was known: no second download"
    );
    // without a checksum there is nothing to recognise the blob by: it is fetched (and idempotent)
    assert_eq!(ok_line(&rbuild(&lab.root, &["layer", "add", &url])), id);
    assert_eq!(lab.server.hits(), 2);
}

#[test]
fn layer_add_leaves_nothing_after_an_interrupted_download() {
    let lab = Lab::new();
    let before = snapshot(&lab.root);
    let o = rbuild(&lab.root, &["layer", "add", &lab.server.url("/cut.tar.gz")]);
    assert_refused(&o, "reading the input");
    assert_eq!(lab.server.hits(), 1);
    assert_eq!(snapshot(&lab.root), before, "the store changed");
}

#[test]
fn layer_add_of_a_url_with_a_wrong_checksum_stores_nothing() {
    let lab = Lab::new();
    let before = snapshot(&lab.root);
    let o = rbuild(
        &lab.root,
        &[
            "layer",
            "add",
            &lab.server.url("/layer.tar.gz"),
            "--sha256",
            &"1".repeat(64),
        ],
    );
    assert_refused(&o, "sha256 mismatch");
    assert_eq!(snapshot(&lab.root), before, "the store changed");
}

#[test]
fn layer_add_reports_an_http_error() {
    let lab = Lab::new();
    let before = snapshot(&lab.root);
    let o = rbuild(
        &lab.root,
        &["layer", "add", &lab.server.url("/missing.tar.gz")],
    );
    assert_refused(&o, "download failed");
    assert!(stderr(&o).contains("404"), "{}", stderr(&o));
    assert_eq!(snapshot(&lab.root), before);
}

#[test]
fn layer_add_reports_a_refused_connection() {
    require_root();
    let s = Scratch::new("rbu");
    // a port nobody listens on: bind, learn the port, close
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = rbuild(
        &s.join("store"),
        &["layer", "add", &format!("http://127.0.0.1:{port}/x.tar.gz")],
    );
    assert_refused(&o, "download failed");
}

const IDLE: &str = "RBUILD_HTTP_IDLE_TIMEOUT";

#[test]
fn a_download_longer_than_the_idle_timeout_but_never_silent_succeeds() {
    let lab = Lab::new();
    let started = Instant::now();
    let o = rbuild_command(
        &lab.root,
        &["layer", "add", &lab.server.url("/slow.tar.gz")],
    )
    .env(IDLE, "1")
    .output()
    .unwrap();
    assert_eq!(ok_line(&o), format!("sha256:{}", sha256_hex(&lab.tar)));
    assert!(
        started.elapsed() > Duration::from_secs(3),
        "the body took longer than the idle timeout in total"
    );
}

#[test]
fn a_stalled_download_fails_after_the_idle_timeout_with_one_line() {
    let lab = Lab::new();
    let before = snapshot(&lab.root);
    let started = Instant::now();
    let mut c = rbuild_command(
        &lab.root,
        &["layer", "add", &lab.server.url("/stall.tar.gz")],
    );
    c.env(IDLE, "1");
    let o = output_within(c, Duration::from_secs(120));
    assert_refused(
        &o,
        "no data received for 1 s: the server stalled; try again later",
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "gave up after {:?}",
        started.elapsed()
    );
    assert_eq!(snapshot(&lab.root), before, "the store changed");
}

#[test]
fn rbuild_raises_its_open_file_soft_limit_to_the_hard_limit() {
    let lab = Lab::new();
    // started with a soft limit of 64 (hard limit unchanged), then kept waiting on a stalled server
    let mut c = std::process::Command::new("sh");
    c.arg("-c")
        .arg("ulimit -Sn 64; exec \"$0\" \"$@\"")
        .arg(rbox_tests::bin("rbuild"))
        .arg("--root")
        .arg(&lab.root);
    c.args(["layer", "add", &lab.server.url("/stall.tar.gz")])
        .env(IDLE, "30")
        .env_remove("RBOX_ROOT");
    let mut child = c
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while lab.server.hits() == 0 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let limits = fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or_else(|| panic!("{limits}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    let (soft, hard) = (f[3], f[4]);
    assert_eq!(soft, hard, "soft limit raised to the hard limit: {line}");
    assert_ne!(soft, "64", "{line}");
}
