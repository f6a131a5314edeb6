//! rrun end to end, the lifecycle: named and detached containers, logs, ps, inspect, exec,
//! stop, kill, rm, and recovery after rrun itself was killed.

mod rrun_common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use rbox_tests::unique;
use rrun_common::{cgroup_exists, eventually, output, Lab};

fn detach(lab: &Lab, name: &str, opts: &[&str], args: &[&str]) -> String {
    let mut c = lab.rrun();
    c.args(["-d", "--name", name, "--net", "none"])
        .args(opts)
        .args(["--image", &lab.image, "--"])
        .args(args);
    let o = output(c, 30);
    assert!(
        o.status.success(),
        "rrun -d failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let id = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert_eq!(id.len(), 64, "rrun -d prints the id: {id:?}");
    id
}

fn sub(lab: &Lab, args: &[&str]) -> std::process::Output {
    let mut c = lab.rrun();
    c.args(args);
    output(c, 60)
}

fn ps(lab: &Lab, all: bool) -> String {
    let o = sub(lab, if all { &["ps", "-a"] } else { &["ps"] });
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn named_container_is_kept_after_exit_until_rm() {
    let lab = Lab::new("life");
    let name = unique("keep");
    assert_eq!(
        lab.run(&["--name", &name], &["sh", "-c", "exit 3"])
            .status
            .code(),
        Some(3)
    );
    let v = lab.inspect(&name);
    assert_eq!(
        (
            v["status"].as_str(),
            v["exit_code"].as_i64(),
            v["pid"].as_i64()
        ),
        (Some("exited"), Some(3), Some(0))
    );
    assert_eq!(v["image"].as_str(), Some(lab.image.as_str()));
    assert_eq!(v["network"]["mode"].as_str(), Some("none"));
    assert!(v["network"]["ip"].is_null() && v["ports"].as_array().is_some_and(|p| p.is_empty()));
    assert!(!ps(&lab, false).contains(&name) && ps(&lab, true).contains(&name));
    // The name is taken while the container exists.
    let o = lab.run(&["--name", &name], &["true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("in use"));
    // rbuild refuses to remove an image a container uses.
    let o = lab
        .rbuild()
        .args(["image", "rm", &lab.image])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "image rm must refuse while a container uses it"
    );
    assert!(sub(&lab, &["rm", &name]).status.success());
    assert!(!ps(&lab, true).contains(&name));
    lab.assert_clean(&[]);
}

#[test]
fn default_hostname_is_the_first_twelve_digits_of_the_id() {
    let lab = Lab::new("life");
    let name = unique("hn");
    let host = lab.ok(&["--name", &name], &["hostname"]);
    let id = lab.inspect(&name)["id"].as_str().unwrap().to_string();
    assert_eq!(host, id[..12]);
    assert!(sub(&lab, &["rm", &name]).status.success());
}

#[test]
fn detached_container_keeps_its_output_and_exit_code() {
    let lab = Lab::new("life");
    let name = unique("lg");
    detach(
        &lab,
        &name,
        &[],
        &["sh", "-c", "echo line1; echo line2 >&2; exit 5"],
    );
    assert!(eventually(10, || lab.inspect(&name)["status"] == "exited"));
    assert_eq!(lab.inspect(&name)["exit_code"].as_i64(), Some(5));
    let o = sub(&lab, &["logs", &name]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "line1\nline2\n");
    let id = lab.inspect(&name)["id"].as_str().unwrap().to_string();
    assert!(
        sub(&lab, &["rm", &id[..12]]).status.success(),
        "rm by id prefix"
    );
    assert!(!cgroup_exists(&id));
    lab.assert_clean(&[]);
}

#[test]
fn exec_joins_every_namespace_and_the_cgroup() {
    let lab = Lab::new("life");
    let name = unique("ex");
    let id = detach(
        &lab,
        &name,
        &["--hostname", "exhost", "-e", "CVAR=1", "--pids-limit", "50"],
        &["sleep", "1000"],
    );
    assert!(ps(&lab, false).contains(&name));
    let pid = lab.inspect(&name)["pid"].as_i64().unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    let o = sub(&lab, &["exec", &name, "sh", "-c", "hostname; cat /proc/1/comm; echo $CVAR; id -u; cat /proc/self/uid_map | awk '{print $2}'"]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        &lines[..4],
        ["exhost", "rinit", "1", "0"],
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_ne!(
        lines[4], "0",
        "exec runs as the container's unprivileged root"
    );
    for ns in ["uts", "pid", "mnt", "net", "ipc", "user", "cgroup"] {
        let o = sub(
            &lab,
            &["exec", &name, "readlink", &format!("/proc/self/ns/{ns}")],
        );
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim(),
            theirs.to_string_lossy(),
            "{ns}"
        );
    }
    let o = sub(
        &lab,
        &[
            "exec",
            "-u",
            "1000:1000",
            "-w",
            "/tmp",
            "-e",
            "X=y",
            &name,
            "sh",
            "-c",
            "echo $(id -u) $(pwd) $X",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "1000 /tmp y");
    assert_eq!(
        sub(&lab, &["exec", &name, "sh", "-c", "exit 9"])
            .status
            .code(),
        Some(9)
    );
    assert_eq!(
        sub(&lab, &["exec", &name, "no-such-cmd"]).status.code(),
        Some(127)
    );
    // The exec'd process is in the container's cgroup: it shows as / in its cgroup namespace.
    let o = sub(&lab, &["exec", &name, "cat", "/proc/self/cgroup"]);
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .all(|l| l.ends_with(":/")),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(sub(&lab, &["rm", "-f", &name]).status.success());
    assert!(!cgroup_exists(&id));
    assert!(!ps(&lab, true).contains(&name));
    lab.assert_clean(&[]);
}

/// A namespace the container shares with the host (`--net host`) is left as it is; exec
/// joins every other one. (Joining the host's network namespace after the container's user
/// namespace would need rights the container's root does not have.)
#[test]
fn exec_into_a_host_network_container_keeps_the_hosts_network_namespace() {
    let lab = Lab::new("life");
    let name = unique("exh");
    let mut c = lab.rrun();
    c.args(["-d", "--name", &name, "--net", "host"])
        .args(["--image", &lab.image, "--", "sleep", "1000"]);
    let o = output(c, 30);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pid = lab.inspect(&name)["pid"].as_i64().unwrap();
    let mut seen = Vec::new();
    for ns in ["net", "mnt", "pid", "user"] {
        let o = sub(
            &lab,
            &["exec", &name, "readlink", &format!("/proc/self/ns/{ns}")],
        );
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        let hosts = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        seen.push((
            ns,
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).trim() == theirs.to_string_lossy(),
            theirs == hosts,
        ));
    }
    assert!(sub(&lab, &["rm", "-f", &name]).status.success());
    assert_eq!(
        seen,
        [
            ("net", Some(0), true, true),
            ("mnt", Some(0), true, false),
            ("pid", Some(0), true, false),
            ("user", Some(0), true, false),
        ],
        "(namespace, exit code, exec's is the container's, the container's is the host's)"
    );
    lab.assert_clean(&[]);
}

#[test]
fn stop_delivers_sigterm_through_rinit_then_sigkill_after_the_grace() {
    let lab = Lab::new("life");
    let name = unique("st");
    detach(&lab, &name, &[], &["sleep", "1000"]);
    let t = Instant::now();
    assert!(sub(&lab, &["stop", "-t", "20", &name]).status.success());
    assert!(t.elapsed() < Duration::from_secs(5));
    let v = lab.inspect(&name);
    assert_eq!(
        (v["status"].as_str(), v["exit_code"].as_i64()),
        (Some("exited"), Some(143))
    );
    // A command that ignores SIGTERM is killed after -t seconds.
    let name2 = unique("st");
    detach(
        &lab,
        &name2,
        &[],
        &[
            "sh",
            "-c",
            "trap '' TERM; echo trap-set; while :; do sleep 1; done",
        ],
    );
    assert!(
        eventually(20, || String::from_utf8_lossy(
            &sub(&lab, &["logs", &name2]).stdout
        )
        .contains("trap-set")),
        "the trap is set"
    );
    let t = Instant::now();
    assert!(sub(&lab, &["stop", "-t", "1", &name2]).status.success());
    assert!(
        t.elapsed() >= Duration::from_millis(900) && t.elapsed() < Duration::from_secs(10),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(lab.inspect(&name2)["status"].as_str(), Some("exited"));
    assert!(sub(&lab, &["rm", &name, &name2]).status.success());
    lab.assert_clean(&[]);
}

#[test]
fn kill_sends_the_signal_and_rm_refuses_a_running_container() {
    let lab = Lab::new("life");
    let name = unique("k");
    detach(&lab, &name, &[], &["sleep", "1000"]);
    let o = sub(&lab, &["rm", &name]);
    assert_eq!(o.status.code(), Some(125), "rrun's own failure");
    assert!(String::from_utf8_lossy(&o.stderr).contains("rm -f"));
    assert!(sub(&lab, &["kill", "-s", "USR1", &name]).status.success());
    assert!(eventually(10, || lab.inspect(&name)["status"] == "exited"));
    assert_eq!(lab.inspect(&name)["exit_code"].as_i64(), Some(128 + 10));
    let o = sub(&lab, &["kill", "-s", "NOPE", &name]);
    assert_eq!(o.status.code(), Some(125));
    assert!(sub(&lab, &["rm", &name]).status.success());
    // A missing container is rrun's failure (125) for every subcommand, in one line.
    for cmd in [
        &["rm", "no-such-container"][..],
        &["rm", "-f", "no-such-container"],
        &["stop", "no-such-container"],
        &["kill", "no-such-container"],
    ] {
        let o = sub(&lab, cmd);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(125), "{cmd:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{cmd:?}: {err}");
        assert!(
            err.contains("no such container: no-such-container"),
            "{cmd:?}: {err}"
        );
    }
    lab.assert_clean(&[]);
}

#[test]
fn a_container_whose_rrun_was_killed_is_listed_and_removed_by_rm_f() {
    let lab = Lab::new("life");
    let name = unique("orph");
    let mut c = lab.rrun();
    c.args([
        "--name", &name, "--net", "none", "--image", &lab.image, "--", "sleep", "1000",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    assert!(eventually(10, || ps(&lab, false).contains(&name)));
    let pid = lab.inspect(&name)["pid"].as_i64().unwrap();
    child.kill().unwrap(); // SIGKILL to rrun itself
    let _ = child.wait();
    assert!(
        ps(&lab, false).contains(&name),
        "the container outlives its rrun and is listed"
    );
    assert_eq!(lab.inspect(&name)["status"].as_str(), Some("running"));
    let id = lab.inspect(&name)["id"].as_str().unwrap().to_string();
    assert!(sub(&lab, &["rm", "-f", &name]).status.success());
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || eventually(5, || !std::path::Path::new(&format!("/proc/{pid}"))
                .exists())
    );
    assert!(!ps(&lab, true).contains(&name));
    assert!(!cgroup_exists(&id));
    lab.assert_clean(&[]);
}

#[test]
fn foreground_run_forwards_sigterm_to_the_command() {
    let lab = Lab::new("life");
    let mut c = lab.rrun();
    c.args([
        "--net",
        "none",
        "--image",
        &lab.image,
        "--",
        "sh",
        "-c",
        "echo started; exec sleep 1000",
    ]);
    // The command printed: rrun has blocked and handles its signals since before the clone.
    let (mut child, first) = rrun_common::spawn_until_first_line(&mut c);
    assert_eq!(first, "started");
    assert!(rbox_tests::command("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let t = Instant::now();
    let st = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "rrun did not end after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(st.code(), Some(143));
    lab.assert_clean(&[]);
}

/// Writes a changed state.json of container `name` through `f` (as a hostile or broken
/// store would hold it) and returns the container's folder name.
fn tamper(lab: &Lab, name: &str, f: impl FnOnce(&mut serde_json::Value)) -> String {
    let id = lab.inspect(name)["id"].as_str().unwrap().to_string();
    let p = lab.containers_dir().join(&id).join("state.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
    id
}

#[test]
fn a_state_json_id_naming_a_path_is_refused_listed_as_corrupt_and_rm_f_removes_only_the_folder() {
    let lab = Lab::new("life");
    let victim = rbox_tests::Scratch::new("victim");
    std::fs::write(victim.join("keep"), "x").unwrap();
    let name = unique("evil");
    assert!(lab.run(&["--name", &name], &["true"]).status.success());
    let folder = tamper(&lab, &name, |v| {
        v["id"] = victim.path().to_string_lossy().into()
    });
    // The record is no container any more: rm by name finds nothing and deletes nothing.
    for args in [&["rm", &name][..], &["rm", "-f", &name]] {
        let o = sub(&lab, args);
        assert_eq!(o.status.code(), Some(125));
        assert!(String::from_utf8_lossy(&o.stderr).contains("no such container"));
    }
    assert!(
        victim.join("keep").exists(),
        "a path named in state.json was removed"
    );
    let o = sub(&lab, &["ps", "-a"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out
        .lines()
        .find(|l| l.starts_with(&folder[..12]))
        .unwrap_or_else(|| panic!("ps -a does not list the bad record: {out}"));
    assert!(line.contains("corrupt"), "{line}");
    // Without -f rm says what to do; with -f (by the id ps shows) it removes the folder only.
    let o = sub(&lab, &["rm", &folder[..12]]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("rm -f"));
    assert!(sub(&lab, &["rm", "-f", &folder[..12]]).status.success());
    assert!(!lab.containers_dir().join(&folder).exists());
    assert!(victim.join("keep").exists());
    lab.assert_clean(&[]);
}

#[test]
fn a_non_ascii_id_or_other_bad_fields_in_state_json_do_not_break_ps() {
    let lab = Lab::new("life");
    let mut folders = Vec::new();
    let bad: [(&str, serde_json::Value); 5] = [
        ("id", "é".repeat(64).into()),
        ("name", "../x".into()),
        ("image", "sha256:/etc".into()),
        ("pid", (-1).into()),
        (
            "cgroup_paths",
            serde_json::json!(["/sys/fs/cgroup/unified"]),
        ),
    ];
    for (field, value) in bad {
        let name = unique("bad");
        assert!(lab.run(&["--name", &name], &["true"]).status.success());
        folders.push(tamper(&lab, &name, |v| v[field] = value));
    }
    // A file that is no JSON at all, and a folder that is no container's.
    let name = unique("bad");
    assert!(lab.run(&["--name", &name], &["true"]).status.success());
    let id = lab.inspect(&name)["id"].as_str().unwrap().to_string();
    std::fs::write(
        lab.containers_dir().join(&id).join("state.json"),
        "{\"id\": \"\u{1F600}",
    )
    .unwrap();
    folders.push(id);
    std::fs::create_dir(lab.containers_dir().join("not-a-container")).unwrap();
    let o = sub(&lab, &["ps", "-a"]);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        !err.contains("panicked") && err.lines().count() == 1 && err.contains("not-a-container"),
        "one warning line: {err}"
    );
    for f in &folders {
        assert!(
            out.lines()
                .any(|l| l.starts_with(&f[..12]) && l.contains("corrupt")),
            "{f} not listed as corrupt: {out}"
        );
        assert!(sub(&lab, &["rm", "-f", f]).status.success());
    }
    std::fs::remove_dir(lab.containers_dir().join("not-a-container")).unwrap();
    lab.assert_clean(&[]);
}

/// A recorded cgroup path is trusted for its name only if nothing on the way is a link: a
/// state.json naming `/tmp/X/rbox-<id>`, a link to a cgroup that is no container's, must not
/// move `rrun exec` (and the command) into that cgroup. exec refuses in one line, runs
/// nothing, and the other cgroup never gets a process.
#[test]
fn exec_refuses_a_recorded_cgroup_path_through_a_symlink_to_another_cgroup() {
    let lab = Lab::new("life");
    let name = unique("exl");
    let id = detach(&lab, &name, &[], &["sleep", "1000"]);
    let p = lab.containers_dir().join(&id).join("state.json");
    let original = std::fs::read(&p).unwrap();
    let recorded: Vec<std::path::PathBuf> = lab.inspect(&name)["cgroup_paths"]
        .as_array()
        .expect("cgroup_paths")
        .iter()
        .map(|v| v.as_str().unwrap().into())
        .collect();
    // A cgroup beside the container's that is not an rbox-* one, and a link to it named as
    // the container's cgroup, outside any cgroup filesystem.
    let victim = recorded[0].parent().unwrap().join(unique("victim"));
    std::fs::create_dir(&victim).unwrap();
    let links = rbox_tests::Scratch::new("cglink");
    let link = links.join(format!("rbox-{id}"));
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    tamper(&lab, &name, |v| {
        v["cgroup_paths"] = serde_json::json!([link.to_string_lossy()])
    });
    // Before the fix the command ran there, and a process it leaves behind stays there.
    let script = "sleep 60 >/dev/null 2>&1 & cat /proc/self/cgroup";
    let o = sub(&lab, &["exec", &name, "sh", "-c", script]);
    let procs = std::fs::read_to_string(victim.join("cgroup.procs")).unwrap_or_default();
    std::fs::write(&p, &original).unwrap();
    let rm = sub(&lab, &["rm", "-f", &name]);
    let _ = std::fs::remove_dir(&victim);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(125), "exec ran: {out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.lines().count() == 1
            && err.contains(&link.display().to_string())
            && err.contains("not an rbox cgroup"),
        "{err}"
    );
    assert!(
        procs.is_empty(),
        "processes in {}: {procs}",
        victim.display()
    );
    assert!(
        rm.status.success(),
        "{}",
        String::from_utf8_lossy(&rm.stderr)
    );
    lab.assert_clean(&[]);
}

/// While a container stops, its init (PID 1 of its pid namespace) has left its namespaces
/// but lives on until every other process of the namespace is reaped: here one exec'd
/// process whose rrun exec is held stopped, so it stays a zombie. An exec then says the
/// container is not running, in one line, instead of setns(2)'s "No such process".
#[test]
fn exec_into_a_container_that_is_stopping_says_it_is_not_running() {
    let lab = Lab::new("life");
    let name = unique("exs");
    detach(&lab, &name, &[], &["sleep", "1000"]);
    let init = lab.inspect(&name)["pid"].as_i64().unwrap();
    let mut c = lab.rrun();
    c.args(["exec", &name, "sleep", "1000"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut held = c.spawn().unwrap();
    /// Lets the held rrun exec go on (and be reaped) whatever happens.
    struct Resume<'a>(&'a mut std::process::Child);
    impl Drop for Resume<'_> {
        fn drop(&mut self) {
            let pid = rustix::process::Pid::from_child(self.0);
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::CONT);
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let rrun_pid = held.id();
    let held = Resume(&mut held);
    let children = format!("/proc/{rrun_pid}/task/{rrun_pid}/children");
    let sleeping = eventually(10, || {
        std::fs::read_to_string(&children)
            .ok()
            .and_then(|c| c.split_whitespace().next().map(str::to_string))
            .is_some_and(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c == "sleep\n")
            })
    });
    assert!(sleeping, "the exec'd sleep did not start");
    let pid = rustix::process::Pid::from_child(held.0);
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
    assert!(sub(&lab, &["kill", "-s", "KILL", &name]).status.success());
    let ns = format!("/proc/{init}/ns/mnt");
    assert!(
        eventually(10, || std::fs::read_link(&ns).is_err()),
        "the init kept its namespaces"
    );
    let o = sub(&lab, &["exec", &name, "true"]);
    let stopping = std::path::Path::new(&format!("/proc/{init}")).exists();
    drop(held);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        stopping,
        "the init was gone before the exec: nothing tested"
    );
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert!(
        err.lines().count() == 1
            && err.contains(&format!("container {name} is not running"))
            && !err.contains("os error"),
        "{err}"
    );
    assert!(sub(&lab, &["rm", "-f", &name]).status.success());
    lab.assert_clean(&[]);
}

#[test]
fn rrun_killed_at_any_moment_leaves_only_what_ps_shows_and_rm_f_removes() {
    let lab = Lab::new("crash");
    // A sleep of a length no other test uses marks this test's container processes.
    let marker = format!("{}", 7_000_000 + std::process::id() % 1_000_000);
    for i in 0..30u64 {
        let mut c = lab.rrun();
        c.args(["--net", "none"]);
        // Named (kept) and unnamed (removed on exit); a memory limit puts them in v1 cgroups too.
        if i % 2 == 0 {
            c.args(["--name", &unique("kill")]);
        }
        if i % 3 != 0 {
            c.args(["--memory", "64m"]);
        }
        c.args(["--image", &lab.image, "--", "sleep", &marker])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = c.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(i));
        let _ = child.kill(); // SIGKILL to rrun itself
        let _ = child.wait();
    }
    // Everything ps -a shows, by the ids it shows, and nothing else, is removed by rm -f.
    let o = sub(&lab, &["ps", "-a"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let shown: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    if !shown.is_empty() {
        let o = sub(
            &lab,
            &[
                &["rm", "-f"][..],
                &shown.iter().map(String::as_str).collect::<Vec<_>>(),
            ]
            .concat(),
        );
        assert!(
            o.status.success(),
            "rm -f {shown:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert!(
        eventually(10, || rrun_common::processes_with(&marker).is_empty()),
        "container processes left: {:?}",
        rrun_common::processes_with(&marker)
    );
    lab.assert_clean(&[]);
}

#[test]
fn a_container_whose_rrun_died_shows_as_an_orphan_and_a_removed_on_exit_one_is_reaped() {
    let lab = Lab::new("life");
    // Unnamed: removed on exit. Its rrun is killed while it runs.
    let mut c = lab.rrun();
    c.args([
        "--net",
        "none",
        "--memory",
        "64m",
        "--image",
        &lab.image,
        "--",
        "sh",
        "-c",
        "echo started; exec sleep 1000",
    ]);
    let (mut child, _started) = rrun_common::spawn_until_first_line(&mut c);
    child.kill().unwrap();
    let _ = child.wait();
    let id = lab
        .container_ids()
        .pop()
        .expect("the container is recorded");
    let v = lab.inspect(&id);
    assert_eq!(
        (v["status"].as_str(), v["orphaned"].as_bool()),
        (Some("running"), Some(true))
    );
    // Docker's words: "Up 2 seconds", marked as an orphan.
    assert!(ps(&lab, false)
        .lines()
        .any(|l| l.starts_with(&id[..12]) && l.contains(" Up ") && l.contains("(orphan)")));
    let upper = v["upper_dir"].as_str().unwrap().to_string();
    assert!(std::path::Path::new(&upper).is_dir());
    // Its command ends: nobody recorded the exit code, ps says so ...
    let pid = v["pid"].as_i64().unwrap();
    assert!(rbox_tests::command("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    assert!(eventually(10, || !std::path::Path::new(&format!(
        "/proc/{pid}"
    ))
    .exists()));
    let v = lab.inspect(&id);
    assert_eq!(
        (v["status"].as_str(), v["exit_code"].as_i64()),
        (Some("exited"), None)
    );
    // ... and the next rrun that lists containers removes it, all of it.
    assert!(lab.ok(&[], &["echo", "next"]) == "next");
    assert!(
        !lab.container_ids().contains(&id),
        "the orphan was not removed"
    );
    assert!(!cgroup_exists(&id) && !std::path::Path::new(&upper).exists());
    lab.assert_clean(&[]);
}

#[test]
fn two_concurrent_rm_f_of_one_container_one_succeeds_the_other_finds_no_such_container() {
    let lab = Lab::new("life");
    for _ in 0..5 {
        let name = unique("twice");
        detach(
            &lab,
            &name,
            &["--pids-limit", "50"],
            &["sh", "-c", "sleep 1000 & sleep 1000 & wait"],
        );
        let spawn = || {
            let mut c = lab.rrun();
            c.args(["rm", "-f", &name])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            c.spawn().unwrap()
        };
        let (a, b) = (spawn(), spawn());
        let outs = [
            rrun_common::wait_output(a, 30),
            rrun_common::wait_output(b, 30),
        ];
        let ok = outs.iter().filter(|o| o.status.success()).count();
        assert_eq!(ok, 1, "exactly one rm -f succeeds");
        let loser = outs.iter().find(|o| !o.status.success()).unwrap();
        let err = String::from_utf8_lossy(&loser.stderr);
        assert_eq!(loser.status.code(), Some(125));
        assert!(
            err.contains("no such container") && err.lines().count() == 1,
            "{err}"
        );
    }
    lab.assert_clean(&[]);
}

#[test]
fn global_options_work_before_a_subcommand_and_a_relative_root_works() {
    let lab = Lab::new("life");
    let name = unique("glob");
    assert!(lab.run(&["--name", &name], &["true"]).status.success());
    let root = lab.store.path().to_str().unwrap();
    let o = rrun_common::output(
        {
            let mut c = rbox_tests::cmd("rrun");
            c.env_remove("RBOX_ROOT")
                .args(["--root", root, "--verbose", "ps", "-a"]);
            c
        },
        20,
    );
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains(&name),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A relative --root, from the store's parent folder: runs, lists, removes.
    let parent = lab.store.path().parent().unwrap();
    let rel = lab.store.path().file_name().unwrap().to_str().unwrap();
    let rrun = |args: &[&str]| {
        let mut c = rbox_tests::cmd("rrun");
        c.env_remove("RBOX_ROOT")
            .current_dir(parent)
            .arg("--root")
            .arg(rel)
            .args(args);
        rrun_common::output(c, 60)
    };
    let o = rrun(&[
        "--net", "none", "--image", &lab.image, "--", "echo", "relative",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "relative",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&rrun(&["ps", "-a"]).stdout).contains(&name));
    assert!(rrun(&["rm", &name]).status.success());
    lab.assert_clean(&[]);
}

#[test]
fn usage_errors_are_one_line_and_exit_125() {
    let lab = Lab::new("life");
    for args in [
        &["--bogus"][..],
        &["ps", "--bogus"],
        &["stop"],
        &["--memory"],
        &["rm"],
        &["kill", "-s"],
    ] {
        let o = sub(&lab, args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("rrun: ") && err.contains("--help"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(sub(&lab, &["--help"]).status.code(), Some(0));
}

/// A name, path or command from the user with a newline or an escape in it is shown escaped:
/// the error stays one line, and cannot move or colour the user's terminal.
#[test]
fn errors_naming_text_with_control_characters_stay_one_line() {
    let lab = Lab::new("life");
    let exec = sub(&lab, &["exec", "x\ny", "true"]);
    let workdir = lab.run(&["-w", "rel\nx"], &["true"]);
    let user = lab.run(&["-u", "a\nb"], &["true"]);
    let command = lab.run(&[], &["no\nsuch\u{1b}[31m"]);
    for (what, o, code, says) in [
        ("exec", exec, 125, "no such container: x\\ny"),
        ("-w", workdir, 125, "rel\\nx"),
        ("-u", user, 125, "a\\nb"),
        (
            "the command",
            command,
            127,
            "no\\nsuch\\x1b[31m: command not found",
        ),
    ] {
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{what}: {err}");
        assert_eq!(err.lines().count(), 1, "{what}: {err}");
        assert!(err.contains(says) && !err.contains('\x1b'), "{what}: {err}");
    }
    lab.assert_clean(&[]);
}

#[test]
fn ps_shows_the_image_as_the_user_named_it_and_inspect_its_id() {
    let lab = Lab::new("life");
    let name = unique("ref");
    let mut c = lab.rrun();
    c.args([
        "--name",
        &name,
        "--net",
        "none",
        "--image",
        "alpine:3.15",
        "--",
        "true",
    ]);
    assert!(output(c, 30).status.success());
    let line = ps(&lab, true)
        .lines()
        .find(|l| l.contains(&name))
        .unwrap()
        .to_string();
    assert!(line.contains("alpine:3.15"), "{line}");
    let v = lab.inspect(&name);
    assert_eq!(
        (v["image"].as_str(), v["image_ref"].as_str()),
        (Some(lab.image.as_str()), Some("alpine:3.15"))
    );
    assert!(sub(&lab, &["rm", &name]).status.success());
}

#[test]
fn the_upper_dir_of_a_container_removed_on_exit_is_a_host_path_holding_its_writes() {
    let lab = Lab::new("life");
    let mut c = lab.rrun();
    c.args([
        "--net",
        "none",
        "--image",
        &lab.image,
        "--",
        "sh",
        "-c",
        "echo data > /newfile; rm /etc/motd; echo written; exec sleep 1000",
    ]);
    let (mut child, line) = rrun_common::spawn_until_first_line(&mut c);
    assert_eq!(line, "written");
    let id = lab.container_ids().pop().unwrap();
    let upper = std::path::PathBuf::from(
        lab.inspect(&id)["upper_dir"]
            .as_str()
            .expect("upper_dir is a path")
            .to_string(),
    );
    assert_eq!(
        std::fs::read_to_string(upper.join("newfile")).unwrap(),
        "data\n"
    );
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::symlink_metadata(upper.join("etc/motd"))
            .unwrap()
            .file_type()
            .is_char_device(),
        "a whiteout"
    );
    // In rrun's size-limited tmpfs, not in the store (nothing written to disk).
    assert!(
        upper.starts_with(rrun_common::RUN_DIR),
        "{}",
        upper.display()
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let opts = mounts
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(rrun_common::RUN_DIR))
        .expect("rrun's tmpfs is mounted");
    assert!(
        opts.contains("tmpfs")
            && opts.contains("size=")
            && opts.contains("nosuid")
            && opts.contains("nodev"),
        "{opts}"
    );
    assert!(sub(&lab, &["stop", &id]).status.success());
    let _ = child.wait();
    assert!(!upper.exists(), "removed with the container");
    lab.assert_clean(&[]);
}

/// rrun's tmpfs for the upper dirs of containers removed on exit is there while one runs and
/// unmounted by the last removal: a host with no such container has no rbox mount. Run in a
/// private mount namespace of the test's own, so containers of tests running at the same time
/// (in the host's namespace) cannot keep it mounted; the copy of the host's mount it starts
/// with, if any, is detached there first.
#[test]
fn rruns_tmpfs_for_upper_dirs_is_unmounted_when_its_last_container_is_removed() {
    let lab = Lab::new("life");
    let rrun = rbox_tests::bin("rrun");
    let script = format!(
        r#"umount -l {dir} 2>/dev/null
count() {{ awk '$5 == "{dir}"' /proc/self/mountinfo | wc -l; }}
echo before=$(count)
"$1" --rm --net none --image "$2" -- true
echo after_run=$(count)
"$1" -d --rm --name "$3" --net none --image "$2" -- sleep 1000 >/dev/null
echo while_detached=$(count)
"$1" rm -f "$3" >/dev/null
echo after_rm=$(count)
"#,
        dir = rrun_common::RUN_DIR
    );
    let name = unique("tmpfs");
    let mut c = rbox_tests::command("unshare");
    c.args(["-m", "--propagation", "private", "sh", "-c", &script, "sh"])
        .arg(&rrun)
        .args([&lab.image, &name])
        .env("RBOX_ROOT", lab.store.path())
        .stdin(Stdio::null());
    let o = output(c, 60);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(out, "before=0\nafter_run=0\nwhile_detached=1\nafter_rm=0\n");
    lab.assert_clean(&[]);
}

#[test]
fn a_panic_in_a_forked_child_ends_it_with_125_in_one_line_and_leaves_nothing() {
    let lab = Lab::new("life");
    let name = unique("panic");
    let mut c = lab.rrun();
    c.env("RRUN_TEST_PANIC_IN_FORKED_CHILD", "1").args([
        "--name", &name, "--net", "none", "--image", &lab.image, "--", "true",
    ]);
    let o = output(c, 30);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert!(
        err.lines().all(|l| l.starts_with("rrun: ")) && err.lines().count() <= 2,
        "{err}"
    );
    assert!(
        err.contains("internal error") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    // rrun itself cleaned up (the child never ran rrun's guards, which would have removed the
    // folder under rrun's feet).
    lab.assert_clean(&[]);
    // The same from a detached monitor and from exec.
    let o = {
        let mut c = lab.rrun();
        c.env("RRUN_TEST_PANIC_IN_FORKED_CHILD", "1").args([
            "-d", "--name", &name, "--net", "none", "--image", &lab.image, "--", "true",
        ]);
        output(c, 30)
    };
    assert_eq!(
        o.status.code(),
        Some(125),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    lab.assert_clean(&[]);
    let id = detach(&lab, &name, &[], &["sleep", "1000"]);
    let o = {
        let mut c = lab.rrun();
        c.env("RRUN_TEST_PANIC_IN_FORKED_CHILD", "1")
            .args(["exec", &name, "true"]);
        output(c, 30)
    };
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert!(
        err.contains("internal error") && err.lines().count() == 1,
        "{err}"
    );
    assert_eq!(
        lab.inspect(&name)["status"].as_str(),
        Some("running"),
        "the exec's panic did not touch the container"
    );
    assert!(sub(&lab, &["rm", "-f", &name]).status.success());
    assert!(!cgroup_exists(&id));
    lab.assert_clean(&[]);
}

#[test]
fn log_lines_carry_no_colour_when_stderr_is_not_a_terminal() {
    let lab = Lab::new("life");
    let mut c = lab.rrun();
    c.env("RUST_LOG", "debug")
        .args(["--net", "none", "--image", &lab.image, "--", "true"]);
    let o = output(c, 30);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("DEBUG"), "{err}");
    assert!(!err.contains('\x1b'), "ANSI escapes on a pipe: {err:?}");
    lab.assert_clean(&[]);
}

#[test]
fn assert_clean_sees_a_leftover_cgroup_and_the_process_in_it() {
    let lab = Lab::new("life");
    let own = rrun_common::own_cgroup_dirs();
    let v2 = own
        .iter()
        .find(|d| {
            d.starts_with("/sys/fs/cgroup/unified")
                || !d.to_string_lossy().contains("/sys/fs/cgroup/")
        })
        .cloned();
    let dir = v2
        .unwrap_or_else(|| own[0].clone())
        .join(format!("rbox-{}", "0e".repeat(32)));
    std::fs::create_dir(&dir).unwrap();
    let mut sleeper = rbox_tests::command("sleep").arg("1000").spawn().unwrap();
    let moved = std::fs::write(dir.join("cgroup.procs"), sleeper.id().to_string()).is_ok();
    let caught =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lab.assert_clean(&[]))).err();
    let msg = caught
        .as_ref()
        .and_then(|e| e.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert!(
        eventually(5, || std::fs::remove_dir(&dir).is_ok()),
        "cleanup of {}",
        dir.display()
    );
    assert!(caught.is_some(), "assert_clean missed a leftover cgroup");
    assert!(
        msg.contains("cgroup") && (!moved || msg.contains("process")),
        "{msg}"
    );
}

#[test]
fn writes_to_the_upper_dir_of_a_container_removed_on_exit_count_against_its_memory_limit() {
    let lab = Lab::new("life");
    let script = "head -c 100m /dev/zero > /big && stat -c %s /big";
    // The OOM killer stops the writer (or the shell with it) once 32m are in the tmpfs.
    let o = lab.run(&["--memory", "32m"], &["sh", "-c", script]);
    assert_eq!(
        o.status.code(),
        Some(137),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("OOM killer"));
    assert_eq!(
        lab.ok(&[], &["sh", "-c", script]),
        (100u64 << 20).to_string(),
        "without a limit the write succeeds"
    );
    lab.assert_clean(&[]);
}

/// True when process `pid` waits for a flock (a `->` line of /proc/locks, see proc(5)).
fn blocked_on_flock(pid: u32) -> bool {
    let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    locks.lines().any(|l| {
        l.contains("->")
            && l.contains("FLOCK")
            && l.split_whitespace().any(|w| w == pid.to_string())
    })
}

#[test]
fn rrun_waits_while_rbuild_removes_and_a_used_image_and_its_layers_stay() {
    let lab = Lab::new("life");
    // An rbuild removal (image rm, layer rm, gc) holds the store lock exclusively: a new
    // container waits for it before it resolves its image.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lab.store.join("store.lock"))
        .unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(
        unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) },
        0
    );
    let mut c = lab.rrun();
    c.args(["--net", "none", "--image", &lab.image, "--", "echo", "ran"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    let waited = eventually(20, || blocked_on_flock(child.id()));
    drop(lock);
    let o = rrun_common::wait_output(child, 60);
    assert!(waited, "rrun did not wait for the store lock");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "ran",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // While a container exists its image cannot be removed, and gc keeps its layers.
    let name = unique("uses");
    detach(&lab, &name, &[], &["sleep", "1000"]);
    let o = lab
        .rbuild()
        .args(["image", "rm", &lab.image])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "image rm must refuse while a container uses the image"
    );
    assert!(lab
        .rbuild()
        .args(["gc"])
        .stdin(Stdio::null())
        .status()
        .unwrap()
        .success());
    let layer_dir = lab
        .store
        .join("layers")
        .join(lab.layer.trim_start_matches("sha256:"));
    assert!(
        layer_dir.join("rootfs/etc/alpine-release").exists(),
        "gc removed a layer in use"
    );
    assert_eq!(
        String::from_utf8_lossy(&sub(&lab, &["exec", &name, "cat", "/etc/alpine-release"]).stdout)
            .trim(),
        "3.15.11"
    );
    assert!(sub(&lab, &["rm", "-f", &name]).status.success());
    lab.assert_clean(&[]);
}

#[test]
fn an_image_added_without_privileges_is_refused_by_root_rrun_in_one_line() {
    rbox_tests::require_root();
    let scratch = rbox_tests::Scratch::new("mode");
    let store = scratch.join("store");
    std::fs::create_dir(&store).unwrap();
    let fixture = scratch.join("alpine.tar.gz");
    std::fs::copy(rbox_tests::alpine_fixture("3.15.11"), &fixture).unwrap();
    for p in [scratch.path(), store.as_path(), fixture.as_path()] {
        std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
    }
    let as_nobody = |args: &[&str]| {
        let mut c = rbox_tests::command("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(rbox_tests::bin("rbuild"))
            .args(args);
        c.env("RBOX_ROOT", &store)
            .env("RBUILD_SUBIDS", "0")
            .current_dir("/");
        let o = output(c, 60);
        assert!(
            o.status.success(),
            "rbuild {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let layer = as_nobody(&["layer", "add", fixture.to_str().unwrap()]);
    let image = as_nobody(&["image", "create", &layer]);
    let mut c = rbox_tests::cmd("rrun");
    c.env("RBOX_ROOT", &store)
        .args(["--net", "none", "--image", &image, "--", "true"]);
    let o = output(c, 60);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert!(
        err.lines().count() == 1 && err.contains("without privileges"),
        "{err}"
    );
    let left = std::fs::read_dir(store.join("containers"))
        .map(|rd| rd.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "a refused run leaves no container");
}

#[test]
fn rm_removes_a_container_that_made_a_tree_deeper_than_the_descriptor_limit() {
    let lab = Lab::new("life");
    let name = unique("deep");
    let script = "i=0; while [ $i -lt 1500 ]; do mkdir d && cd d || exit 1; i=$((i+1)); done";
    assert!(lab
        .run(&["--name", &name], &["sh", "-c", script])
        .status
        .success());
    let mut c = rbox_tests::command("sh");
    c.args(["-c", "ulimit -n 256 && exec \"$0\" rm \"$1\""])
        .arg(rbox_tests::bin("rrun"))
        .arg(&name)
        .env("RBOX_ROOT", lab.store.path());
    let o = output(c, 60);
    assert!(
        o.status.success(),
        "rm under ulimit -n 256: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    lab.assert_clean(&[]);
}
