//! Holds as a user meets them: a container holds its image until `rrun rm` (as in Docker, a
//! kept, exited container blocks `image rm`), a container removed on exit releases it when it
//! goes, a removal waits for a container being started and then refuses, and an rrun killed at
//! any moment leaves no hold once its containers are removed. rbuild learns all of this from the
//! store's holds, never from rrun's files.

mod rrun_common;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use rbox_tests::unique;
use rrun_common::{eventually, output, Lab};

fn rbuild(lab: &Lab, args: &[&str]) -> Output {
    let mut c = lab.rbuild();
    c.env_remove("RUST_LOG").args(args);
    output(c, 60)
}

fn rrun(lab: &Lab, args: &[&str]) -> Output {
    let mut c = lab.rrun();
    c.args(args);
    output(c, 60)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim().to_string()
}

/// `rbuild image rm` of the lab's image fails in one line naming container `id`.
fn image_rm_refused_for(lab: &Lab, id: &str) {
    let o = rbuild(lab, &["image", "rm", &lab.image]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("is used by container {id}")) && err.contains("rrun rm"),
        "{err}"
    );
}

fn holds(lab: &Lab) -> usize {
    std::fs::read_dir(lab.store.join("holds"))
        .map(|rd| rd.count())
        .unwrap_or(0)
}

#[test]
fn a_kept_exited_container_holds_its_image_until_rrun_rm() {
    let lab = Lab::new("hold");
    let name = unique("kept");
    assert!(lab.run(&["--name", &name], &["true"]).status.success());
    let id = lab.inspect(&name)["id"].as_str().unwrap().to_string();
    assert_eq!(lab.inspect(&name)["status"], "exited");
    image_rm_refused_for(&lab, &id);
    // its layers stay too
    let o = rbuild(&lab, &["layer", "rm", &lab.layer]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(rbuild(&lab, &["gc"]).status.success());
    let layer = lab
        .store
        .join("layers")
        .join(lab.layer.trim_start_matches("sha256:"));
    assert!(layer.join("rootfs/etc/alpine-release").is_file());
    assert!(rrun(&lab, &["rm", &name]).status.success());
    assert_eq!(holds(&lab), 0);
    let o = rbuild(&lab, &["image", "rm", &lab.image]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), lab.image);
    lab.assert_clean(&[]);
}

#[test]
fn a_container_removed_on_exit_releases_its_hold_when_it_goes() {
    let lab = Lab::new("hold");
    assert_eq!(lab.ok(&[], &["echo", "gone"]), "gone");
    assert_eq!(holds(&lab), 0, "an unnamed run holds nothing once it ended");
    // a detached --rm container holds its image while it runs, and no longer
    let mut c = lab.rrun();
    c.args(["-d", "--rm", "--net", "none", "--image", &lab.image, "--"])
        .args(["sleep", "1000"])
        .stdin(Stdio::null());
    let o = output(c, 30);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let id = text(&o.stdout);
    image_rm_refused_for(&lab, &id);
    let o = rrun(&lab, &["stop", "-t", "1", &id]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        eventually(20, || !lab.containers_dir().join(&id).exists()),
        "the --rm container was not removed"
    );
    assert_eq!(holds(&lab), 0);
    assert!(rbuild(&lab, &["image", "rm", &lab.image]).status.success());
    lab.assert_clean(&[]);
}

/// Holds `<root>/store.lock` shared, as rrun does while it resolves an image.
fn lock_store_shared(root: &Path) -> std::fs::File {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join("store.lock"))
        .unwrap();
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockShared).unwrap();
    f
}

#[test]
fn image_rm_waits_for_a_starting_container_and_then_refuses() {
    let lab = Lab::new("hold");
    let lock = lock_store_shared(lab.store.path());
    let mut rm = lab.rbuild();
    rm.args(["image", "rm", &lab.image])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let rm = rm.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // a container starts meanwhile (the lock is shared: it resolves and holds its image)
    let name = unique("start");
    let mut c = lab.rrun();
    c.args([
        "-d", "--name", &name, "--net", "none", "--image", &lab.image,
    ])
    .args(["--", "sleep", "1000"]);
    let o = output(c, 30);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let id = text(&o.stdout);
    let mut rm = rm;
    assert!(
        rm.try_wait().unwrap().is_none(),
        "image rm did not wait for the store lock"
    );
    drop(lock);
    let o = rrun_common::wait_output(rm, 60);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("is used by container {id}")), "{err}");
    assert_eq!(
        text(&rrun(&lab, &["exec", &name, "cat", "/etc/alpine-release"]).stdout),
        "3.15.11"
    );
    assert!(rrun(&lab, &["rm", "-f", &name]).status.success());
    assert!(rbuild(&lab, &["image", "rm", &lab.image]).status.success());
    lab.assert_clean(&[]);
}

#[test]
fn a_container_whose_rrun_was_killed_holds_its_image_until_it_is_gone() {
    let lab = Lab::new("hold");
    let mut c = lab.rrun();
    c.args(["--net", "none", "--image", &lab.image, "--"])
        .args(["sh", "-c", "echo started; exec sleep 1000"]);
    let (mut child, _) = rrun_common::spawn_until_first_line(&mut c);
    child.kill().unwrap(); // SIGKILL to rrun itself
    let _ = child.wait();
    let id = lab
        .container_ids()
        .pop()
        .expect("the container is recorded");
    image_rm_refused_for(&lab, &id);
    // its command ends; the next rrun that lists containers removes it and its hold
    let pid = lab.inspect(&id)["pid"].as_i64().unwrap();
    assert!(std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    assert!(eventually(10, || !Path::new(&format!("/proc/{pid}")).exists()));
    assert!(rrun(&lab, &["ps", "-a"]).status.success());
    assert!(lab.container_ids().is_empty());
    assert_eq!(holds(&lab), 0);
    assert!(rbuild(&lab, &["image", "rm", &lab.image]).status.success());
    lab.assert_clean(&[]);
}

#[test]
fn rrun_killed_at_any_moment_leaves_no_hold_once_its_containers_are_removed() {
    let lab = Lab::new("hold");
    let marker = format!("{}", 6_000_000 + std::process::id() % 1_000_000);
    for i in 0..24u64 {
        let mut c = lab.rrun();
        c.args(["--net", "none"]);
        if i % 2 == 0 {
            c.args(["--name", &unique("kh")]);
        }
        if i % 3 == 0 {
            c.arg("-d");
        }
        c.args(["--image", &lab.image, "--", "sleep", &marker])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = c.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(i * 2));
        let _ = child.kill(); // SIGKILL to rrun itself
        let _ = child.wait();
    }
    // a detached monitor started before its rrun was killed may still be starting
    std::thread::sleep(Duration::from_millis(500));
    let o = rrun(&lab, &["ps", "-a"]);
    let shown: Vec<String> = text(&o.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    if !shown.is_empty() {
        let mut args = vec!["rm", "-f"];
        args.extend(shown.iter().map(String::as_str));
        let o = rrun(&lab, &args);
        assert!(o.status.success(), "rm -f {shown:?}: {}", text(&o.stderr));
    }
    assert!(
        eventually(10, || rrun_common::processes_with(&marker).is_empty()),
        "container processes left"
    );
    // every hold went with its container or with the rrun that wrote it
    let o = rbuild(&lab, &["image", "rm", &lab.image]);
    assert!(
        o.status.success(),
        "{} (holds: {:?})",
        text(&o.stderr),
        std::fs::read_dir(lab.store.join("holds"))
            .map(|rd| rd.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
            .unwrap_or_default()
    );
    lab.assert_clean(&[]);
}
