//! Shared by the rrun_* end-to-end tests: a scratch store with an Alpine image, rrun commands
//! pointed at it, output with a deadline, and checks that nothing of a container is left
//! (folder, mount, cgroup, process).
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rbox_tests::{alpine_fixture, cmd, require_root, Scratch};

/// A store with one Alpine 3.15 image (tagged alpine:3.15, default command /bin/sh).
pub struct Lab {
    pub store: Scratch,
    pub image: String,
    pub layer: String,
}

impl Lab {
    pub fn new(prefix: &str) -> Lab {
        require_root();
        let store = Scratch::new(prefix);
        // The store must be reachable by the container's unprivileged root for nothing; the
        // scratch dir's mode is the default 0755, which is all rrun needs.
        let layer = line(cmd("rbuild").env("RBOX_ROOT", store.path()).arg("layer").arg("add").arg(alpine_fixture("3.15.11")));
        let image =
            line(cmd("rbuild").env("RBOX_ROOT", store.path()).args(["image", "create", &layer, "--tag", "alpine:3.15", "--cmd", "/bin/sh"]));
        assert!(image.starts_with("sha256:"), "image create printed {image:?}");
        Lab { store, image, layer }
    }

    pub fn rbuild(&self) -> Command {
        let mut c = cmd("rbuild");
        c.env("RBOX_ROOT", self.store.path());
        c
    }

    pub fn rrun(&self) -> Command {
        let mut c = cmd("rrun");
        c.env("RBOX_ROOT", self.store.path());
        c
    }

    /// `rrun --net none OPTS... --image IMG -- ARGS...` with stdin from /dev/null.
    pub fn run(&self, opts: &[&str], args: &[&str]) -> Output {
        let mut c = self.rrun();
        c.args(["--net", "none"]).args(opts).args(["--image", &self.image, "--"]).args(args);
        output(c, 60)
    }

    /// Like run, but asserts exit 0 and returns trimmed stdout.
    pub fn ok(&self, opts: &[&str], args: &[&str]) -> String {
        let o = self.run(opts, args);
        assert!(o.status.success(), "rrun {opts:?} {args:?} failed: {}\n{}", o.status, String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    pub fn containers_dir(&self) -> PathBuf {
        self.store.join("containers")
    }

    /// Ids of the containers whose folders exist.
    pub fn container_ids(&self) -> Vec<String> {
        std::fs::read_dir(self.containers_dir())
            .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default()
    }

    /// `rrun inspect NAME` parsed as JSON.
    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let o = output({
            let mut c = self.rrun();
            c.args(["inspect", name]);
            c
        }, 20);
        assert!(o.status.success(), "inspect {name}: {}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).expect("inspect prints JSON")
    }

    /// Asserts nothing of any container is left: no folder, no mount under the store, no
    /// rbox cgroup of a container of this store.
    pub fn assert_clean(&self, ids_before: &[String]) {
        let left: Vec<String> = self.container_ids().into_iter().filter(|i| !ids_before.contains(i)).collect();
        assert!(left.is_empty(), "container folders left behind: {left:?}");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let store = self.store.path().to_string_lossy().into_owned();
        assert!(!mounts.contains(&store), "mounts left under {store}");
    }

    /// Removes every container of this store (used by tests that keep some).
    pub fn rm_all(&self) {
        let ids = self.container_ids();
        if !ids.is_empty() {
            let _ = self.rrun().arg("rm").arg("-f").args(&ids).stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.rm_all();
    }
}

/// True when a cgroup directory named for this container id exists in any hierarchy.
pub fn cgroup_exists(id: &str) -> bool {
    let name = format!("rbox-{id}");
    walk_find(Path::new("/sys/fs/cgroup"), &name, 4)
}

fn walk_find(dir: &Path, name: &str, depth: u32) -> bool {
    let Ok(rd) = std::fs::read_dir(dir) else { return false };
    for e in rd.flatten() {
        let p = e.path();
        if e.file_name().to_string_lossy() == name {
            return true;
        }
        if depth > 0 && e.file_type().map(|t| t.is_dir()).unwrap_or(false) && walk_find(&p, name, depth - 1) {
            return true;
        }
    }
    false
}

/// Runs `c` with stdin from /dev/null and piped output, killing it after `secs`.
pub fn output(mut c: Command, secs: u64) -> Output {
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = c.spawn().expect("spawn");
    wait_output(child, secs)
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
    Output { status, stdout: t_out.join().unwrap_or_default(), stderr: t_err.join().unwrap_or_default() }
}

/// The single trimmed stdout line of a successful command.
pub fn line(c: &mut Command) -> String {
    let o = c.stdin(Stdio::null()).output().expect("spawn");
    assert!(o.status.success(), "{c:?} failed: {}", String::from_utf8_lossy(&o.stderr));
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
