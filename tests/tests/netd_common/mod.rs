//! Shared by the netd_* tests: a throwaway "host" network namespace in which a netd of the
//! test's own runs (its own table, bridge prefix and state), an "outside" namespace holding
//! 198.18.0.2/30 as the host's uplink, and throwaway "container" namespaces. Nothing here
//! touches the real host's links or ruleset; everything is removed on drop.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rbox_tests::{bin, require_root, unique, Scratch};

/// The fake host with its netd.
pub struct Host {
    pub ns: String,
    pub out: String,
    pub dir: Scratch,
    pub table: String,
    pub prefix: String,
    pub netd: Option<Child>,
    containers: Vec<String>,
}

pub fn sh(cmd: &str) -> Output {
    Command::new("sh")
        .args(["-c", cmd])
        .output()
        .expect("run sh")
}

pub fn sh_ok(cmd: &str) -> String {
    let o = sh(cmd);
    assert!(
        o.status.success(),
        "{cmd}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

impl Host {
    /// A host and outside namespace pair, linked; netd not started yet.
    pub fn new(tag: &str) -> Host {
        require_root();
        let ns = unique(&format!("nd{tag}h"));
        let out = unique(&format!("nd{tag}o"));
        let dir = Scratch::new(&format!("netd-{tag}"));
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let table = unique(&format!("t{tag}"));
        // 8 characters at most: "p" + base36 of pid and counter.
        let prefix: String = unique("p").chars().take(8).collect();
        sh_ok(&format!(
            "ip netns add {ns} && ip netns add {out} && ip -n {ns} link set lo up && ip -n {out} link set lo up \
             && ip -n {ns} link add up0 type veth peer name dn0 netns {out} \
             && ip -n {ns} addr add 198.18.0.1/30 dev up0 && ip -n {ns} link set up0 up \
             && ip -n {ns} addr add 2001:db8::1/64 dev up0 nodad \
             && ip -n {out} addr add 198.18.0.2/30 dev dn0 && ip -n {out} link set dn0 up \
             && ip -n {out} addr add 2001:db8::2/64 dev dn0 nodad \
             && ip -n {ns} route add default via 198.18.0.2 && ip -n {ns} -6 route add default via 2001:db8::2"
        ));
        let h = Host {
            ns,
            out,
            dir,
            table,
            prefix,
            netd: None,
            containers: Vec::new(),
        };
        h.write_config("");
        h
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("netd.sock")
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join("state")
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join("netd.toml")
    }

    /// netd's config: this test's table and prefix, subnets, and `extra` lines.
    pub fn write_config(&self, extra: &str) {
        let text = format!(
            "table = \"{}\"\nbridge_prefix = \"{}\"\ndefault_subnet = \"10.77.0.0/24\"\npool = \"10.78.0.0/16\"\ndns = [\"198.18.0.2\"]\nrequest_timeout_ms = 1500\n{extra}\n",
            self.table, self.prefix
        );
        std::fs::write(self.config(), text).unwrap();
    }

    /// `nsenter --net=HOST CMD...`: a command in the host namespace (the mount namespace is
    /// the real one, unlike `ip netns exec`, which remounts /sys).
    pub fn in_host(&self, prog: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.ns)).arg(prog);
        c
    }

    /// Starts netd in the host namespace and waits for its socket.
    pub fn start_netd(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("netd.log"))
            .unwrap();
        let child = self
            .in_host(bin("netd").to_str().unwrap())
            .arg("--socket")
            .arg(self.socket())
            .arg("--state-dir")
            .arg(self.state())
            .arg("--config")
            .arg(self.config())
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn netd");
        self.netd = Some(child);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(20) {
            if std::os::unix::net::UnixStream::connect(self.socket()).is_ok() {
                return;
            }
            if let Some(Ok(Some(st))) = self.netd.as_mut().map(|c| c.try_wait()) {
                panic!("netd exited ({st}) at start: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("netd did not listen within 20 s: {}", self.log());
    }

    /// Stops netd with `sig` and waits for it.
    pub fn stop_netd(&mut self, sig: &str) {
        if let Some(mut c) = self.netd.take() {
            // nsenter execs netd, so the child's pid is netd's.
            let _ = Command::new("kill")
                .args([&format!("-{sig}"), &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("netd.log")).unwrap_or_default()
    }

    /// Runs netd-client (as root) with `args`.
    pub fn client(&self, args: &[&str]) -> Output {
        Command::new(bin("netd-client"))
            .arg(self.socket())
            .args(args)
            .output()
            .expect("run netd-client")
    }

    /// Runs netd-client, asserts success, returns the reply JSON.
    pub fn client_ok(&self, args: &[&str]) -> serde_json::Value {
        let o = self.client(args);
        assert!(
            o.status.success(),
            "netd-client {args:?}: {}{}\nnetd log:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            self.log()
        );
        serde_json::from_slice(&o.stdout).expect("reply JSON")
    }

    /// A new "container" network namespace (ip netns), removed on drop.
    pub fn container_ns(&mut self) -> String {
        let c = unique("ndc");
        sh_ok(&format!("ip netns add {c}"));
        self.containers.push(c.clone());
        c
    }

    /// Deletes a container namespace now (as a container's end does).
    pub fn kill_container_ns(&mut self, c: &str) {
        sh_ok(&format!("ip netns del {c}"));
        self.containers.retain(|x| x != c);
    }

    /// A shell command inside netns `ns` (host, outside or a container).
    pub fn exec(&self, ns: &str, cmd: &str) -> Output {
        sh(&format!(
            "ip netns exec {ns} sh -c '{}'",
            cmd.replace('\'', "'\\''")
        ))
    }

    /// The host namespace's links (name only, sorted), without the uplink and lo.
    pub fn links(&self) -> Vec<String> {
        let out = sh_ok(&format!("ip -n {} -o link", self.ns));
        let mut v: Vec<String> = out
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .filter(|n| n != "lo" && n != "up0")
            .collect();
        v.sort();
        v
    }

    /// netd's table in the host namespace, as `nft -s list table` prints it (empty if none).
    pub fn table_text(&self) -> String {
        let o = sh(&format!(
            "ip netns exec {} nft -s list table inet {}",
            self.ns, self.table
        ));
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    /// The lease files netd keeps.
    pub fn lease_files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.state().join("attachments"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// A TCP or UDP server in netns `ns` answering `reply` on `port` (python3), in the
    /// background; killed with the namespace.
    pub fn server(&self, ns: &str, proto: &str, addr: &str, port: u16, reply: &str) -> Server {
        let fam = if addr.contains(':') {
            "AF_INET6"
        } else {
            "AF_INET"
        };
        let code = if proto == "udp" {
            format!(
                "import socket\ns=socket.socket(socket.{fam},socket.SOCK_DGRAM)\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('{addr}',{port}))\nwhile True:\n d,a=s.recvfrom(100)\n s.sendto(b'{reply}',a)\n"
            )
        } else {
            format!(
                "import socket\ns=socket.socket(socket.{fam})\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('{addr}',{port}))\ns.listen(64)\nwhile True:\n c,a=s.accept()\n c.sendall(b'{reply}')\n c.close()\n"
            )
        };
        let mut c = Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-c", &code])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn server");
        // Wait until it listens.
        let check = if proto == "udp" { "-uln" } else { "-tln" };
        for _ in 0..100 {
            let o = sh(&format!(
                "ip netns exec {ns} ss -H {check} 'sport = :{port}'"
            ));
            if !String::from_utf8_lossy(&o.stdout).trim().is_empty() {
                return Server(c);
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        let _ = c.kill();
        let _ = c.wait();
        panic!("server on {addr}:{port}/{proto} in {ns} did not start");
    }

    /// What a client in netns `ns` gets from `addr:port` over `proto` (python3, 3 s).
    pub fn fetch(&self, ns: &str, proto: &str, addr: &str, port: u16) -> String {
        let fam = if addr.contains(':') {
            "AF_INET6"
        } else {
            "AF_INET"
        };
        let code = if proto == "udp" {
            format!("import socket\ns=socket.socket(socket.{fam},socket.SOCK_DGRAM)\ns.settimeout(3)\ns.sendto(b'x',('{addr}',{port}))\nprint(s.recv(100).decode())")
        } else {
            format!("import socket\ns=socket.create_connection(('{addr}',{port}),timeout=3)\ns.settimeout(3)\nprint(s.recv(100).decode())")
        };
        let o = Command::new("ip")
            .args(["netns", "exec", ns, "timeout", "10", "python3", "-c", &code])
            .output()
            .expect("run client");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }
}

/// A test server process, killed and reaped on drop.
pub struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.stop_netd("TERM");
        // What netd made lives in the host namespace: deleting it takes all of it along.
        for c in &self.containers {
            let _ = sh(&format!("ip netns del {c}"));
        }
        let _ = sh(&format!("ip netns del {}", self.ns));
        let _ = sh(&format!("ip netns del {}", self.out));
        let _ = std::fs::remove_file(format!("/run/rbox/netd-locks/{}.lock", self.table));
    }
}

/// A 64-hex container id unique to this call.
pub fn container_id() -> String {
    let u = unique("");
    let hex: String = u.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{hex:0>64}")[..64].to_string()
}

/// Writes `bytes` to a fresh connection to `socket` and returns what netd answered before it
/// closed (the raw frames).
pub fn raw_exchange(
    socket: &std::path::Path,
    bytes: &[u8],
    close_write: bool,
    wait: Duration,
) -> Vec<u8> {
    use std::io::Read;
    let mut s = std::os::unix::net::UnixStream::connect(socket).expect("connect");
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(bytes).unwrap();
    if close_write {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// The JSON of the first reply frame in `raw`.
pub fn first_reply(raw: &[u8]) -> serde_json::Value {
    assert!(raw.len() >= 4, "no reply frame: {raw:?}");
    let len = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize;
    serde_json::from_slice(&raw[4..4 + len]).expect("reply JSON")
}

/// A request frame holding `json`.
pub fn frame(json: &str) -> Vec<u8> {
    let mut v = (json.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(json.as_bytes());
    v
}
