//! rbuild pull against a tiny fake registry the test runs on 127.0.0.1: token (Bearer)
//! authentication through its own token endpoint, a layer already in the store not fetched
//! again, and hostile answers refused in one line with nothing stored: a blob with the wrong
//! digest, a truncated blob, a manifest that is too large, a redirect loop, a manifest that is
//! not the digest pinned or announced.

mod rbuild_common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rbox_tests::{require_root, Scratch};
use rbuild_common::*;

const TOKEN: &str = "fake-token-1";
/// base64("tester:pw")
const BASIC: &str = "Basic dGVzdGVyOnB3";

/// The image the fake serves: one small layer.
struct Image {
    layer: Vec<u8>,
    config: Vec<u8>,
    manifest: Vec<u8>,
}

fn digest(b: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(b))
}

impl Image {
    fn new() -> Image {
        let mut t = RawTar::new();
        t.dir(b"etc/");
        t.file(b"etc/hello", b"hello from the fake registry\n");
        let tar = t.finish();
        let layer = gzip(&tar);
        let config = serde_json::to_vec(&serde_json::json!({"architecture": "amd64", "os": "linux",
            "config": {"Cmd": ["/bin/sh"]}, "rootfs": {"type": "layers", "diff_ids": [digest(&tar)]}}))
        .unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest(&layer), "size": layer.len()}]}))
        .unwrap();
        Image {
            layer,
            config,
            manifest,
        }
    }
}

struct Fake {
    port: u16,
    layer_gets: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

struct Req {
    method: String,
    path: String,
    headers: HashMap<String, String>,
}

fn read_request(c: &mut TcpStream) -> Option<Req> {
    let mut buf = Vec::new();
    let mut b = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = c.read(&mut b).ok()?;
        if n == 0 {
            return None;
        }
        if buf.is_empty() && b[0] == 0x16 {
            return None; // a TLS handshake: this fake speaks plain HTTP only
        }
        buf.extend_from_slice(&b[..n]);
        if buf.len() > 64 << 10 {
            return None;
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(Req {
        method,
        path,
        headers,
    })
}

fn respond(c: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut h = format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str("\r\n");
    let _ = c.write_all(h.as_bytes()).and_then(|_| c.write_all(body));
}

impl Fake {
    fn start() -> Fake {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let layer_gets = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (gets, st) = (layer_gets.clone(), stop.clone());
        let img = Arc::new(Image::new());
        let thread = std::thread::spawn(move || {
            for _ in 0..500 {
                let Ok((mut c, _)) = l.accept() else { break };
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let (img, gets) = (img.clone(), gets.clone());
                std::thread::spawn(move || {
                    let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
                    if let Some(r) = read_request(&mut c) {
                        serve(&mut c, &r, &img, &gets, port);
                    }
                    let _ = c.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Fake {
            port,
            layer_gets,
            stop,
            thread: Some(thread),
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Routes: `/token` (Basic tester:pw gives a token), then every `/v2/` path needs the token.
/// The repository's first component picks the behaviour.
fn serve(c: &mut TcpStream, r: &Req, img: &Image, gets: &AtomicUsize, port: u16) {
    let auth = r.headers.get("authorization").cloned().unwrap_or_default();
    if r.path.starts_with("/token") {
        if auth == BASIC && r.path.contains("scope=repository%3A") {
            return respond(
                c,
                "200 OK",
                &[],
                format!("{{\"token\":\"{TOKEN}\"}}").as_bytes(),
            );
        }
        return respond(c, "401 Unauthorized", &[], b"{}");
    }
    if auth != format!("Bearer {TOKEN}") {
        let ch = format!("Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"fake\"");
        return respond(
            c,
            "401 Unauthorized",
            &[("WWW-Authenticate", ch)],
            b"{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"token\"}]}",
        );
    }
    if r.path == "/v2/" {
        return respond(c, "200 OK", &[], b"{}");
    }
    let kind = r
        .path
        .trim_start_matches("/v2/")
        .split('/')
        .next()
        .unwrap_or("")
        .to_string();
    let manifest = |c: &mut TcpStream, body: &[u8], announce: String| {
        respond(
            c,
            "200 OK",
            &[
                (
                    "Content-Type",
                    "application/vnd.oci.image.manifest.v1+json".into(),
                ),
                ("Docker-Content-Digest", announce),
            ],
            body,
        )
    };
    if r.path.contains("/manifests/") {
        return match kind.as_str() {
            "bigmanifest" => {
                // no Content-Length: the body is as long as the connection lasts
                let head = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n\r\n{\"schemaVersion\":2,\"pad\":\"";
                let _ = c.write_all(head.as_bytes());
                let chunk = vec![b'a'; 64 << 10];
                for _ in 0..(8 << 20) / chunk.len() {
                    if c.write_all(&chunk).is_err() {
                        break;
                    }
                }
            }
            "badpin" => manifest(
                c,
                &img.manifest[..img.manifest.len() - 1]
                    .iter()
                    .chain(b" }")
                    .copied()
                    .collect::<Vec<_>>(),
                digest(&img.manifest),
            ),
            "badannounce" => manifest(c, &img.manifest, format!("sha256:{}", "0".repeat(64))),
            _ => manifest(c, &img.manifest, digest(&img.manifest)),
        };
    }
    let want = r
        .path
        .rsplit('/')
        .next()
        .unwrap_or("")
        .split('?')
        .next()
        .unwrap_or("");
    if r.method == "GET" && want == digest(&img.config) {
        return respond(c, "200 OK", &[], &img.config);
    }
    if r.method == "GET" && want == digest(&img.layer) {
        gets.fetch_add(1, Ordering::SeqCst);
        return match kind.as_str() {
            "wrongdigest" => {
                let mut b = img.layer.clone();
                let mid = b.len() / 2;
                b[mid] ^= 0x40;
                respond(c, "200 OK", &[], &b)
            }
            "truncated" => {
                let h = format!(
                    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
                    img.layer.len()
                );
                let _ = c
                    .write_all(h.as_bytes())
                    .and_then(|_| c.write_all(&img.layer[..img.layer.len() / 2]));
            }
            "redirect" => respond(
                c,
                "307 Temporary Redirect",
                &[("Location", r.path.clone())],
                b"",
            ),
            _ => respond(c, "200 OK", &[], &img.layer),
        };
    }
    respond(
        c,
        "404 Not Found",
        &[],
        b"{\"errors\":[{\"code\":\"BLOB_UNKNOWN\",\"message\":\"unknown\"}]}",
    )
}

fn pull(root: &Path, home: &Path, args: &[&str]) -> Output {
    let mut c = rbuild_command(root, &[&["pull"][..], args].concat());
    c.env("HOME", home)
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("DOCKER_CONFIG");
    output_within(c, Duration::from_secs(120))
}

fn refused(o: &Output, phrases: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "want a refusal: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(o.stdout.is_empty());
    for p in phrases {
        assert!(err.contains(p), "stderr should say {p:?}: {err}");
    }
}

fn assert_nothing_stored(root: &Path) {
    for d in ["layers", "images"] {
        let n = std::fs::read_dir(root.join(d))
            .map(|r| r.count())
            .unwrap_or(0);
        assert_eq!(n, 0, "nothing in {d}/");
    }
    if root.join("tmp").exists() {
        assert_tmp_empty(root);
    }
}

#[test]
fn token_auth_pulls_and_a_layer_already_stored_is_not_fetched_again() {
    require_root();
    let s = Scratch::new("fake-tok");
    let fake = Fake::start();
    let h = fake.host();
    let img = Image::new();
    let (root, home) = (s.join("store"), s.join("home"));
    // no credentials: the token server says no, and rbuild says how to log in
    refused(
        &pull(&root, &home, &[&format!("{h}/good/app:1")]),
        &[&format!("rbuild login {h}")],
    );
    refused(
        &pull(
            &root,
            &home,
            &[&format!("{h}/good/app:1"), "--creds", "tester:nope"],
        ),
        &["refused the credentials"],
    );
    let id = ok_line(&pull(
        &root,
        &home,
        &[&format!("{h}/good/app:1"), "--creds", "tester:pw"],
    ));
    assert_eq!(id, digest(&img.config));
    assert_eq!(fake.layer_gets.load(Ordering::SeqCst), 1);
    // credentials from auth.json this time; the layer is in the store: not fetched again
    let auth = home.join("run/containers/auth.json");
    std::fs::create_dir_all(auth.parent().unwrap()).unwrap();
    std::fs::write(
        &auth,
        format!("{{\"auths\":{{\"{h}\":{{\"auth\":\"dGVzdGVyOnB3\"}}}}}}"),
    )
    .unwrap();
    assert_eq!(
        ok_line(&pull(&root, &home, &[&format!("{h}/good/app:2")])),
        id
    );
    assert_eq!(
        fake.layer_gets.load(Ordering::SeqCst),
        1,
        "the stored layer was fetched again"
    );
    let hello = std::fs::read_to_string(
        rootfs(
            &root,
            ok_line(&rbuild(&root, &["layer", "ls", "-q"])).trim(),
        )
        .join("etc/hello"),
    )
    .unwrap();
    assert_eq!(hello, "hello from the fake registry\n");
}

#[test]
fn hostile_answers_are_refused_in_one_line_and_nothing_is_stored() {
    require_root();
    let s = Scratch::new("fake-bad");
    let fake = Fake::start();
    let h = fake.host();
    let img = Image::new();
    let home = s.join("home");
    let ld = digest(&img.layer);
    let md = digest(&img.manifest);
    let cases: Vec<(String, Vec<String>)> = vec![
        (
            format!("{h}/wrongdigest/app:1"),
            vec![ld.clone(), "corrupt".into()],
        ),
        (
            format!("{h}/truncated/app:1"),
            vec![ld.clone(), "truncated".into()],
        ),
        (
            format!("{h}/bigmanifest/app:1"),
            vec!["larger than 4194304 bytes".into()],
        ),
        (format!("{h}/redirect/app:1"), vec!["redirect loop".into()]),
        (
            format!("{h}/badpin/app@{md}"),
            vec![md.clone(), "corrupt".into()],
        ),
        (
            format!("{h}/badannounce/app:1"),
            vec!["announced digest".into()],
        ),
    ];
    for (i, (reference, phrases)) in cases.iter().enumerate() {
        let root = s.join(format!("store{i}"));
        let o = pull(&root, &home, &[reference, "--creds", "tester:pw"]);
        refused(&o, &phrases.iter().map(String::as_str).collect::<Vec<_>>());
        assert_nothing_stored(&root);
    }
}
