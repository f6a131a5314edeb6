//! Helpers for the OCI and registry tests: the peer tools (skopeo, umoci, podman with a
//! private storage, Debian's docker-registry on loopback), an Alpine layout made by umoci, and
//! an image made by rbuild in a scratch store.
#![allow(dead_code)]

use std::fs;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rbox_tests::{alpine_fixture, unique, Scratch};

use crate::rbuild_common::{ok_line, output_within, rbuild, sha256_hex, stderr};

/// A peer tool's command with a clean environment: no proxies, a C locale, UTC, its
/// temporary files under `tmp`.
pub fn tool(name: &str, tmp: &Path) -> Command {
    let mut c = Command::new(name);
    for k in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "all_proxy",
    ] {
        c.env_remove(k);
    }
    c.env("LC_ALL", "C").env("TZ", "UTC").env("TMPDIR", tmp);
    c
}

/// Runs `c` (at most 5 minutes) and asserts success; returns stdout.
pub fn run_ok(c: Command) -> String {
    let what = format!("{c:?}");
    let o = output_within(c, Duration::from_secs(300));
    assert!(
        o.status.success(),
        "{what} failed: {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn run(c: Command) -> Output {
    output_within(c, Duration::from_secs(300))
}

/// `skopeo --insecure-policy ARGS` (the policy is not what these tests are about).
pub fn skopeo(tmp: &Path, args: &[&str]) -> Command {
    let mut c = tool("skopeo", tmp);
    c.arg("--insecure-policy").args(args);
    c
}

pub fn umoci(tmp: &Path, args: &[&str]) -> Command {
    let mut c = tool("umoci", tmp);
    c.args(args);
    c
}

/// The sha256 of the config skopeo reads from `transport_ref` (`oci:DIR:NAME`, ...): the
/// ImageID other tools report.
pub fn skopeo_config_digest(tmp: &Path, transport_ref: &str, extra: &[&str]) -> String {
    let mut args = vec!["inspect", "--config", "--raw"];
    args.extend_from_slice(extra);
    args.push(transport_ref);
    let mut c = tool("skopeo", tmp);
    c.args(&args);
    let o = run(c);
    assert!(
        o.status.success(),
        "skopeo inspect {transport_ref}: {}",
        stderr(&o)
    );
    format!("sha256:{}", sha256_hex(&o.stdout))
}

/// podman with a storage of its own (vfs, under a scratch folder), as these machines need it:
/// runc, cgroupfs, a file event log, and limits within this process's hard limits.
pub struct Podman {
    pub dir: Scratch,
}

impl Podman {
    pub fn new() -> Podman {
        Podman {
            dir: Scratch::new("podman"),
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = tool("podman", self.dir.path());
        c.arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("run"))
            .args([
                "--storage-driver",
                "vfs",
                "--runtime",
                "runc",
                "--cgroup-manager=cgroupfs",
                "--events-backend",
                "file",
            ])
            .args(args);
        c
    }

    /// `podman run --rm --network none` with limits within the hard ones, then ARGS.
    pub fn run_args(&self) -> Vec<String> {
        use rustix::process::{getrlimit, Resource};
        let lim = |r| getrlimit(r).maximum.unwrap_or(u64::MAX).min(1024);
        vec![
            "run".into(),
            "--rm".into(),
            "--network".into(),
            "none".into(),
            "--ulimit".into(),
            format!("nofile={0}:{0}", lim(Resource::Nofile)),
            "--ulimit".into(),
            format!("nproc={0}:{0}", lim(Resource::Nproc)),
        ]
    }

    /// The full id podman gives `image`.
    pub fn image_id(&self, image: &str) -> String {
        let out = run_ok(self.cmd(&["image", "inspect", "--format", "{{.Id}}", image]));
        format!("sha256:{}", out.trim().trim_start_matches("sha256:"))
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = run(self.cmd(&["rm", "-af", "-t", "0"]));
        let _ = run(self.cmd(&["rmi", "-af"]));
    }
}

/// The Alpine 3.15 fixture as an uncompressed tar in `dir`.
pub fn alpine_tar(dir: &Path) -> PathBuf {
    let mut gz = flate2::read::GzDecoder::new(fs::File::open(alpine_fixture("3.15.11")).unwrap());
    let mut tar = Vec::new();
    gz.read_to_end(&mut tar).unwrap();
    let p = dir.join("alpine-3.15.tar");
    fs::write(&p, tar).unwrap();
    p
}

/// An OCI layout made by umoci from the Alpine fixture: `DIR:base` (one gzip layer, cmd
/// /bin/sh).
pub fn umoci_alpine_layout(s: &Scratch) -> PathBuf {
    let layout = s.join("umoci-layout");
    let l = layout.to_str().unwrap().to_string();
    let tar = alpine_tar(s.path());
    run_ok(umoci(s.path(), &["init", "--layout", &l]));
    run_ok(umoci(s.path(), &["new", "--image", &format!("{l}:base")]));
    run_ok(umoci(
        s.path(),
        &[
            "raw",
            "add-layer",
            "--image",
            &format!("{l}:base"),
            tar.to_str().unwrap(),
        ],
    ));
    run_ok(umoci(
        s.path(),
        &[
            "config",
            "--image",
            &format!("{l}:base"),
            "--config.cmd",
            "/bin/sh",
        ],
    ));
    layout
}

/// `rbuild layer add` of the Alpine fixture and `image create` tagged `tag`; the ImageID.
pub fn rbuild_alpine_image(root: &Path, tag: &str) -> String {
    let f = alpine_fixture("3.15.11");
    let l = ok_line(&rbuild(root, &["layer", "add", f.to_str().unwrap()]));
    ok_line(&rbuild(
        root,
        &["image", "create", &l, "--tag", tag, "--cmd", "/bin/sh"],
    ))
}

/// A TCP port on 127.0.0.1 free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Debian's docker-registry on 127.0.0.1 with its own config, port and storage folder;
/// killed (by its pid) when dropped.
pub struct Registry {
    pub port: u16,
    child: Child,
    pub dir: Scratch,
}

/// TLS and Basic-auth settings of a [`Registry`].
#[derive(Default)]
pub struct RegistryOpts {
    /// (certificate, key) PEM files
    pub tls: Option<(PathBuf, PathBuf)>,
    /// an htpasswd file
    pub htpasswd: Option<PathBuf>,
}

impl Registry {
    pub fn start(o: &RegistryOpts) -> Registry {
        for _ in 0..5 {
            if let Some(r) = Self::try_start(o) {
                return r;
            }
        }
        panic!("docker-registry did not start on loopback");
    }

    fn try_start(o: &RegistryOpts) -> Option<Registry> {
        let dir = Scratch::new("registry");
        let port = free_port();
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: {}\n",
            dir.join("data").display(),
            unique("s")
        );
        if let Some((cert, key)) = &o.tls {
            cfg.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
        }
        if let Some(h) = &o.htpasswd {
            cfg.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: rbox-test\n    path: {}\n",
                h.display()
            ));
        }
        let cfg_path = dir.join("config.yml");
        fs::write(&cfg_path, cfg).unwrap();
        let child = tool("docker-registry", dir.path())
            .arg("serve")
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("log")).unwrap())
            .spawn()
            .expect("start docker-registry (apt-get install docker-registry)");
        let mut r = Registry { port, child, dir };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = r.child.try_wait() {
                return None; // the port was taken meanwhile: try another
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(r);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = r.child.kill();
        None
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test CA and a server certificate for 127.0.0.1 and localhost, made with openssl:
/// `(ca.crt, server.crt, server.key)` in `dir`.
pub fn test_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let d = |n: &str| dir.join(n).to_str().unwrap().to_string();
    let ossl = |args: &[&str]| {
        let mut c = tool("openssl", dir);
        c.args(args);
        run_ok(c);
    };
    ossl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=rbox test CA",
        "-keyout",
        &d("ca.key"),
        "-out",
        &d("ca.crt"),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    ossl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &d("server.key"),
        "-out",
        &d("server.csr"),
    ]);
    fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    ossl(&[
        "x509",
        "-req",
        "-in",
        &d("server.csr"),
        "-CA",
        &d("ca.crt"),
        "-CAkey",
        &d("ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &d("ext.cnf"),
        "-out",
        &d("server.crt"),
    ]);
    (
        dir.join("ca.crt"),
        dir.join("server.crt"),
        dir.join("server.key"),
    )
}

/// An htpasswd file (bcrypt, as docker-registry requires) with one user.
pub fn htpasswd(dir: &Path, user: &str, pass: &str) -> PathBuf {
    let mut c = tool("htpasswd", dir);
    c.args(["-Bbn", user, pass]);
    let line = run_ok(c);
    let p = dir.join("htpasswd");
    fs::write(&p, line).unwrap();
    p
}

/// `rbuild` with a store, and credential files kept in `home` (HOME, XDG_RUNTIME_DIR and
/// XDG_CONFIG_HOME point there, REGISTRY_AUTH_FILE and DOCKER_CONFIG are unset), so that no
/// test reads or writes the machine's own credentials.
pub fn rbuild_home(root: &Path, home: &Path, args: &[&str]) -> Output {
    let mut c = crate::rbuild_common::rbuild_command(root, args);
    c.env("HOME", home)
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("DOCKER_CONFIG")
        .stdin(Stdio::null());
    output_within(c, Duration::from_secs(300))
}
