//! rrun end to end, the lifecycle: named and detached containers, logs, ps, inspect, exec,
//! stop, kill, rm, and recovery after rrun itself was killed.

mod rrun_common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use rbox_tests::unique;
use rrun_common::{cgroup_exists, eventually, output, Lab};

fn detach(lab: &Lab, name: &str, opts: &[&str], args: &[&str]) -> String {
    let mut c = lab.rrun();
    c.args(["-d", "--name", name, "--net", "none"]).args(opts).args(["--image", &lab.image, "--"]).args(args);
    let o = output(c, 30);
    assert!(o.status.success(), "rrun -d failed: {}", String::from_utf8_lossy(&o.stderr));
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
    assert_eq!(lab.run(&["--name", &name], &["sh", "-c", "exit 3"]).status.code(), Some(3));
    let v = lab.inspect(&name);
    assert_eq!((v["status"].as_str(), v["exit_code"].as_i64(), v["pid"].as_i64()), (Some("exited"), Some(3), Some(0)));
    assert_eq!(v["image"].as_str(), Some(lab.image.as_str()));
    assert_eq!(v["network"]["mode"].as_str(), Some("none"));
    assert!(v["network"]["ip"].is_null() && v["ports"].as_array().is_some_and(|p| p.is_empty()));
    assert!(!ps(&lab, false).contains(&name) && ps(&lab, true).contains(&name));
    // The name is taken while the container exists.
    let o = lab.run(&["--name", &name], &["true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("in use"));
    // rbuild refuses to remove an image a container uses.
    let o = lab.rbuild().args(["image", "rm", &lab.image]).stdin(Stdio::null()).output().unwrap();
    assert!(!o.status.success(), "image rm must refuse while a container uses it");
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
    detach(&lab, &name, &[], &["sh", "-c", "echo line1; echo line2 >&2; exit 5"]);
    assert!(eventually(10, || lab.inspect(&name)["status"] == "exited"));
    assert_eq!(lab.inspect(&name)["exit_code"].as_i64(), Some(5));
    let o = sub(&lab, &["logs", &name]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "line1\nline2\n");
    let id = lab.inspect(&name)["id"].as_str().unwrap().to_string();
    assert!(sub(&lab, &["rm", &id[..12]]).status.success(), "rm by id prefix");
    assert!(!cgroup_exists(&id));
    lab.assert_clean(&[]);
}

#[test]
fn exec_joins_every_namespace_and_the_cgroup() {
    let lab = Lab::new("life");
    let name = unique("ex");
    let id = detach(&lab, &name, &["--hostname", "exhost", "-e", "CVAR=1", "--pids-limit", "50"], &["sleep", "1000"]);
    assert!(ps(&lab, false).contains(&name));
    let pid = lab.inspect(&name)["pid"].as_i64().unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    let o = sub(&lab, &["exec", &name, "sh", "-c", "hostname; cat /proc/1/comm; echo $CVAR; id -u; cat /proc/self/uid_map | awk '{print $2}'"]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..4], ["exhost", "rinit", "1", "0"], "{}", String::from_utf8_lossy(&o.stderr));
    assert_ne!(lines[4], "0", "exec runs as the container's unprivileged root");
    for ns in ["uts", "pid", "mnt", "net", "ipc", "user", "cgroup"] {
        let o = sub(&lab, &["exec", &name, "readlink", &format!("/proc/self/ns/{ns}")]);
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), theirs.to_string_lossy(), "{ns}");
    }
    let o = sub(&lab, &["exec", "-u", "1000:1000", "-w", "/tmp", "-e", "X=y", &name, "sh", "-c", "echo $(id -u) $(pwd) $X"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "1000 /tmp y");
    assert_eq!(sub(&lab, &["exec", &name, "sh", "-c", "exit 9"]).status.code(), Some(9));
    assert_eq!(sub(&lab, &["exec", &name, "no-such-cmd"]).status.code(), Some(127));
    // The exec'd process is in the container's cgroup: it shows as / in its cgroup namespace.
    let o = sub(&lab, &["exec", &name, "cat", "/proc/self/cgroup"]);
    assert!(String::from_utf8_lossy(&o.stdout).lines().all(|l| l.ends_with(":/")), "{}", String::from_utf8_lossy(&o.stdout));
    assert!(sub(&lab, &["rm", "-f", &name]).status.success());
    assert!(!cgroup_exists(&id));
    assert!(!ps(&lab, true).contains(&name));
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
    assert_eq!((v["status"].as_str(), v["exit_code"].as_i64()), (Some("exited"), Some(143)));
    // A command that ignores SIGTERM is killed after -t seconds.
    let name2 = unique("st");
    detach(&lab, &name2, &[], &["sh", "-c", "trap '' TERM; while :; do sleep 1; done"]);
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    assert!(sub(&lab, &["stop", "-t", "1", &name2]).status.success());
    assert!(t.elapsed() >= Duration::from_millis(900) && t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
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
    for cmd in [&["rm", "no-such-container"][..], &["rm", "-f", "no-such-container"], &["stop", "no-such-container"], &["kill", "no-such-container"]] {
        let o = sub(&lab, cmd);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(125), "{cmd:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{cmd:?}: {err}");
        assert!(err.contains("no such container: no-such-container"), "{cmd:?}: {err}");
    }
    lab.assert_clean(&[]);
}

#[test]
fn a_container_whose_rrun_was_killed_is_listed_and_removed_by_rm_f() {
    let lab = Lab::new("life");
    let name = unique("orph");
    let mut c = lab.rrun();
    c.args(["--name", &name, "--net", "none", "--image", &lab.image, "--", "sleep", "1000"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    assert!(eventually(10, || ps(&lab, false).contains(&name)));
    let pid = lab.inspect(&name)["pid"].as_i64().unwrap();
    child.kill().unwrap(); // SIGKILL to rrun itself
    let _ = child.wait();
    assert!(ps(&lab, false).contains(&name), "the container outlives its rrun and is listed");
    assert_eq!(lab.inspect(&name)["status"].as_str(), Some("running"));
    let id = lab.inspect(&name)["id"].as_str().unwrap().to_string();
    assert!(sub(&lab, &["rm", "-f", &name]).status.success());
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists() || eventually(5, || !std::path::Path::new(&format!("/proc/{pid}")).exists()));
    assert!(!ps(&lab, true).contains(&name));
    assert!(!cgroup_exists(&id));
    lab.assert_clean(&[]);
}

#[test]
fn foreground_run_forwards_sigterm_to_the_command() {
    let lab = Lab::new("life");
    let mut c = lab.rrun();
    c.args(["--net", "none", "--image", &lab.image, "--", "sleep", "1000"]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let t = Instant::now();
    let st = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "rrun did not end after SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(st.code(), Some(143));
    lab.assert_clean(&[]);
}
