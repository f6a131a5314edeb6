//! Shared by the rrun_* end-to-end tests: a scratch store with an Alpine image, rrun commands
//! pointed at it, output with a deadline, and checks that nothing of a container is left
//! (folder, upper dir in rrun's tmpfs, cgroup in any hierarchy, process).
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rbox_tests::{alpine_fixture, cmd, require_root, Scratch};

pub mod user;

/// A store with one Alpine 3.15 image (tagged alpine:3.15, default command /bin/sh), used by
/// root or, made with [`Lab::rootless`], by an unprivileged user.
pub struct Lab {
    pub store: Scratch,
    pub image: String,
    pub layer: String,
    /// What of any container existed before this lab ran one (see [`Lab::assert_clean`]).
    pub before: Traces,
    /// The user that owns the store and runs rbuild and rrun; None: root.
    pub user: Option<user::User>,
}

impl Lab {
    pub fn new(prefix: &str) -> Lab {
        Lab::make(prefix, None)
    }

    /// A lab whose store belongs to `user`, who runs every rbuild and rrun of it (through
    /// setpriv; the test itself still needs root to make the user).
    pub fn rootless(prefix: &str, user: user::User) -> Lab {
        Lab::make(prefix, Some(user))
    }

    fn make(prefix: &str, user: Option<user::User>) -> Lab {
        require_root();
        let store = Scratch::new(prefix);
        // The store must be reachable by the container's unprivileged root for nothing; the
        // scratch dir's mode is whatever the umask gives, which is all rrun needs (a rootless
        // lab's store is its user's, so a 0700 one is fine too).
        let fixture = match &user {
            Some(u) => {
                u.own(store.path());
                u.fixture_in(store.path())
            }
            None => alpine_fixture("3.15.11"),
        };
        let mut lab = Lab {
            store,
            image: String::new(),
            layer: String::new(),
            before: Traces::default(),
            user,
        };
        lab.layer = line(lab.rbuild().arg("layer").arg("add").arg(&fixture));
        lab.image = line(lab.rbuild().args([
            "image",
            "create",
            &lab.layer,
            "--tag",
            "alpine:3.15",
            "--cmd",
            "/bin/sh",
        ]));
        if lab.user.is_some() {
            let _ = std::fs::remove_file(&fixture);
        }
        assert!(
            lab.image.starts_with("sha256:"),
            "image create printed {:?}",
            lab.image
        );
        lab.before = Traces::now();
        lab
    }

    /// The project's `program`, run by root or by the lab's user, pointed at the store.
    fn tool(&self, program: &str) -> Command {
        match &self.user {
            Some(u) => u.command(self.store.path(), rbox_tests::bin(program)),
            None => {
                let mut c = cmd(program);
                c.env("RBOX_ROOT", self.store.path());
                c
            }
        }
    }

    pub fn rbuild(&self) -> Command {
        self.tool("rbuild")
    }

    pub fn rrun(&self) -> Command {
        self.tool("rrun")
    }

    /// `rrun --net none OPTS... --image IMG -- ARGS...` with stdin from /dev/null.
    pub fn run(&self, opts: &[&str], args: &[&str]) -> Output {
        let mut c = self.rrun();
        c.args(["--net", "none"])
            .args(opts)
            .args(["--image", &self.image, "--"])
            .args(args);
        output(c, 60)
    }

    /// Like run, but asserts exit 0 and returns trimmed stdout.
    pub fn ok(&self, opts: &[&str], args: &[&str]) -> String {
        let o = self.run(opts, args);
        assert!(
            o.status.success(),
            "rrun {opts:?} {args:?} failed: {}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    pub fn containers_dir(&self) -> PathBuf {
        self.store.join("containers")
    }

    /// Ids of the containers whose folders exist.
    pub fn container_ids(&self) -> Vec<String> {
        std::fs::read_dir(self.containers_dir())
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `rrun inspect NAME` parsed as JSON.
    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let o = output(
            {
                let mut c = self.rrun();
                c.args(["inspect", name]);
                c
            },
            20,
        );
        assert!(
            o.status.success(),
            "inspect {name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).expect("inspect prints JSON")
    }

    /// Asserts nothing of this lab's containers is left: no folder in the store (other than
    /// `ids_before`), and no rbox-* cgroup directory (beneath this process's cgroup, in every
    /// hierarchy), folder in rrun's tmpfs or process in an rbox-* cgroup that was not there
    /// when the lab was made. Other tests run in parallel: a trace of a container recorded in
    /// another store is theirs, and one recorded nowhere is given 10 s to go (a container
    /// being removed right now); what stays is a leak.
    pub fn assert_clean(&self, ids_before: &[String]) {
        let left: Vec<String> = self
            .container_ids()
            .into_iter()
            .filter(|i| !ids_before.contains(i))
            .collect();
        assert!(left.is_empty(), "container folders left behind: {left:?}");
        let mine = self.containers_dir();
        let leaks = |t: &Traces| -> Vec<String> {
            t.all()
                .into_iter()
                .filter(|(id, _)| {
                    !self.before.has(id)
                        && !ids_before.contains(id)
                        && (mine.join(id).exists() || !recorded_elsewhere(id, &mine))
                })
                .map(|(_, what)| what)
                .collect()
        };
        let mut found = leaks(&Traces::now());
        if !found.is_empty() && eventually(10, || leaks(&Traces::now()).is_empty()) {
            found.clear();
        }
        assert!(
            found.is_empty(),
            "left behind by containers of {}: {found:?}",
            mine.display()
        );
    }

    /// Removes every container of this store (used by tests that keep some).
    pub fn rm_all(&self) {
        let ids = self.container_ids();
        if !ids.is_empty() {
            let _ = self
                .rrun()
                .arg("rm")
                .arg("-f")
                .args(&ids)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.rm_all();
    }
}

/// What containers leave on the host outside their store, by container id: rbox-<id> cgroup
/// directories beneath this process's own cgroup in every hierarchy, folders in rrun's tmpfs
/// (/run/rbox/containers/<id>), and processes in an rbox-<id> cgroup.
#[derive(Debug, Default)]
pub struct Traces {
    pub cgroups: BTreeSet<(String, PathBuf)>,
    pub run_dirs: BTreeSet<String>,
    pub processes: BTreeSet<(String, i32)>,
}

impl Traces {
    pub fn now() -> Traces {
        let mut t = Traces::default();
        for own in own_cgroup_dirs() {
            collect_rbox_dirs(&own, 3, &mut t.cgroups);
        }
        if let Ok(rd) = std::fs::read_dir(RUN_DIR) {
            t.run_dirs = rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
        }
        for pid in all_pids() {
            let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
            if let Some(id) = cg.split(['/', '\n']).find_map(|c| c.strip_prefix("rbox-")) {
                t.processes.insert((id.to_string(), pid));
            }
        }
        t
    }

    /// Every trace as (container id, description).
    pub fn all(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .cgroups
            .iter()
            .map(|(id, p)| (id.clone(), format!("cgroup {}", p.display())))
            .collect();
        v.extend(
            self.run_dirs
                .iter()
                .map(|id| (id.clone(), format!("{RUN_DIR}/{id}"))),
        );
        v.extend(
            self.processes
                .iter()
                .map(|(id, pid)| (id.clone(), format!("process {pid} in cgroup rbox-{id}"))),
        );
        v
    }

    pub fn has(&self, id: &str) -> bool {
        self.all().iter().any(|(i, _)| i == id)
    }
}

/// rrun's tmpfs for the upper dirs of containers removed on exit.
pub const RUN_DIR: &str = "/run/rbox/containers";

/// True when a store other than `mine` under the temp dir records container `id` (a test
/// running in parallel owns it).
fn recorded_elsewhere(id: &str, mine: &Path) -> bool {
    let tmp = std::env::temp_dir();
    let Ok(rd) = std::fs::read_dir(&tmp) else {
        return false;
    };
    rd.flatten().any(|e| {
        [
            e.path().join("containers").join(id),
            e.path().join("store/containers").join(id),
        ]
        .iter()
        .any(|p| p.exists() && !p.starts_with(mine))
    })
}

/// The directory of this process's own cgroup in every mounted hierarchy (v1 and v2).
pub fn own_cgroup_dirs() -> Vec<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let membership = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut out = Vec::new();
    for l in mountinfo.lines() {
        let Some((pre, post)) = l.split_once(" - ") else {
            continue;
        };
        let f: Vec<&str> = pre.split(' ').collect();
        let p: Vec<&str> = post.split(' ').collect();
        if f.len() < 5 || p.len() < 3 {
            continue;
        }
        let (root, point, fstype, opts) = (f[3], f[4], p[0], p[2]);
        let own = membership.lines().find_map(|m| {
            let mut it = m.splitn(3, ':');
            let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
            let same = match fstype {
                "cgroup2" => ctrls.is_empty(),
                "cgroup" => {
                    !ctrls.is_empty() && ctrls.split(',').all(|c| opts.split(',').any(|o| o == c))
                }
                _ => false,
            };
            same.then(|| path.to_string())
        });
        if let Some(path) = own {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .trim_start_matches('/');
            out.push(Path::new(point).join(rel));
        }
    }
    out
}

fn collect_rbox_dirs(dir: &Path, depth: u32, out: &mut BTreeSet<(String, PathBuf)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        match name.strip_prefix("rbox-") {
            Some(id) => {
                out.insert((id.to_string(), e.path()));
            }
            None if depth > 0 => collect_rbox_dirs(&e.path(), depth - 1, out),
            None => {}
        }
    }
}

fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Pids of the processes whose command line contains `marker`.
pub fn processes_with(marker: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    all_pids()
        .into_iter()
        .filter(|&p| p != me)
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(marker))
                .unwrap_or(false)
        })
        .collect()
}

/// True when a cgroup directory named for this container id exists in any hierarchy.
pub fn cgroup_exists(id: &str) -> bool {
    let name = format!("rbox-{id}");
    walk_find(Path::new("/sys/fs/cgroup"), &name, 4)
}

fn walk_find(dir: &Path, name: &str, depth: u32) -> bool {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return false;
    };
    for e in rd.flatten() {
        let p = e.path();
        if e.file_name().to_string_lossy() == name {
            return true;
        }
        if depth > 0
            && e.file_type().map(|t| t.is_dir()).unwrap_or(false)
            && walk_find(&p, name, depth - 1)
        {
            return true;
        }
    }
    false
}

/// Runs `c` with stdin from /dev/null and piped output, killing it after `secs`.
pub fn output(mut c: Command, secs: u64) -> Output {
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c.spawn().expect("spawn");
    wait_output(child, secs)
}

/// [`output`] with 60 s, asserting success (the assertion names `what` and shows stderr);
/// returns stdout.
pub fn ok_stdout(c: Command, what: &str) -> String {
    let o = output(c, 60);
    assert!(
        o.status.success(),
        "{what}: {}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Waits for a spawned child with piped stdout/stderr, killing it after `secs`.
pub fn wait_output(mut child: Child, secs: u64) -> Output {
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_end(&mut v);
        }
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut v);
        }
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if start.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            panic!("command did not finish within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
    }
}

/// Spawns `c` (stdin from /dev/null, stderr dropped) and waits for the first line it prints;
/// returns the running child and that line, trimmed.
pub fn spawn_until_first_line(c: &mut Command) -> (Child, String) {
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = c.spawn().expect("spawn");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("read the first line");
    (child, line.trim().to_string())
}

/// The single trimmed stdout line of a successful command.
pub fn line(c: &mut Command) -> String {
    let o = c.stdin(Stdio::null()).output().expect("spawn");
    assert!(
        o.status.success(),
        "{c:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Waits until `f` holds, up to `secs`.
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}
