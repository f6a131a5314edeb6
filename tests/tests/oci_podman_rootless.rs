//! Rootless podman (Debian's, with conmon) driving rrun-oci: a throwaway user with
//! /etc/subuid and /etc/subgid ranges (from useradd) runs `podman --runtime rrun-oci` with a
//! private HOME, XDG_RUNTIME_DIR and store (vfs, cgroupfs, `--network none`), each scenario
//! also through runc and compared. podman runs its runtime as root of the user's namespace;
//! on this cgroup v1 machine nothing is delegated to the user, so the container has no cgroup
//! of its own (runc's rootless rule: cgroup errors are ignored when no limits are asked for).
//! The image is imported from the Alpine fixture; no image is pulled. The user, its podman
//! pause process and its store are removed on drop.

mod ocirt_common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ocirt_common::{run_to_files, Out};

use rbox_tests::{alpine_fixture, bin, command, require_root, unique, Scratch};

/// A throwaway user with subordinate ranges, and podman's folders for it.
struct User {
    name: String,
    uid: u32,
    gid: u32,
    dir: Scratch,
    image: String,
}

impl User {
    fn new() -> User {
        let name = unique("rbpm");
        let st = command("useradd")
            .args(["-M", "-N", "-s", "/bin/false", &name])
            .status()
            .expect("useradd (Debian's passwd package)");
        assert!(st.success(), "useradd {name}");
        let id = |flag: &str| -> u32 {
            let o = command("id").args([flag, &name]).output().unwrap();
            String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
        };
        let dir = Scratch::new("ocipmrl");
        let u = User {
            uid: id("-u"),
            gid: id("-g"),
            name,
            dir,
            image: format!("localhost/{}:1", unique("ocirt-alpine-")),
        };
        for f in ["/etc/subuid", "/etc/subgid"] {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            assert!(
                text.lines().any(|l| l.starts_with(&format!("{}:", u.name))),
                "useradd gave {} no range in {f} (rootless podman needs one)",
                u.name
            );
        }
        // Any umask: the scratch folder is opened to the user, its folders are the user's.
        let chmod = |p: &Path, m: u32| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        chmod(u.dir.path(), 0o755);
        for d in ["home", "run"] {
            std::fs::create_dir(u.dir.join(d)).unwrap();
            std::os::unix::fs::chown(u.dir.join(d), Some(u.uid), Some(u.gid)).unwrap();
            chmod(&u.dir.join(d), 0o700);
        }
        // The runtime and the fixture where the user may read them.
        let copy = |from: &Path, to: &str| {
            std::fs::copy(from, u.dir.join(to)).unwrap();
            chmod(&u.dir.join(to), 0o755);
        };
        copy(&bin("rrun-oci"), "rrun-oci");
        copy(&alpine_fixture("3.20.3"), "alpine.tar.gz");
        let o = u.podman(
            "runc",
            &[
                "import",
                u.dir.join("alpine.tar.gz").to_str().unwrap(),
                &u.image,
            ],
            120,
        );
        assert_eq!(o.code, 0, "podman import as {}: {}", u.name, o.stderr);
        u
    }

    fn runtime(&self, rt: &str) -> PathBuf {
        match rt {
            "runc" => PathBuf::from("/usr/sbin/runc"),
            _ => self.dir.join("rrun-oci"),
        }
    }

    /// `podman ARGS` as the user through runtime `rt`, killed after `secs`.
    fn podman(&self, rt: &str, args: &[&str], secs: u64) -> Out {
        let (home, run) = (self.dir.join("home"), self.dir.join("run"));
        let mut c = command("setpriv");
        c.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .args(["--init-groups", "--", "podman"])
            .arg("--root")
            .arg(home.join("storage"))
            .arg("--runroot")
            .arg(run.join("storage"))
            .arg("--tmpdir")
            .arg(run.join("tmp"))
            .args([
                "--storage-driver=vfs",
                "--cgroup-manager=cgroupfs",
                "--events-backend=file",
            ])
            .arg("--runtime")
            .arg(self.runtime(rt))
            .args(args)
            .env("HOME", &home)
            .env("XDG_RUNTIME_DIR", &run)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("USER", &self.name)
            .env("LC_ALL", "C")
            .env("TZ", "UTC")
            .current_dir("/");
        let what = format!("podman {args:?} through {rt} as {}", self.name);
        run_to_files(c, self.dir.path(), secs, &what)
    }

    /// `podman run --rm --network none IMAGE CMD...`: (exit code, stdout).
    fn run_rm(&self, rt: &str, cmd: &[&str]) -> (i32, String) {
        let mut a = vec!["run", "--rm", "--network", "none", &self.image];
        a.extend(cmd);
        let o = self.podman(rt, &a, 60);
        (o.code, o.stdout)
    }

    /// The user's range in `file` (START, COUNT).
    fn range(&self, file: &str) -> (String, String) {
        let text = std::fs::read_to_string(file).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{}:", self.name)))
            .unwrap_or_else(|| panic!("no range for {} in {file}", self.name));
        let f: Vec<&str> = line.split(':').collect();
        (f[1].to_string(), f[2].to_string())
    }

    /// Pids of the user's processes.
    fn processes(&self) -> Vec<String> {
        let o = command("ps")
            .args(["-o", "pid=,args=", "-u", &self.uid.to_string()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .collect()
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let _ = self.podman("runc", &["rm", "-af", "-t", "0"], 60);
        // podman's pause process keeps the user's namespace; it goes with the user.
        let pause = self.dir.join("run/tmp/pause.pid");
        if let Ok(pid) = std::fs::read_to_string(&pause) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                if let Some(p) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                }
            }
        }
        let start = Instant::now();
        while !self.processes().is_empty() && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(50));
        }
        rbox_tests::userdel(&self.name);
    }
}

/// What a user sees through runtime `rt`.
fn scenario(u: &User, rt: &str) -> Vec<String> {
    let mut seen = vec![];
    seen.push(format!("{:?}", u.run_rm(rt, &["echo", "hi"])));
    seen.push(format!(
        "{:?}",
        u.run_rm(rt, &["sh", "-c", "echo out; exit 7"])
    ));
    // root inside, the user outside, then the user's subordinate range
    seen.push(format!(
        "{:?}",
        u.run_rm(
            rt,
            &["sh", "-c", "id -u; awk '{print $1, $2, $3}' /proc/self/uid_map; echo x >/dev/null && echo dev-null-ok"],
        )
    ));
    let name = unique("ocirt-rl-");
    let s = |args: &[&str]| {
        let o = u.podman(rt, args, 60);
        format!("{args:?} {} {:?}", o.code, o.stdout.trim()).replace(&name, "NAME")
    };
    let o = u.podman(
        rt,
        &[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "none",
            &u.image,
            "sleep",
            "1000",
        ],
        60,
    );
    seen.push(format!("run -d {} {}", o.code, o.stderr));
    seen.push(s(&["exec", &name, "echo", "in-exec"]));
    seen.push(s(&["kill", "-s", "KILL", &name]));
    seen.push(s(&["wait", &name]));
    seen.push(s(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        &name,
    ]));
    seen.push(s(&["rm", &name]));
    seen.push(s(&["ps", "-aq"]));
    seen
}

#[test]
fn rootless_podman_runs_exit_codes_and_signal_kills_match_runc() {
    require_root();
    let u = User::new();
    let want = scenario(&u, "runc");
    let got = scenario(&u, "rrun-oci");
    assert_eq!(got, want, "rrun-oci (left) against runc (right)");
    assert_eq!(want[0], "(0, \"hi\\n\")");
    assert_eq!(want[1], "(7, \"out\\n\")");
    let (start, count) = u.range("/etc/subuid");
    assert_eq!(
        want[2],
        format!(
            "(0, \"0\\n0 {} 1\\n1 {start} {count}\\ndev-null-ok\\n\")",
            u.uid
        )
    );
    assert!(want[5].ends_with(" 0 \"NAME\""), "{want:?}");
    assert_eq!(want[6], "[\"wait\", \"NAME\"] 0 \"137\"");
    // rrun-oci kept its state where runc keeps its own rootless: $XDG_RUNTIME_DIR/rrun-oci,
    // and nothing is left in it.
    let state = u.dir.join("run/rrun-oci");
    assert!(state.is_dir(), "no {}", state.display());
    assert_eq!(
        std::fs::read_dir(&state).unwrap().count(),
        0,
        "containers left in {}",
        state.display()
    );
}

/// rrun-oci on its own as root of the user's namespace (`podman unshare`, no podman run): a
/// bundle from `runc spec` runs without a cgroup; one asking for a limit is refused in one
/// line naming linux.resources, and leaves no state and no cgroup.
#[test]
fn rootless_rrun_oci_runs_without_a_cgroup_and_refuses_limits_in_one_line() {
    require_root();
    let u = User::new();
    let b = u.dir.join("home/bundle");
    let (fixture, bs) = (u.dir.join("alpine.tar.gz"), b.to_str().unwrap());
    let make = format!(
        "mkdir -p {bs}/rootfs && tar -xzf {} -C {bs}/rootfs && cd {bs} && runc spec",
        fixture.display()
    );
    let o = u.podman("runc", &["unshare", "sh", "-c", &make], 60);
    assert_eq!(o.code, 0, "make the bundle as {}: {}", u.name, o.stderr);
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let p = b.join("config.json");
        let mut c: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        f(&mut c);
        std::fs::write(&p, serde_json::to_vec(&c).unwrap()).unwrap();
    };
    edit(&|c| {
        c["process"]["terminal"] = false.into();
        c["process"]["args"] = serde_json::json!(["sh", "-c", "echo hi; id -u"]);
    });
    let rrun_oci = u.dir.join("rrun-oci");
    let run = |id: &str| {
        u.podman(
            "runc",
            &["unshare", rrun_oci.to_str().unwrap(), "run", "-b", bs, id],
            60,
        )
    };
    let id = unique("ocirt-rl-");
    let o = run(&id);
    assert_eq!((o.code, o.stdout.as_str()), (0, "hi\n0\n"), "{}", o.stderr);

    edit(&|c| c["linux"]["resources"]["pids"] = serde_json::json!({"limit": 10}));
    let id = unique("ocirt-rl-");
    let o = run(&id);
    let ours: Vec<&str> = o
        .stderr
        .lines()
        .filter(|l| l.starts_with("rrun-oci:"))
        .collect();
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert_eq!(ours.len(), 1, "{}", o.stderr);
    assert!(
        ours[0].starts_with("rrun-oci: error: config.json: linux.resources asks for limits, and rootless rrun-oci may not make the container's cgroup"),
        "{}",
        ours[0]
    );
    let state = u.dir.join("run/rrun-oci");
    assert_eq!(
        std::fs::read_dir(&state).unwrap().count(),
        0,
        "state left in {}",
        state.display()
    );
    for h in ["unified", "pids", "memory"] {
        let cg = PathBuf::from(format!("/sys/fs/cgroup/{h}/rrun-oci-{id}"));
        assert!(!cg.exists(), "{} left", cg.display());
    }
}
