//! rrun end to end, what a Docker user expects in the first hour (issue 10): `--tmpfs`
//! options, `rrun run IMAGE`, `ps` as Docker lists, names printed by stop and rm, RFC 3339 times,
//! the container's own cgroups at /sys/fs/cgroup, a log for named foreground runs, and no
//! records left behind by an rrun that was killed.

mod rrun_common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rbox_tests::unique;
use rrun_common::{output, Lab};

fn sub(lab: &Lab, args: &[&str]) -> std::process::Output {
    let mut c = lab.rrun();
    c.args(args);
    output(c, 60)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `rrun -d --name NAME --net none OPTS --image IMAGE -- ARGS`; returns the id.
fn detach(lab: &Lab, name: &str, opts: &[&str], args: &[&str]) -> String {
    let mut c = lab.rrun();
    c.args(["-d", "--name", name, "--net", "none"])
        .args(opts)
        .args(["--image", &lab.image, "--"])
        .args(args);
    let o = output(c, 30);
    assert!(o.status.success(), "rrun -d: {}", text(&o.stderr));
    text(&o.stdout).trim().to_string()
}

#[test]
fn tmpfs_takes_dockers_options_and_refuses_others_in_one_line() {
    let lab = Lab::new("hab");
    let script = "grep -E ' /(x|y|z) ' /proc/mounts | awk '{print $2, $4}'; \
                  stat -c '%a %u %g' /x; df -k /x | awk 'NR == 2 {print $2}'; \
                  ls -d /x:* 2>/dev/null || echo no-odd-dir; \
                  touch /y/f 2>/dev/null || echo y-read-only; \
                  cp /bin/busybox /z/busybox && /z/busybox echo z-exec; \
                  cp /bin/busybox /x/busybox && { /x/busybox echo x-exec 2>/dev/null || echo x-noexec; }";
    let out = lab.ok(
        &[
            "--tmpfs",
            "/x:size=1m,mode=1770,uid=5,gid=6",
            "--tmpfs",
            "/y:ro",
            "--tmpfs",
            "/z:exec",
        ],
        &["sh", "-c", script],
    );
    let lines: Vec<&str> = out.lines().collect();
    let opts = |p: &str| -> Vec<&str> {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{p} ")))
            .unwrap_or_else(|| panic!("{p} is not mounted: {out}"))
            .split(',')
            .collect()
    };
    let (x, y, z) = (opts("/x"), opts("/y"), opts("/z"));
    assert!(
        x.contains(&"noexec") && x.contains(&"nosuid") && x.contains(&"nodev") && x.contains(&"rw"),
        "Docker's defaults: {x:?}"
    );
    assert!(y.contains(&"ro"), "{y:?}");
    assert!(!z.contains(&"noexec"), "{z:?}");
    for want in [
        "1770 5 6",
        "1024",
        "no-odd-dir",
        "y-read-only",
        "z-exec",
        "x-noexec",
    ] {
        assert!(lines.contains(&want), "{want} missing: {out}");
    }
    for bad in ["/x:suid", "/x:size=lots", "/x:mode=9", "/x:nr_inodes=10"] {
        let o = lab.run(&["--tmpfs", bad], &["true"]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(125), "{bad}: {err}");
        assert!(
            err.lines().count() == 1 && err.contains("--tmpfs"),
            "{bad}: {err}"
        );
    }
    lab.assert_clean(&[]);
}

/// What an rrun killed while it made a container's folder leaves (observed: the folder and an
/// empty temporary state), and what an `rrun rm -f` killed after it removed state.json leaves
/// (the folder with the upper dir). Returns the ids.
fn leftovers(lab: &Lab) -> [String; 2] {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let id = |c: &str| {
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{}{:08x}{n:08x}", c.repeat(48), std::process::id())
    };
    let ids = [id("a"), id("b")];
    let d0 = lab.containers_dir().join(&ids[0]);
    std::fs::create_dir_all(&d0).unwrap();
    std::fs::write(d0.join(".state.json.tmp"), "").unwrap();
    let d1 = lab.containers_dir().join(&ids[1]).join("upper/var");
    std::fs::create_dir_all(&d1).unwrap();
    std::fs::write(d1.join("big"), vec![7u8; 1 << 20]).unwrap();
    std::fs::create_dir_all(lab.containers_dir().join(&ids[1]).join("work")).unwrap();
    ids
}

#[test]
fn records_left_by_a_killed_rrun_are_removed_by_the_next_command_and_rm_needs_no_f() {
    let lab = Lab::new("hab");
    // What kills leave is gone after the next `ps -a`, which lists none of it.
    let ids = leftovers(&lab);
    let o = sub(&lab, &["ps", "-a"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    for id in &ids {
        assert!(!text(&o.stdout).contains(&id[..12]), "{}", text(&o.stdout));
        assert!(!lab.containers_dir().join(id).exists(), "{id} left");
    }
    // ... after the next run too, and `rrun rm ID` removes such a record without -f.
    let ids = leftovers(&lab);
    assert!(lab.run(&[], &["true"]).status.success());
    assert!(ids.iter().all(|id| !lab.containers_dir().join(id).exists()));
    let ids = leftovers(&lab);
    for id in &ids {
        let o = sub(&lab, &["rm", &id[..12]]);
        assert!(o.status.success(), "rm {id}: {}", text(&o.stderr));
        assert!(!lab.containers_dir().join(id).exists());
    }

    // The real thing: rrun killed at random moments while it starts containers and while
    // `rm -f` removes them leaves nothing `ps -a` calls corrupt.
    let mut seed = std::process::id() as u64;
    let mut rand = move |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    for i in 0..60 {
        let mut c = lab.rrun();
        c.args(["--net", "none"]);
        if i % 2 == 0 {
            c.args(["--name", &unique("k")]);
        }
        if i % 3 != 0 {
            c.args(["--memory", "64m"]);
        }
        c.args(["--image", &lab.image, "--", "true"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = c.spawn().unwrap();
        std::thread::sleep(Duration::from_micros(rand(30_000)));
        let _ = child.kill();
        let _ = child.wait();
    }
    for _ in 0..12 {
        let name = unique("krm");
        detach(
            &lab,
            &name,
            &[],
            &["sh", "-c", "head -c 300000 /dev/zero > /f; sleep 100"],
        );
        std::thread::sleep(Duration::from_millis(200));
        let mut c = lab.rrun();
        c.args(["rm", "-f", &name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = c.spawn().unwrap();
        std::thread::sleep(Duration::from_micros(rand(25_000)));
        let _ = child.kill();
        let _ = child.wait();
    }
    std::thread::sleep(Duration::from_millis(300));
    let o = sub(&lab, &["ps", "-a"]);
    assert!(
        !text(&o.stdout).contains("corrupt"),
        "records left by killed rruns: {}",
        text(&o.stdout)
    );
    for id in lab.container_ids() {
        assert!(
            lab.containers_dir().join(&id).join("state.json").exists(),
            "{id} has no state.json after ps -a"
        );
    }
    lab.rm_all();
    lab.assert_clean(&[]);
}

#[test]
fn rm_right_after_the_command_ended_removes_the_container() {
    let lab = Lab::new("hab");
    for _ in 0..25 {
        let name = unique("end");
        let id = detach(&lab, &name, &[], &["sh", "-c", "echo done"]);
        let log = lab.containers_dir().join(&id).join("container.log");
        let start = Instant::now();
        while !std::fs::read(&log).unwrap_or_default().starts_with(b"done") {
            assert!(start.elapsed() < Duration::from_secs(10), "no output");
        }
        let o = sub(&lab, &["rm", &name]);
        assert!(
            o.status.success(),
            "rm right after the command ended: {}",
            text(&o.stderr)
        );
    }
    lab.assert_clean(&[]);
}

#[test]
fn logs_follow_into_a_closed_pipe_ends_quietly() {
    let lab = Lab::new("hab");
    let name = unique("lf");
    detach(
        &lab,
        &name,
        &[],
        &[
            "sh",
            "-c",
            "while true; do echo 0123456789; sleep 0.05; done",
        ],
    );
    let mut c = lab.rrun();
    c.args(["logs", "-f", &name])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut first = [0u8; 10];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap(); // the reader goes away here, as `head -c 10` does
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("logs -f went on writing into a closed pipe");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        matches!(status.code(), Some(0) | Some(141)),
        "{status}: {err}"
    );
    assert!(err.is_empty(), "a closed pipe is no error: {err}");
    assert!(sub(&lab, &["rm", "-f", &name]).status.success());
    lab.assert_clean(&[]);
}

#[test]
fn run_takes_the_image_then_the_command_in_dockers_order() {
    let lab = Lab::new("hab");
    let o = sub(
        &lab,
        &["run", "--net", "none", "alpine:3.15", "echo", "--name", "x"],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout),
        "--name x\n",
        "options after IMAGE are the command's"
    );
    let name = unique("run");
    let o = sub(
        &lab,
        &[
            "run",
            "--net",
            "none",
            "--name",
            &name,
            &lab.image[7..19],
            "sh",
            "-c",
            "exit 3",
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert_eq!(
        lab.inspect(&name)["image"].as_str(),
        Some(lab.image.as_str())
    );
    let o = sub(
        &lab,
        &[
            "--root",
            &lab.store.path().to_string_lossy(),
            "run",
            "--net",
            "none",
            "alpine:3.15",
        ],
    );
    assert!(
        o.status.success(),
        "the image's command: {}",
        text(&o.stderr)
    );
    let o = sub(&lab, &["run", "--net", "none"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(text(&o.stderr).contains("IMAGE"), "{}", text(&o.stderr));
    assert!(sub(&lab, &["rm", &name]).status.success());
    lab.assert_clean(&[]);
}

#[test]
fn pids_limit_minus_one_and_zero_mean_unlimited() {
    let lab = Lab::new("hab");
    for v in ["-1", "0"] {
        let name = unique("pl");
        let o = lab.run(&["--name", &name, "--pids-limit", v], &["true"]);
        assert!(o.status.success(), "--pids-limit {v}: {}", text(&o.stderr));
        assert!(lab.inspect(&name)["limits"]["pids"].is_null());
        assert!(sub(&lab, &["rm", &name]).status.success());
    }
    let o = lab.run(&["--pids-limit=-1"], &["true"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = lab.run(&["--pids-limit", "-2"], &["true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(text(&o.stderr).contains("--pids-limit"));
    lab.assert_clean(&[]);
}

#[test]
fn long_names_are_accepted_and_a_too_long_one_is_refused_for_its_length() {
    let lab = Lab::new("hab");
    let name = format!("{}{}", unique("long"), "x".repeat(200));
    assert!(lab.run(&["--name", &name], &["true"]).status.success());
    assert!(text(&sub(&lab, &["ps", "-a"]).stdout).contains(&name));
    assert!(sub(&lab, &["rm", &name]).status.success());
    let o = lab.run(&["--name", &"y".repeat(5000)], &["true"]);
    assert_eq!(o.status.code(), Some(125));
    let err = text(&o.stderr);
    assert!(err.contains("long") && err.contains("at most"), "{err}");
    lab.assert_clean(&[]);
}

#[test]
fn hostname_may_hold_an_underscore_and_host_network_keeps_the_hosts_name() {
    let lab = Lab::new("hab");
    assert_eq!(lab.ok(&["--hostname", "a_b"], &["hostname"]), "a_b");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let mut c = lab.rrun();
    c.args(["--net", "host", "--image", &lab.image, "--", "hostname"]);
    let o = output(c, 60);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).trim(), host.trim());
    lab.assert_clean(&[]);
}

#[test]
fn stop_and_rm_print_the_names_they_acted_on() {
    let lab = Lab::new("hab");
    let (a, b) = (unique("pa"), unique("pb"));
    detach(&lab, &a, &[], &["sleep", "1000"]);
    let id_b = detach(&lab, &b, &[], &["sleep", "1000"]);
    let o = sub(&lab, &["stop", "-t", "1", &a, &id_b[..12]]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), format!("{a}\n{}\n", &id_b[..12]));
    let o = sub(&lab, &["rm", &id_b[..12], "no-such-one", &a]);
    assert_eq!(o.status.code(), Some(125));
    assert_eq!(text(&o.stdout), format!("{}\n{a}\n", &id_b[..12]));
    lab.assert_clean(&[]);
}

/// Column start offsets of `ps`'s header.
fn columns(header: &str) -> Vec<usize> {
    [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "NAMES",
    ]
    .iter()
    .map(|h| {
        header
            .find(h)
            .unwrap_or_else(|| panic!("no {h} in {header}"))
    })
    .collect()
}

#[test]
fn ps_lists_newest_first_in_dockers_words_aligned_with_long_names() {
    let lab = Lab::new("hab");
    let old = format!("{}{}", unique("old"), "n".repeat(60));
    let mut c = lab.rrun();
    c.args([
        "-d",
        "--name",
        &old,
        "--net",
        "none",
        "--image",
        "alpine:3.15",
    ])
    .args(["--", "sleep", "1000"]);
    let o = output(c, 30);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let id_old = text(&o.stdout).trim().to_string();
    let o = sub(&lab, &["stop", "-t", "5", &old]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    std::thread::sleep(Duration::from_millis(1100));
    let new = unique("new");
    let mut c = lab.rrun();
    c.args([
        "-d",
        "--name",
        &new,
        "--net",
        "none",
        "--image",
        &lab.image[7..19],
    ])
    .args([
        "--",
        "sh",
        "-c",
        "sleep 1000; echo a long command line here",
    ]);
    let o = output(c, 30);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let id_new = text(&o.stdout).trim().to_string();

    let out = text(&sub(&lab, &["ps", "-a"]).stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let cols = columns(lines[0]);
    let cell = |l: &str, i: usize| -> String {
        let end = cols.get(i + 1).copied().unwrap_or(l.len());
        l.chars()
            .skip(cols[i])
            .take(end - cols[i])
            .collect::<String>()
            .trim()
            .to_string()
    };
    // newest first
    assert!(
        lines[1].starts_with(&id_new[..12]) && lines[2].starts_with(&id_old[..12]),
        "{out}"
    );
    let (n, o) = (lines[1], lines[2]);
    assert_eq!(
        cell(n, 1),
        &lab.image[7..19],
        "an image named by id shows as 12 digits: {out}"
    );
    assert_eq!(
        cell(o, 1),
        "alpine:3.15",
        "an image named by tag shows the tag: {out}"
    );
    assert_eq!(cell(n, 2), "\"sh -c sleep 1000; e…\"", "{out}");
    assert_eq!(cell(o, 2), "\"sleep 1000\"", "{out}");
    assert!(
        cell(n, 3).ends_with(" ago") && cell(o, 3).ends_with(" ago"),
        "{out}"
    );
    assert!(cell(n, 4).starts_with("Up "), "{out}");
    assert!(
        cell(o, 4).starts_with("Exited (143) ") && cell(o, 4).ends_with(" ago"),
        "{out}"
    );
    assert_eq!(cell(o, 5), old, "{out}");
    assert_eq!(cell(n, 5), new, "{out}");
    // every cell starts where its header does (in characters, as a terminal shows them)
    for l in &lines[1..] {
        let b: Vec<char> = l.chars().collect();
        for &c in &cols[1..] {
            assert!(b[c - 1] == ' ' && b[c] != ' ', "misaligned at {c}: {out}");
        }
    }
    // without -a only the running one; -q gives ids; --format json one object per line
    assert_eq!(
        text(&sub(&lab, &["ps", "-q"]).stdout),
        format!("{}\n", &id_new[..12])
    );
    assert_eq!(
        text(&sub(&lab, &["ps", "-aq", "--no-trunc"]).stdout),
        format!("{id_new}\n{id_old}\n")
    );
    let json = text(&sub(&lab, &["ps", "-a", "--format", "json"]).stdout);
    let rows: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(rows.len(), 2, "{json}");
    assert_eq!(rows[0]["Names"], new.as_str());
    assert_eq!(rows[0]["State"], "running");
    assert_eq!(rows[1]["State"], "exited");
    assert!(rows[1]["Status"]
        .as_str()
        .unwrap()
        .starts_with("Exited (143)"));
    assert!(sub(&lab, &["rm", "-f", &old, &new]).status.success());
    lab.assert_clean(&[]);
}

/// `date -u` as RFC 3339 to the second.
fn utc_now() -> String {
    let o = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%S"])
        .output()
        .unwrap();
    text(&o.stdout).trim().to_string()
}

fn is_rfc3339_nanos(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.into_iter().all(|i| b[i].is_ascii_digit());
    b.len() == 30
        && digits(0..4)
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'.'
        && digits(20..29)
        && b[29] == b'Z'
}

#[test]
fn inspect_gives_every_time_in_rfc3339() {
    let lab = Lab::new("hab");
    let name = unique("t");
    let before = utc_now();
    assert!(lab.run(&["--name", &name], &["true"]).status.success());
    let after = utc_now();
    let v = lab.inspect(&name);
    for key in ["created", "started_at", "finished_at"] {
        let t = v[key].as_str().unwrap_or_else(|| panic!("{key}: {v}"));
        assert!(is_rfc3339_nanos(t), "{key}: {t}");
        assert!(
            before.as_str() <= &t[..19] && &t[..19] <= after.as_str(),
            "{key}: {t} not in [{before}, {after}]"
        );
    }
    assert!(sub(&lab, &["rm", &name]).status.success());
    lab.assert_clean(&[]);
}

#[test]
fn the_container_sees_its_own_cgroup_read_only_at_sys_fs_cgroup() {
    let lab = Lab::new("hab");
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let (limit, procs) = if v2 {
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/cgroup.procs")
    } else {
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/cgroup.procs",
        )
    };
    let script = format!(
        "cat {limit}; cat {procs} | tr '\\n' ' '; echo; \
         echo 1 > {limit} 2>/dev/null && echo WROTE || echo refused; \
         mkdir {procs}.d 2>/dev/null && echo MADE || echo refused; \
         awk '$2 ~ \"^/sys/fs/cgroup\" {{split($4, o, \",\"); print $2, o[1]}}' /proc/mounts"
    );
    let out = lab.ok(&["--memory", "32m"], &["sh", "-c", &script]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("33554432"),
        "the --memory limit: {out}"
    );
    assert!(
        lines[1].split_whitespace().any(|p| p == "1"),
        "its own cgroup (PID 1 in it): {out}"
    );
    assert_eq!(&lines[2..4], ["refused", "refused"], "{out}");
    let mounts = &lines[4..];
    assert!(
        !mounts.is_empty() && mounts.iter().all(|l| l.ends_with(" ro")),
        "{out}"
    );
    if !v2 {
        assert!(mounts.contains(&"/sys/fs/cgroup/memory ro"), "{out}");
    }
    // Without limits (and outside any of its hierarchies) nothing of the caller's shows.
    let out = lab.ok(
        &[],
        &["sh", "-c", "ls /sys/fs/cgroup; cat /proc/self/cgroup"],
    );
    assert!(!out.lines().any(|l| l == "memory"), "{out}");
    lab.assert_clean(&[]);
}

#[test]
fn a_named_foreground_container_keeps_a_log_and_its_streams_stay_apart() {
    let lab = Lab::new("hab");
    let name = unique("fg");
    let o = lab.run(
        &["--name", &name],
        &["sh", "-c", "echo out; echo err >&2; exit 4"],
    );
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(text(&o.stdout), "out\n");
    assert_eq!(text(&o.stderr), "err\n");
    let logs = sub(&lab, &["logs", &name]);
    assert!(logs.status.success(), "{}", text(&logs.stderr));
    let mut got: Vec<String> = text(&logs.stdout).lines().map(str::to_string).collect();
    got.sort();
    assert_eq!(got, ["err", "out"]);
    // With -t the log is what the terminal showed.
    let tname = unique("fgt");
    let o = lab.run(&["-t", "--name", &tname], &["echo", "on-a-tty"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let logs = sub(&lab, &["logs", &tname]);
    assert!(
        text(&logs.stdout).contains("on-a-tty"),
        "{}",
        text(&logs.stderr)
    );
    assert!(sub(&lab, &["rm", &name, &tname]).status.success());
    lab.assert_clean(&[]);
}
