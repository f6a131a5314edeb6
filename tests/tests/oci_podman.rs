//! podman (Debian's, with conmon) driving rrun-oci: `podman --runtime rrun-oci` against an
//! image imported from the Alpine fixture, each scenario also run through runc and compared.
//! podman gets a store of its own under a scratch folder (--root, --runroot, --tmpdir), so
//! nothing touches the host's podman store; no image is pulled and no network is made
//! (`--network none`). Containers get podman's default seccomp profile (its
//! /usr/share/containers/seccomp.json, sent as linux.seccomp). One run option is forced on
//! every container, for both runtimes: explicit nofile/nproc ulimits (podman's defaults raise
//! the hard limits, which needs CAP_SYS_RESOURCE; machines whose bounding set lacks it fail
//! with runc and crun too).

mod ocirt_common;

use ocirt_common::{run_to_files, Out};

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use rbox_tests::{alpine_fixture, bin, command, require_root, unique, Scratch};

const RUN_OPTS: [&str; 6] = [
    "--network",
    "none",
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
];

struct Podman {
    dir: Scratch,
    image: String,
}

impl Podman {
    fn new() -> Podman {
        let p = Podman {
            dir: Scratch::new("ocipm"),
            image: format!("localhost/{}:1", unique("ocirt-alpine-")),
        };
        let fixture = alpine_fixture("3.20.3");
        let o = p.run(
            "runc",
            &["import", fixture.to_str().unwrap(), &p.image],
            120,
        );
        assert_eq!(o.code, 0, "podman import: {}", o.stderr);
        p
    }

    fn runtime(name: &str) -> PathBuf {
        match name {
            "runc" => PathBuf::from("/usr/sbin/runc"),
            _ => bin("rrun-oci"),
        }
    }

    fn cmd(&self, rt: &str) -> Command {
        let mut c = command("podman");
        c.arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("run"))
            .arg("--tmpdir")
            .arg(self.dir.join("tmp"))
            .args(["--cgroup-manager=cgroupfs", "--events-backend=file"])
            .arg("--runtime")
            .arg(Podman::runtime(rt));
        c
    }

    /// `podman ... ARGS` through runtime `rt`, killed after `secs`.
    fn run(&self, rt: &str, args: &[&str], secs: u64) -> Out {
        let mut c = self.cmd(rt);
        c.args(args);
        run_to_files(
            c,
            self.dir.path(),
            secs,
            &format!("podman {args:?} through {rt}"),
        )
    }

    /// `podman run RUN_OPTS EXTRA IMAGE CMD...`: (exit code, stdout).
    fn run_ctr(&self, rt: &str, extra: &[&str], cmd: &[&str]) -> (i32, String) {
        let mut a = vec!["run"];
        a.extend(RUN_OPTS);
        a.extend(extra);
        a.push(&self.image);
        a.extend(cmd);
        let o = self.run(rt, &a, 60);
        (o.code, o.stdout)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run("runc", &["rm", "-af", "-t", "0"], 60);
        let _ = self.run("runc", &["system", "reset", "-f"], 60);
    }
}

#[test]
fn podman_run_rm_output_and_exit_codes_match_runc() {
    require_root();
    let p = Podman::new();
    let cases: [&[&str]; 6] = [
        &["echo", "hi"],
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
        &["nosuchcommand"],
        &["sh", "-c", "kill -TERM $$; sleep 5"],
        &["sh", "-c", "id; hostname | wc -c; ls /proc/self/ns | wc -l"],
        // podman's profile is on: delete_module gets its EPERM (on a kernel without modules,
        // unconfined, the call fails with ENOSYS)
        &[
            "sh",
            "-c",
            "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; rmmod nosuchmod 2>&1; echo rmmod=$?",
        ],
    ];
    for args in cases {
        let want = p.run_ctr("runc", &["--rm"], args);
        let got = p.run_ctr("rrun-oci", &["--rm"], args);
        assert_eq!(got, want, "{args:?}: rrun-oci (left) against runc (right)");
        if args[0] == "sh" && args[2].contains("Seccomp") {
            assert!(got.1.contains("Seccomp:\t2"), "a filter is on: {got:?}");
        }
    }
    assert_eq!(
        p.run_ctr("rrun-oci", &["--rm"], &["echo", "hi"]),
        (0, "hi\n".into())
    );
    let ps = p.run("rrun-oci", &["ps", "-aq"], 30);
    assert_eq!(ps.stdout, "", "--rm left containers: {}", ps.stdout);
}

/// The detached lifecycle through one runtime; returns what a user would see.
fn detached(p: &Podman, rt: &str) -> Vec<String> {
    let name = unique("ocirt-d-");
    let mut seen = vec![];
    let (code, _) = p.run_ctr(
        rt,
        &["-d", "--name", &name],
        &[
            "sh",
            "-c",
            "echo started; trap 'echo got-term; exit 0' TERM; while true; do sleep 0.1; done",
        ],
    );
    seen.push(format!("run -d {code}"));
    let s = |args: &[&str]| {
        let o = p.run(rt, args, 60);
        format!("{args:?} {} {:?}", o.code, o.stdout.trim()).replace(&name, "NAME")
    };
    std::thread::sleep(Duration::from_millis(500));
    seen.push(s(&[
        "exec",
        &name,
        "sh",
        "-c",
        "echo in-exec; cat /proc/1/comm; cat /proc/self/cgroup | grep -c memory",
    ]));
    seen.push(s(&["exec", &name, "sh", "-c", "exit 5"]));
    seen.push(s(&["exec", "-u", "1000:1000", &name, "id"]));
    seen.push(s(&["exec", &name, "nosuchcommand"]));
    seen.push(s(&["pause", &name]));
    seen.push(s(&["inspect", "--format", "{{.State.Status}}", &name]));
    seen.push(s(&["unpause", &name]));
    seen.push(s(&["inspect", "--format", "{{.State.Status}}", &name]));
    seen.push(s(&["stop", &name]));
    seen.push(s(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        &name,
    ]));
    seen.push(s(&["logs", &name]));
    seen.push(s(&["start", &name]));
    seen.push(s(&["kill", "-s", "KILL", &name]));
    seen.push(s(&["wait", &name]));
    seen.push(s(&["rm", &name]));
    seen.push(s(&["ps", "-aq"]));
    seen
}

#[test]
fn podman_detached_exec_logs_pause_stop_kill_rm_match_runc() {
    require_root();
    let p = Podman::new();
    let want = detached(&p, "runc");
    let got = detached(&p, "rrun-oci");
    assert_eq!(got, want, "rrun-oci (left) against runc (right)");
    assert!(want.iter().any(|l| l.contains("got-term")), "{want:?}");
}

#[test]
fn podman_memory_limit_and_oom_kill_match_runc() {
    require_root();
    let p = Podman::new();
    let mut seen = vec![];
    for rt in ["runc", "rrun-oci"] {
        let name = unique("ocirt-oom-");
        let (code, out) = p.run_ctr(
            rt,
            &["--name", &name, "--memory", "32m"],
            &[
                "sh",
                "-c",
                "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; x=a; while true; do x=$x$x; done",
            ],
        );
        let o = p.run(
            rt,
            &[
                "inspect",
                "--format",
                "{{.State.OOMKilled}} {{.State.ExitCode}}",
                &name,
            ],
            30,
        );
        let _ = p.run(rt, &["rm", "-f", &name], 30);
        seen.push((code, out, o.stdout));
    }
    assert_eq!(seen[1], seen[0], "rrun-oci (left) against runc (right)");
    assert_eq!(
        seen[0].0, 137,
        "the OOM killer ends the container: {:?}",
        seen[0]
    );
    assert_eq!(seen[0].1, "33554432\n");
}

/// `podman update` (podman 4.3 passes `update --resources FILE` to the runtime): the new
/// memory limit as the container reads it, and a hog past a lowered one OOM-killed.
#[test]
fn podman_update_memory_matches_runc() {
    require_root();
    let p = Podman::new();
    let mut seen = vec![];
    for rt in ["runc", "rrun-oci"] {
        let name = unique("ocirt-upd-");
        let (code, _) = p.run_ctr(
            rt,
            &["-d", "--name", &name, "--memory", "32m"],
            &["sleep", "1000"],
        );
        let limit = || {
            let o = p.run(
                rt,
                &[
                    "exec",
                    &name,
                    "cat",
                    "/sys/fs/cgroup/memory/memory.limit_in_bytes",
                ],
                30,
            );
            format!("{} {}", o.code, o.stdout.trim())
        };
        let mut s = vec![format!("run -d {code}"), limit()];
        let o = p.run(rt, &["update", "--memory", "64m", &name], 30);
        s.push(format!("update {} {}", o.code, o.stderr.trim()));
        s.push(limit());
        let o = p.run(
            rt,
            &["update", "--memory", "16m", "--memory-swap", "16m", &name],
            30,
        );
        s.push(format!("update {} {}", o.code, o.stderr.trim()));
        s.push(limit());
        let o = p.run(
            rt,
            &[
                "exec",
                &name,
                "sh",
                "-c",
                "x=a; while true; do x=$x$x; done",
            ],
            60,
        );
        s.push(format!("hog {}", o.code));
        let _ = p.run(rt, &["rm", "-f", "-t", "0", &name], 30);
        seen.push(s);
    }
    assert_eq!(seen[1], seen[0], "rrun-oci (left) against runc (right)");
    assert_eq!(
        seen[0],
        [
            "run -d 0",
            "0 33554432",
            "update 0 ",
            "0 67108864",
            "update 0 ",
            "0 16777216",
            "hog 137"
        ]
    );
}

/// `podman run -it` on a pty of 30 rows x 100 columns (python3's pty module, as seed-lab
/// does): types `lines` (`^C` is Ctrl-C, `@...` a line without waiting for MARK) and returns
/// the transcript and "exit=N".
fn interactive(p: &Podman, rt: &str, lines: &[&str]) -> String {
    let driver = r#"
import os, pty, select, sys, time, termios, struct, fcntl, json
lines = json.loads(sys.argv[1]); argv = sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    os.execvp(argv[0], argv)
buf = b""
def pump(secs, until=None):
    global buf
    end = time.time() + secs
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                d = os.read(fd, 4096)
            except OSError:
                return
            if not d:
                return
            buf += d
            if until and until.encode() in buf:
                return
pump(3)
for l in lines:
    if l == "^C":
        os.write(fd, b"\x03"); time.sleep(0.5)
    elif l.startswith("@"):
        os.write(fd, l[1:].encode() + b"\n"); time.sleep(1)
    else:
        os.write(fd, l.encode() + b"\n"); pump(5, "MARK")
pump(5)
_, st = os.waitpid(pid, 0)
print("exit=%d" % os.waitstatus_to_exitcode(st))
print(buf.decode(errors="replace"))
"#;
    let podman = p.cmd(rt);
    let mut c = command("python3");
    c.arg("-c")
        .arg(driver)
        .arg(serde_json::to_string(lines).unwrap());
    c.arg(podman.get_program()).args(podman.get_args());
    c.args(["run", "--rm", "-it"])
        .args(RUN_OPTS)
        .args([&p.image, "/bin/sh"]);
    let o = c.stdin(Stdio::null()).output().expect("python3");
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

#[test]
fn podman_run_it_has_a_tty_and_ctrl_c_reaches_the_command() {
    require_root();
    let p = Podman::new();
    for rt in ["runc", "rrun-oci"] {
        let out = interactive(
            &p,
            rt,
            &[
                "echo tty-$((40+2)); tty; stty size; echo MARK",
                "@sleep 30",
                "^C",
                "echo after-$((1+1)) MARK",
                "exit 3",
            ],
        );
        assert!(out.contains("tty-42"), "{rt}: {out}");
        assert!(out.contains("/dev/pts/0"), "{rt}: {out}");
        assert!(
            out.contains("30 100"),
            "{rt}: the window size follows: {out}"
        );
        assert!(
            out.contains("after-2"),
            "{rt}: Ctrl-C stopped sleep, the shell lived on: {out}"
        );
        assert!(out.contains("exit=3"), "{rt}: {out}");
    }
}
