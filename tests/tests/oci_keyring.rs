//! The container's session keyring, rrun-oci against runc (Debian's): by default the
//! container's processes join a keyring of their own, `_ses.<id>`, instead of the caller's;
//! with --no-new-keyring they keep the caller's. Observed from the host through /proc/keys
//! (keyrings(7)): the runtime is started with a session keyring of the test's own (python3
//! calls keyctl(2) KEYCTL_JOIN_SESSION_KEYRING, then execs the runtime). Once the runtime has
//! exited, that keyring lives on only if the container's init holds it: the kernel collects
//! a keyring nobody references.

mod ocirt_common;

use std::time::{Duration, Instant};

use ocirt_common::{id, Bundle, Runtime};
use rbox_tests::{command, require_root, unique};

/// Joins session keyring argv[1], then execs argv[2..] (keyctl's number per architecture).
const JOIN: &str = r#"
import ctypes, os, platform, sys
nr = {"x86_64": 250, "aarch64": 219}[platform.machine()]
libc = ctypes.CDLL(None, use_errno=True)
if libc.syscall(nr, 1, sys.argv[1].encode()) < 0:
    sys.exit("keyctl join: " + os.strerror(ctypes.get_errno()))
os.execvp(sys.argv[2], sys.argv[2:])
"#;

/// The /proc/keys line of the keyring named `name`, if it exists.
fn keyring(name: &str) -> Option<String> {
    std::fs::read_to_string("/proc/keys")
        .expect("/proc/keys (a kernel with CONFIG_KEYS)")
        .lines()
        .find(|l| l.split_whitespace().nth(8) == Some(&format!("{name}:")))
        .map(String::from)
}

/// Waits up to 5 s for `name` to be collected; true if it was.
fn collected(name: &str) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if keyring(name).is_none() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// `run -d [FLAG]` under a session keyring of the test's own; what /proc/keys shows.
fn keyrings(rt: &Runtime, b: &Bundle, flag: Option<&str>) -> Vec<String> {
    let (c, ours) = (id("key"), unique("rbox-test-ses-"));
    let mut cmd = command("python3");
    cmd.args(["-c", JOIN, &ours])
        .arg(&rt.exe)
        .arg("--root")
        .arg(rt.root.join("state"))
        .args(["run", "-d"])
        .args(flag)
        .args(["--bundle", b.path().to_str().unwrap(), &c])
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(rt.root.join("run.out")).unwrap())
        .stderr(std::fs::File::create(rt.root.join("run.err")).unwrap());
    let st = cmd.status().expect("python3");
    assert!(
        st.success(),
        "{} run -d: {}",
        rt.name,
        std::fs::read_to_string(rt.root.join("run.err")).unwrap_or_default()
    );
    let own = keyring(&format!("_ses.{c}")).map(|l| {
        // serial, flags, usage, timeout, perm, uid, gid, type, description
        let f: Vec<&str> = l.split_whitespace().collect();
        format!("own keyring perm {} uid {} type {}", f[4], f[5], f[7])
    });
    let seen = vec![
        format!(
            "{:?}",
            own.unwrap_or_else(|| "no keyring of its own".into())
        ),
        format!(
            "caller's keyring held by the container: {}",
            !collected(&ours)
        ),
    ];
    rt.cleanup(&c);
    assert!(
        collected(&ours),
        "{}: the caller's keyring outlived the container: {:?} {seen:?}",
        rt.name,
        keyring(&ours)
    );
    seen
}

#[test]
fn session_keyring_of_its_own_unless_no_new_keyring_like_runc() {
    require_root();
    let b = Bundle::new();
    b.args(&["sleep", "1000"]);
    let [runc, ours] = Runtime::both();
    for flag in [None, Some("--no-new-keyring")] {
        let want = keyrings(&runc, &b, flag);
        let got = keyrings(&ours, &b, flag);
        assert_eq!(got, want, "{flag:?}: rrun-oci (left) against runc (right)");
        match flag {
            None => assert_eq!(
                want,
                [
                    "\"own keyring perm 3f1b0000 uid 0 type keyring\"",
                    "caller's keyring held by the container: false"
                ]
            ),
            Some(_) => assert_eq!(
                want,
                [
                    "\"no keyring of its own\"",
                    "caller's keyring held by the container: true"
                ]
            ),
        }
    }
}
