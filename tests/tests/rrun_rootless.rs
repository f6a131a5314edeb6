//! rrun without privileges (run as uid/gid 65534 through setpriv): container root is the
//! caller, image files show as root's, the overlay is the kernel's userxattr one, and the
//! lifecycle works and cleans up without any privilege.

mod rrun_common;

use std::path::Path;
use std::process::Output;

use rbox_tests::{alpine_fixture, bin, require_root, Scratch};

const NOBODY: u32 = 65534;

fn as_nobody(store: &Path, program: &str, args: &[&str]) -> Output {
    let mut c = rbox_tests::command("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(bin(program))
        .args(args);
    c.env("RBOX_ROOT", store)
        .env_remove("RBOX_RINIT")
        .current_dir("/");
    rrun_common::output(c, 60)
}

fn ok(store: &Path, program: &str, args: &[&str]) -> String {
    let o = as_nobody(store, program, args);
    assert!(
        o.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn rootless_run_maps_root_to_the_caller_and_cleans_up() {
    require_root();
    let scratch = Scratch::new("rootless");
    let store = scratch.join("store");
    std::fs::create_dir(&store).unwrap();
    std::os::unix::fs::chown(&store, Some(NOBODY), Some(NOBODY)).unwrap();
    let fixture = scratch.join("alpine.tar.gz");
    std::fs::copy(alpine_fixture("3.15.11"), &fixture).unwrap();
    std::os::unix::fs::chown(scratch.path(), Some(NOBODY), Some(NOBODY)).unwrap();
    let layer = ok(
        &store,
        "rbuild",
        &["layer", "add", fixture.to_str().unwrap()],
    );
    let image = ok(&store, "rbuild", &["image", "create", &layer]);

    let out = ok(&store, "rrun", &[
        "--net", "none", "--cap-add", "SYS_ADMIN", "--image", &image, "--", "sh", "-c",
        "id -u; awk '{print $1, $2, $3}' /proc/self/uid_map; stat -c %U /etc/passwd; hostname rl && hostname; echo w > /w && cat /w; cat /proc/1/comm",
    ]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["0", "0 65534 1", "root", "rl", "w", "rinit"]
    );

    // Named: kept with its upper dir (a whiteout for a deleted file), removed by rm.
    ok(
        &store,
        "rrun",
        &[
            "--name",
            "keep",
            "--net",
            "none",
            "--image",
            &image,
            "--",
            "rm",
            "/etc/motd",
        ],
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(&store, "rrun", &["inspect", "keep"])).unwrap();
    let up = inspect["upper_dir"].as_str().unwrap().to_string();
    assert!(Path::new(&up).join("etc/motd").exists(), "whiteout in {up}");
    ok(&store, "rrun", &["rm", "keep"]);
    assert!(!Path::new(&up).exists());

    // Volumes: read-write and :ro binds of the caller's own folder.
    let vol = scratch.join("vol");
    std::fs::create_dir(&vol).unwrap();
    std::fs::write(vol.join("in"), "host\n").unwrap();
    // the caller's own files, readable by it whatever the test's umask
    for p in [vol.join("in"), vol.clone()] {
        std::os::unix::fs::chown(&p, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let v = vol.to_str().unwrap();
    let out = ok(
        &store,
        "rrun",
        &[
            "--net",
            "none",
            "-v",
            &format!("{v}:/data"),
            "-v",
            &format!("{v}:/ro:ro"),
            "--image",
            &image,
            "--",
            "sh",
            "-c",
            "cat /data/in; echo out > /data/out; echo x > /ro/x 2>/dev/null || echo ro-refused",
        ],
    );
    assert_eq!(out.lines().collect::<Vec<_>>(), ["host", "ro-refused"]);
    assert_eq!(std::fs::read_to_string(vol.join("out")).unwrap(), "out\n");

    // Detached, exec, rm -f.
    ok(
        &store,
        "rrun",
        &[
            "-d",
            "--name",
            "bg",
            "--net",
            "none",
            "--hostname",
            "bghost",
            "--image",
            &image,
            "--",
            "sleep",
            "1000",
        ],
    );
    assert_eq!(ok(&store, "rrun", &["exec", "bg", "hostname"]), "bghost");
    ok(&store, "rrun", &["rm", "-f", "bg"]);
    let left: Vec<_> = std::fs::read_dir(store.join("containers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(store.to_str().unwrap()));

    // Limits need a cgroup the caller may write: refused with one line, nothing left.
    let o = as_nobody(
        &store,
        "rrun",
        &[
            "--net", "none", "--memory", "64m", "--image", &image, "--", "true",
        ],
    );
    assert_eq!(o.status.code(), Some(125));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    // this machine: every controller on cgroup v1, nothing delegated
    assert!(
        err.contains("--memory needs a cgroup delegated to you")
            && err.contains("memory controller is on cgroup v1"),
        "{err}"
    );
    assert!(std::fs::read_dir(store.join("containers"))
        .unwrap()
        .next()
        .is_none());
}
