//! Id ranges of rrun's user namespaces (issue 12): a rootless user with /etc/subuid and
//! /etc/subgid ranges is root of its containers and its range is ids 1..=N (through newuidmap
//! and newgidmap), so an image file owned by uid 1000 shows as 1000 inside; a user without a
//! range gets the single-id map and one note naming the missing /etc/subuid entry; root refuses
//! an `rbox` range (its remapped containers' host ids) that overlaps a user's range.
//! Throwaway users are made with useradd (which adds and, through userdel, removes their
//! /etc/subuid and /etc/subgid lines under the shadow lock) and removed on drop.

mod rbuild_common;
mod rrun_common;

use std::fs;
use std::path::Path;
use std::process::Output;

use rbox_tests::{alpine_fixture, bin, require_root, Scratch};
use rbuild_common::{stderr, stdout, Member, RawTar};

/// A throwaway user; `system` ones get no subordinate ranges from useradd.
struct User {
    name: String,
    uid: u32,
    gid: u32,
}

impl User {
    fn new(system: bool) -> User {
        let name = rbox_tests::unique("rbi");
        let mut c = rbox_tests::command("useradd");
        c.args(["-M", "-N", "-s", "/bin/false"]);
        if system {
            c.arg("-r");
        }
        assert!(c.arg(&name).status().unwrap().success(), "useradd {name}");
        let id = |flag: &str| -> u32 {
            let o = rbox_tests::command("id")
                .args([flag, &name])
                .output()
                .unwrap();
            stdout(&o).parse().unwrap()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        User { name, uid, gid }
    }

    /// This user's first range in `file` (START, COUNT), if any.
    fn range(&self, file: &str) -> Option<(u32, u32)> {
        let text = fs::read_to_string(file).unwrap_or_default();
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{}:", self.name)))?;
        let f: Vec<&str> = line.split(':').collect();
        Some((f[1].parse().unwrap(), f[2].parse().unwrap()))
    }

    fn run(&self, store: &Path, program: &str, args: &[&str]) -> Output {
        let mut c = rbox_tests::command("setpriv");
        c.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .args(["--clear-groups", "--"])
            .arg(bin(program))
            .args(args);
        c.env("RBOX_ROOT", store)
            .env("HOME", "/nonexistent")
            .env_remove("RBOX_RINIT")
            .env_remove("RBUILD_SUBIDS")
            .current_dir("/");
        rrun_common::output(c, 120)
    }

    fn ok(&self, store: &Path, program: &str, args: &[&str]) -> Output {
        let o = self.run(store, program, args);
        assert!(o.status.success(), "{program} {args:?}: {}", stderr(&o));
        o
    }

    /// A store and a scratch folder owned by this user, with an image of the Alpine fixture
    /// and a layer holding /home/user/secret owned by 1000:1000 (mode 0600).
    fn image(&self, s: &Scratch) -> (std::path::PathBuf, String) {
        let own = |p: &Path| std::os::unix::fs::chown(p, Some(self.uid), Some(self.gid)).unwrap();
        let store = s.join("store");
        fs::create_dir(&store).unwrap();
        own(&store);
        own(s.path());
        let fixture = s.join("alpine.tar.gz");
        fs::copy(alpine_fixture("3.15.11"), &fixture).unwrap();
        let mut t = RawTar::new();
        t.add(&Member {
            uid: 1000,
            gid: 1000,
            mode: 0o755,
            ..Member::new(b"home/user/", b'5')
        });
        t.add(&Member {
            uid: 1000,
            gid: 1000,
            mode: 0o600,
            data: b"mine",
            ..Member::new(b"home/user/secret", b'0')
        });
        let tar = s.join("owners.tar");
        fs::write(&tar, t.finish()).unwrap();
        let add =
            |f: &Path| stdout(&self.ok(&store, "rbuild", &["layer", "add", f.to_str().unwrap()]));
        let (base, top) = (add(&fixture), add(&tar));
        let image = stdout(&self.ok(&store, "rbuild", &["image", "create", &base, &top]));
        (store, image)
    }
}

impl Drop for User {
    fn drop(&mut self) {
        rbox_tests::userdel(&self.name);
    }
}

const SHOW: &str = "id -u; cat /proc/self/uid_map /proc/self/gid_map | awk '{print $1, $2, $3}'; stat -c %u:%g /home/user/secret; cat /home/user/secret";

#[test]
fn rootless_run_with_a_subordinate_range_keeps_image_owners() {
    require_root();
    let s = Scratch::new("rbi");
    let u = User::new(false);
    let (su, sg) = (
        u.range("/etc/subuid")
            .expect("useradd gave no /etc/subuid range"),
        u.range("/etc/subgid")
            .expect("useradd gave no /etc/subgid range"),
    );
    let (store, image) = u.image(&s);
    let o = u.ok(
        &store,
        "rrun",
        &["--net", "none", "--image", &image, "--", "sh", "-c", SHOW],
    );
    assert_eq!(
        stdout(&o).lines().collect::<Vec<_>>(),
        [
            "0".to_string(),
            format!("0 {} 1", u.uid),
            format!("1 {} {}", su.0, su.1),
            format!("0 {} 1", u.gid),
            format!("1 {} {}", sg.0, sg.1),
            "1000:1000".to_string(),
            "mine".to_string(),
        ]
    );
    assert!(!stderr(&o).contains("note"), "{}", stderr(&o));
}

#[test]
fn rootless_run_without_a_range_maps_one_id_with_a_note() {
    require_root();
    let s = Scratch::new("rbi");
    let u = User::new(true);
    assert_eq!(u.range("/etc/subuid"), None, "a system user got a range");
    let (store, image) = u.image(&s);
    let o = u.ok(
        &store,
        "rrun",
        &["--net", "none", "--image", &image, "--", "sh", "-c", SHOW],
    );
    assert_eq!(
        stdout(&o).lines().collect::<Vec<_>>(),
        [
            "0".to_string(),
            format!("0 {} 1", u.uid),
            format!("0 {} 1", u.gid),
            // rbuild collapsed the owners to the user when it added the layer without a range
            "0:0".to_string(),
            "mine".to_string(),
        ]
    );
    let err = stderr(&o);
    let notes: Vec<&str> = err.lines().filter(|l| l.contains("note")).collect();
    assert_eq!(notes.len(), 1, "{err}");
    assert!(
        notes[0].contains(&format!("/etc/subuid has no entry for {}", u.name)),
        "{err}"
    );
}

/// rrun as root with `text` as /etc/subuid (bind-mounted in a private mount namespace, so the
/// host's file and other users of it are untouched).
fn with_subuid(lab: &rrun_common::Lab, s: &Scratch, text: &str) -> Output {
    let f = s.join("subuid");
    fs::write(&f, text).unwrap();
    let mut c = rbox_tests::command("unshare");
    c.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg("mount --bind \"$1\" /etc/subuid && shift && exec \"$@\"")
        .arg("sh")
        .arg(&f)
        .arg(bin("rrun"))
        .args([
            "--net",
            "none",
            "--image",
            &lab.image,
            "--",
            "cat",
            "/proc/self/uid_map",
        ]);
    c.env("RBOX_ROOT", lab.store.path());
    rrun_common::output(c, 60)
}

#[test]
fn root_refuses_an_rbox_range_overlapping_a_users_range() {
    let lab = rrun_common::Lab::new("rbi");
    let s = Scratch::new("rbi");
    let o = with_subuid(&lab, &s, "alice:100000:65536\nrbox:165000:65536\n");
    assert!(!o.status.success(), "ran: {}", stdout(&o));
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("rbox range 165000-230535 in /etc/subuid overlaps alice's subordinate range 100000-165535"),
        "{err}"
    );
    // beyond every other range: used
    let o = with_subuid(&lab, &s, "alice:100000:65536\nrbox:165536:65536\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).split_whitespace().collect::<Vec<_>>(),
        ["0", "165536", "65536"]
    );
    lab.assert_clean(&[]);
}
