//! Shared by the rrun-oci tests: an OCI bundle from the Alpine fixture (its config.json is what
//! `runc spec` writes, adjusted per test), and runtimes driven with their output in files (a
//! created container keeps the descriptors `create` had, so pipes would never close).

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rbox_tests::{alpine_fixture, bin, command, unique, Scratch};
use serde_json::Value;

/// What one runtime invocation gave.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A bundle in a scratch folder: rootfs/ from the fixture, config.json from `runc spec`.
pub struct Bundle {
    pub dir: Scratch,
}

impl Bundle {
    pub fn new() -> Bundle {
        let dir = Scratch::new("oci");
        let rootfs = dir.join("rootfs");
        // 0755 whatever the runner's umask: the container's root and its remapped ids
        // (user namespace tests) walk through it.
        std::fs::create_dir(&rootfs).unwrap();
        std::fs::set_permissions(&rootfs, std::fs::Permissions::from_mode(0o755)).unwrap();
        let st = command("tar")
            .arg("-xzf")
            .arg(alpine_fixture("3.20.3"))
            .arg("-C")
            .arg(&rootfs)
            .status()
            .expect("tar");
        assert!(st.success(), "extract the Alpine fixture");
        let st = command("runc")
            .arg("spec")
            .current_dir(dir.path())
            .status()
            .expect("runc spec (Debian's runc is the reference runtime)");
        assert!(st.success(), "runc spec");
        let b = Bundle { dir };
        b.edit(|c| c["process"]["terminal"] = false.into());
        b
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Changes config.json.
    pub fn edit(&self, f: impl FnOnce(&mut Value)) {
        let p = self.dir.join("config.json");
        let mut c: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        f(&mut c);
        std::fs::write(&p, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    }

    /// Sets process.args.
    pub fn args(&self, args: &[&str]) {
        let a: Vec<Value> = args.iter().map(|s| Value::from(*s)).collect();
        self.edit(|c| c["process"]["args"] = a.into());
    }
}

/// A runtime (runc or rrun-oci) with a state root of its own.
pub struct Runtime {
    pub name: &'static str,
    pub exe: PathBuf,
    pub root: Scratch,
}

impl Runtime {
    pub fn runc() -> Runtime {
        Runtime::with("runc", PathBuf::from("runc"))
    }
    pub fn rrun_oci() -> Runtime {
        Runtime::with("rrun-oci", bin("rrun-oci"))
    }
    fn with(name: &'static str, exe: PathBuf) -> Runtime {
        Runtime {
            name,
            exe,
            root: Scratch::new("ocirt"),
        }
    }

    /// Both runtimes, runc first.
    pub fn both() -> [Runtime; 2] {
        [Runtime::runc(), Runtime::rrun_oci()]
    }

    /// `RUNTIME --root ROOT ARGS...` in `cwd`, killed after `secs`; output through files.
    pub fn run_in(&self, cwd: &Path, args: &[&str], secs: u64) -> Out {
        let mut c: Command = command(&self.exe);
        c.arg("--root")
            .arg(self.root.join("state"))
            .args(args)
            .current_dir(cwd);
        run_to_files(
            c,
            self.root.path(),
            secs,
            &format!("{} {args:?}", self.name),
        )
    }

    /// [`Runtime::run`], the runtime started with umask `mask` (umask(2)).
    pub fn run_with_umask(&self, args: &[&str], mask: u32) -> Out {
        let mut c: Command = command(&self.exe);
        rbox_tests::with_umask(&mut c, mask)
            .arg("--root")
            .arg(self.root.join("state"))
            .args(args)
            .current_dir("/");
        run_to_files(
            c,
            self.root.path(),
            30,
            &format!("{} {args:?} under umask {mask:03o}", self.name),
        )
    }

    pub fn run(&self, args: &[&str]) -> Out {
        self.run_in(Path::new("/"), args, 30)
    }

    /// The `status` field of `state ID` ("" if state failed).
    pub fn status(&self, id: &str) -> String {
        let o = self.run(&["state", id]);
        serde_json::from_str::<Value>(&o.stdout)
            .ok()
            .and_then(|v| v["status"].as_str().map(String::from))
            .unwrap_or_default()
    }

    /// The whole state document of `id`.
    pub fn state(&self, id: &str) -> Value {
        let o = self.run(&["state", id]);
        assert_eq!(o.code, 0, "{} state {id}: {}", self.name, o.stderr);
        serde_json::from_str(&o.stdout).expect("state prints JSON")
    }

    /// Waits (up to 10 s) until `state ID` says `want`.
    pub fn wait_status(&self, id: &str, want: &str) -> String {
        let start = Instant::now();
        loop {
            let s = self.status(id);
            if s == want || start.elapsed() > Duration::from_secs(10) {
                return s;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Force-deletes `id` (cleanup).
    pub fn cleanup(&self, id: &str) {
        let _ = self.run(&["delete", "--force", id]);
    }
}

/// Runs `c` with stdin from /dev/null and its output through files in `dir` (a created
/// container keeps the descriptors it was given, so pipes would never close); panics naming
/// `what` if it has not finished after `secs`.
pub fn run_to_files(mut c: Command, dir: &Path, secs: u64, what: &str) -> Out {
    let n = unique("out");
    let (o, e) = (dir.join(format!("{n}.out")), dir.join(format!("{n}.err")));
    c.stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap());
    let mut child = c.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            panic!("{what} did not finish in {secs} s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Out {
        code: status.code().unwrap_or(128),
        stdout: std::fs::read_to_string(&o).unwrap_or_default(),
        stderr: std::fs::read_to_string(&e).unwrap_or_default(),
    }
}

/// A container id unique to this test run.
pub fn id(prefix: &str) -> String {
    unique(&format!("ocirt-{prefix}-"))
}
