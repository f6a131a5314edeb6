//! rrun's cgroup limits end to end: the real rrun and rbuild binaries, an Alpine image, the real
//! kernel (v1, v2 or hybrid). What a user sees: exit codes, messages, what the container can use,
//! and that nothing is left in any cgroup hierarchy afterwards.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rbox_tests::{alpine_fixture, cmd, require_root, unique, Scratch};

/// A store holding one Alpine image; containers started through it are removed on drop.
struct Lab {
    store: Scratch,
    image: String,
    names: Vec<String>,
}

impl Lab {
    fn new() -> Lab {
        require_root();
        let store = Scratch::new("cg");
        let layer = stdout_line(
            cmd("rbuild")
                .env("RBOX_ROOT", store.path())
                .arg("layer")
                .arg("add")
                .arg(alpine_fixture("3.20.3")),
        );
        let image = stdout_line(
            cmd("rbuild")
                .env("RBOX_ROOT", store.path())
                .args(["image", "create", &layer]),
        );
        assert!(
            image.starts_with("sha256:"),
            "image create printed {image:?}"
        );
        Lab {
            store,
            image,
            names: Vec::new(),
        }
    }

    fn rrun(&self) -> Command {
        let mut c = cmd("rrun");
        c.env("RBOX_ROOT", self.store.path());
        c
    }

    /// `rrun --net none LIMITS... --image IMG -- ARGS...`, waited for up to `secs`.
    fn run(&self, limits: &[&str], args: &[&str], secs: u64) -> Output {
        let mut c = self.rrun();
        c.args(["--net", "none"])
            .args(limits)
            .args(["--image", &self.image, "--"])
            .args(args);
        output(c, secs)
    }

    /// A detached, named container; returns the host pid of its PID 1 and its id.
    fn detach(&mut self, limits: &[&str], args: &[&str]) -> (String, i32, String) {
        let name = unique("cg");
        let mut c = self.rrun();
        c.args(["-d", "--name", &name, "--net", "none"])
            .args(limits)
            .args(["--image", &self.image, "--"])
            .args(args);
        let out = output(c, 30);
        assert!(out.status.success(), "rrun -d failed: {}", text(&out));
        self.names.push(name.clone());
        let inspect = self.inspect(&name);
        let pid = field(&inspect, "pid")
            .parse()
            .unwrap_or_else(|_| panic!("no pid in {inspect}"));
        let id = field(&inspect, "id").trim_matches('"').to_string();
        assert!(pid > 0, "{inspect}");
        (name, pid, id)
    }

    fn inspect(&self, name: &str) -> String {
        let mut c = self.rrun();
        c.args(["inspect", name]);
        let out = output(c, 10);
        assert!(out.status.success(), "inspect {name}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn rm_f(&self, name: &str) -> Output {
        let mut c = self.rrun();
        c.args(["rm", "-f", name]);
        output(c, 60)
    }

    fn ps_a(&self) -> String {
        let mut c = self.rrun();
        c.args(["ps", "-a"]);
        String::from_utf8_lossy(&output(c, 10).stdout).into_owned()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = self.rm_f(n);
        }
    }
}

/// Runs `c` with stdin closed, killing it after `secs`.
fn output(mut c: Command, secs: u64) -> Output {
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > until {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("{c:?} did not end within {secs} s: {}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stdout_line(c: &mut Command) -> String {
    let out = c.output().expect("spawn");
    assert!(out.status.success(), "{c:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The raw value of a top-level field of a flat JSON object ("pid": 123 -> "123").
fn field(json: &str, key: &str) -> String {
    let k = format!("\"{key}\"");
    let Some(at) = json.find(&k) else {
        return String::new();
    };
    let rest = json[at + k.len()..]
        .trim_start()
        .trim_start_matches(':')
        .trim_start();
    rest.split([',', '}', '\n'])
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Pids of `root` and all its descendants.
fn tree(root: i32) -> Vec<i32> {
    let mut kids: Vec<(i32, i32)> = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, after)) = stat.rsplit_once(')') else {
            continue;
        };
        if let Some(ppid) = after.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
            kids.push((ppid, pid));
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(kids.iter().filter(|k| k.0 == p).map(|k| k.1));
        i += 1;
    }
    out
}

/// utime + stime clock ticks of a process tree.
fn ticks(root: i32) -> u64 {
    tree(root)
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
        .filter_map(|s| {
            let f: Vec<u64> = s
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|x| x.parse().ok())
                .collect();
            Some(f.iter().sum::<u64>())
        })
        .sum()
}

/// Every directory called `rbox-<id>` in any cgroup hierarchy mounted on this machine.
fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let want = format!("rbox-{id}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut todo: Vec<(PathBuf, usize)> = mounts
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            right
                .starts_with("cgroup")
                .then(|| (PathBuf::from(point), 0))
        })
        .collect();
    let mut found = Vec::new();
    while let Some((dir, depth)) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                if e.file_name().to_string_lossy() == want {
                    found.push(e.path());
                } else if depth < 6 {
                    todo.push((e.path(), depth + 1));
                }
            }
        }
    }
    found
}

/// The container folders in the lab's store.
fn containers(lab: &Lab) -> Vec<String> {
    std::fs::read_dir(lab.store.join("containers"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn stderr_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn memory_limit_oom_kill_exits_137_with_a_message() {
    let lab = Lab::new();
    let out = lab.run(
        &["--memory", "32m"],
        &["sh", "-c", "head -c 200m /dev/zero | tail > /dev/null"],
        60,
    );
    assert_eq!(out.status.code(), Some(137), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        err.contains("oom") || err.contains("out of memory"),
        "no OOM message: {}",
        text(&out)
    );
}

/// The command's own status comes back when the OOM killer ended one of its processes and the
/// command went on (Docker's contract: the exit code is the command's, OOMKilled is apart).
#[test]
fn an_oom_kill_the_command_survives_keeps_its_status_and_is_reported() {
    let mut lab = Lab::new();
    let name = unique("oom");
    let mut c = lab.rrun();
    c.args(["--name", &name, "--net", "none", "--memory", "32m"])
        .args(["--image", &lab.image, "--"])
        .args([
            "sh",
            "-c",
            "head -c 200m /dev/zero | tail > /dev/null; echo tail=$?; exit 3",
        ]);
    let out = output(c, 60);
    lab.names.push(name.clone());
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "tail=137");
    // the shell says "Killed" for its pipeline; rrun says one line of its own
    let err = String::from_utf8_lossy(&out.stderr);
    let ours: Vec<&str> = err.lines().filter(|l| l.starts_with("rrun: ")).collect();
    assert!(
        ours.len() == 1
            && ours[0].contains("a process of container")
            && ours[0].contains("OOM killer"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_str(&lab.inspect(&name)).unwrap();
    assert_eq!(
        (v["exit_code"].as_i64(), v["oom_killed"].as_bool()),
        (Some(3), Some(true)),
        "{v}"
    );
}

#[test]
fn without_a_memory_limit_the_same_stream_succeeds() {
    let lab = Lab::new();
    let out = lab.run(
        &[],
        &["sh", "-c", "head -c 200m /dev/zero | tail > /dev/null"],
        60,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn memory_6m_still_runs_a_shell() {
    let lab = Lab::new();
    let out = lab.run(
        &["--memory", "6m"],
        &["sh", "-c", "ls /bin > /dev/null && echo alive"],
        30,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "alive");
}

#[test]
fn cpuset_cpus_0_pins_the_container_to_cpu_0() {
    let lab = Lab::new();
    let out = lab.run(
        &["--cpuset-cpus", "0"],
        &["awk", "/Cpus_allowed_list/ {print $2}", "/proc/self/status"],
        30,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
}

#[test]
fn cpus_half_gives_a_busy_loop_about_half_a_cpu() {
    let mut lab = Lab::new();
    let (name, pid, _) = lab.detach(&["--cpus", "0.5"], &["sh", "-c", "while :; do :; done"]);
    // The same loop unlimited on the host, over the same window: on a busy machine (other tests,
    // 2 shared cores) neither gets a full CPU, and the limited one can only be judged against it.
    let mut reference = rbox_tests::command("sh")
        .args(["-c", "while :; do :; done"])
        .spawn()
        .expect("spawn");
    let rpid = reference.id() as i32;
    std::thread::sleep(Duration::from_millis(500));
    let (a, ra) = (ticks(pid), ticks(rpid));
    std::thread::sleep(Duration::from_secs(3));
    let (b, rb) = (ticks(pid), ticks(rpid));
    let _ = reference.kill();
    let _ = reference.wait();
    let (d, r) = (b - a, rb - ra);
    // USER_HZ is 100: 3 s at half a CPU is 150 ticks, a whole CPU 300.
    assert!(
        d <= 200,
        "{d} ticks in 3 s at --cpus 0.5 (the unlimited loop had {r})"
    );
    assert!(
        d * 2 >= r.min(150),
        "{d} ticks in 3 s at --cpus 0.5 is far below its share (the unlimited loop had {r})"
    );
    let out = lab.rm_f(&name);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn pids_limit_holds_and_rm_f_ends_the_container_quickly() {
    let mut lab = Lab::new();
    // busybox ash exits at its first failed fork, so the forks happen in a subshell that may die
    // and the shell then execs (no fork) to stay in the container at its limit.
    let (name, pid, _) = lab.detach(
        &["--pids-limit", "12"],
        &[
            "sh",
            "-c",
            "(for i in $(seq 40); do sleep 30 & done) 2>/dev/null; exec sleep 30",
        ],
    );
    std::thread::sleep(Duration::from_secs(2));
    let n = tree(pid).len();
    // 12 when the subshell hit the limit, 11 once it died of it: the limit was reached and held.
    assert!((10..=12).contains(&n), "{n} tasks under --pids-limit 12");
    let t = Instant::now();
    let out = lab.rm_f(&name);
    let took = t.elapsed();
    assert!(out.status.success(), "{}", text(&out));
    assert!(took < Duration::from_secs(15), "rm -f took {took:?}");
    assert!(!lab.ps_a().contains(&name), "{name} still listed");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "PID 1 {pid} still alive"
    );
}

#[test]
fn a_container_lives_in_every_limited_hierarchy_and_rm_leaves_none() {
    let mut lab = Lab::new();
    let limits = [
        "--memory",
        "64m",
        "--cpus",
        "1",
        "--cpuset-cpus",
        "0",
        "--pids-limit",
        "50",
    ];
    let (name, pid, id) = lab.detach(&limits, &["sleep", "300"]);
    let dirs = cgroup_dirs(&id);
    let lines = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let joined = lines
        .lines()
        .filter(|l| l.ends_with(&format!("/rbox-{id}")))
        .count();
    let pure_v2 = std::fs::read_to_string("/proc/self/cgroup")
        .unwrap()
        .lines()
        .all(|l| l.starts_with("0::"));
    if pure_v2 {
        assert_eq!(dirs.len(), 1, "one cgroup on a pure v2 machine: {dirs:?}");
    } else {
        assert!(
            dirs.len() >= 4,
            "memory, cpu, cpuset and pids at least: {dirs:?}"
        );
    }
    assert_eq!(
        joined,
        dirs.len(),
        "PID 1 is in every cgroup made for it:\n{lines}{dirs:?}"
    );
    // inspect lists those cgroups, no other (none that creation only might have made)
    let v: serde_json::Value = serde_json::from_str(&lab.inspect(&name)).unwrap();
    let mut listed: Vec<PathBuf> = v["cgroup_paths"]
        .as_array()
        .expect("cgroup_paths")
        .iter()
        .map(|p| PathBuf::from(p.as_str().unwrap()))
        .collect();
    listed.sort();
    let mut want = dirs.clone();
    want.sort();
    assert_eq!(listed, want, "inspect's cgroup_paths");
    let out = lab.rm_f(&name);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        cgroup_dirs(&id),
        Vec::<PathBuf>::new(),
        "left behind after rm -f"
    );
}

#[test]
fn a_run_that_ends_by_itself_leaves_no_cgroup() {
    let lab = Lab::new();
    let marker = unique("mark");
    let out = lab.run(
        &["--memory", "64m", "--pids-limit", "20"],
        &["sh", "-c", &format!("cat /proc/self/cgroup; echo {marker}")],
        30,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        containers(&lab).is_empty(),
        "an unnamed run is removed: {:?}",
        containers(&lab)
    );
    // Inside its cgroup namespace the container sees itself at the root of each hierarchy.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .filter(|l| l.contains(':'))
            .all(|l| l.ends_with(":/")),
        "{stdout}"
    );
    assert!(!stdout.contains("rbox-"), "{stdout}");
}

#[test]
fn junk_limits_are_refused_with_one_clear_line() {
    let lab = Lab::new();
    let cases: [(&[&str], &str); 7] = [
        (&["--memory", "lots"], "invalid size"),
        (&["--memory", "0"], "invalid size"),
        (&["--memory", "1k"], "below the minimum"),
        (&["--cpus", "0"], "invalid cpus"),
        (&["--cpus", "4096"], "online cpus"),
        (&["--cpus", "half"], "invalid cpus"),
        (&["--cpuset-cpus", "0-4095"], "not allowed"),
    ];
    for (limits, want) in cases {
        let out = lab.run(limits, &["true"], 30);
        assert_eq!(out.status.code(), Some(125), "{limits:?}: {}", text(&out));
        let lines = stderr_lines(&out);
        assert_eq!(
            lines.len(),
            1,
            "{limits:?}: one line wanted: {}",
            text(&out)
        );
        assert!(
            lines[0].starts_with("rrun: ") && lines[0].contains(want),
            "{limits:?}: {}",
            lines[0]
        );
    }
    assert!(
        containers(&lab).is_empty(),
        "a refused run leaves no container: {:?}",
        containers(&lab)
    );
}
