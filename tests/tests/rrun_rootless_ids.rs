//! Id ranges of rrun's user namespaces (issue 12): a rootless user with /etc/subuid and
//! /etc/subgid ranges is root of its containers and its range is ids 1..=N (through newuidmap
//! and newgidmap), so an image file owned by uid 1000 shows as 1000 inside; a user without a
//! range gets the single-id map and one note naming the missing /etc/subuid entry; root refuses
//! an `rbox` range (its remapped containers' host ids), or without one its default range, that
//! overlaps a user's range.
//! Throwaway users: rrun_common::user.

mod rbuild_common;
mod rrun_common;

use std::fs;
use std::path::Path;
use std::process::Output;

use rbox_tests::{bin, require_root, Scratch};
use rbuild_common::{stderr, stdout, Member, RawTar};
use rrun_common::user::User;

/// A store and a scratch folder owned by `u`, with an image of the Alpine fixture and a layer
/// holding /home/user/secret owned by 1000:1000 (mode 0600).
fn image(u: &User, s: &Scratch) -> (std::path::PathBuf, String) {
    let store = s.join("store");
    fs::create_dir(&store).unwrap();
    u.own(&store);
    u.own(s.path());
    let fixture = u.fixture_in(s.path());
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
    // written with the test's umask (077 leaves it root's alone)
    u.own(&tar);
    let add = |f: &Path| stdout(&u.ok(&store, "rbuild", &["layer", "add", f.to_str().unwrap()]));
    let (base, top) = (add(&fixture), add(&tar));
    let image = stdout(&u.ok(&store, "rbuild", &["image", "create", &base, &top]));
    (store, image)
}

const SHOW: &str = "id -u; cat /proc/self/uid_map /proc/self/gid_map | awk '{print $1, $2, $3}'; stat -c %u:%g /home/user/secret; cat /home/user/secret";

#[test]
fn rootless_run_with_a_subordinate_range_keeps_image_owners() {
    require_root();
    let s = Scratch::new("rbi");
    // a range of its own, clear of root's default one (useradd's next free one may be that)
    let u = User::with_range();
    let (su, sg) = (
        u.range("/etc/subuid").expect("no /etc/subuid range"),
        u.range("/etc/subgid").expect("no /etc/subgid range"),
    );
    let (store, image) = image(&u, &s);
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
    let (store, image) = image(&u, &s);
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

/// A user's store below a set-group-ID folder of another group (a folder shared by a group):
/// mkdir(2) gives what is made there that folder's group, which the user's containers do not
/// map (their root group is the user's own). rbuild's layers and rrun's upper and work dirs
/// must still be the user's group: the container starts (before: the overlay refused its work
/// dir, EACCES; or overlayfs refused to copy /etc up to make /etc/resolv.conf, EOVERFLOW), the
/// image's folders are root's group inside, and /etc is writable. With a subordinate range
/// (rbuild in a user namespace) and without (owners collapsed to the user).
#[test]
fn a_store_in_a_set_group_id_folder_of_another_group_runs() {
    require_root();
    // the shared folder's group: one the user is not in, never its own
    const SHARED_GID: u32 = 65534;
    for u in [User::with_range(), User::new(true)] {
        assert_ne!(u.gid, SHARED_GID, "the user's own group");
        // the scratch folder is the shared one (so that other tests' leak checks know the
        // store below it as this test's)
        let s = Scratch::new("rbg");
        std::os::unix::fs::chown(s.path(), Some(u.uid), Some(SHARED_GID)).unwrap();
        fs::set_permissions(
            s.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o2775),
        )
        .unwrap();
        let store = s.join("store");
        let fixture = u.fixture_in(s.path());
        let layer = stdout(&u.ok(
            &store,
            "rbuild",
            &["layer", "add", fixture.to_str().unwrap()],
        ));
        let image = stdout(&u.ok(&store, "rbuild", &["image", "create", &layer]));
        let o = u.ok(
            &store,
            "rrun",
            &[
                "--net",
                "none",
                "--image",
                &image,
                "--",
                "sh",
                "-c",
                "stat -c %g / /etc /etc/resolv.conf; touch /etc/new && echo wrote",
            ],
        );
        assert_eq!(
            stdout(&o).lines().collect::<Vec<_>>(),
            ["0", "0", "0", "wrote"],
            "{}: {}",
            u.name,
            stderr(&o)
        );
        assert!(
            fs::read_dir(store.join("containers"))
                .unwrap()
                .next()
                .is_none(),
            "a container folder left"
        );
    }
}

/// Layers added as another group than rrun's (rbuild run with group 65534, owners collapsed
/// to it): the container cannot map that group, so overlayfs cannot copy /etc up to make
/// /etc/resolv.conf; refused in one line naming the fix, nothing left.
#[test]
fn layers_of_a_group_the_container_does_not_map_are_refused_in_one_line() {
    require_root();
    let s = Scratch::new("rbg");
    let u = User::new(true);
    assert_ne!(u.gid, 65534, "the user's own group");
    u.own(s.path());
    let store = s.join("store");
    let fixture = u.fixture_in(s.path());
    let mut c = rbox_tests::command("setpriv");
    c.arg(format!("--reuid={}", u.uid))
        .args(["--regid=65534", "--clear-groups", "--"])
        .arg(bin("rbuild"))
        .args(["layer", "add", fixture.to_str().unwrap()])
        .env("RBOX_ROOT", &store)
        .env("HOME", "/nonexistent")
        .current_dir("/");
    let layer = stdout(&rrun_common::output(c, 120));
    assert!(layer.starts_with("sha256:"), "{layer}");
    let image = stdout(&u.ok(&store, "rbuild", &["image", "create", &layer]));
    let o = u.run(
        &store,
        "rrun",
        &["--net", "none", "--image", &image, "--", "true"],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot create /etc/resolv.conf in the container: its folder in the image belongs to a user or group the container does not map")
            && err.contains("add them again as the user and group that run rrun"),
        "{err}"
    );
    assert!(fs::read_dir(store.join("containers"))
        .unwrap()
        .next()
        .is_none());
}

/// rrun as root with `text` as /etc/subuid and /etc/subgid (bind-mounted in a private mount
/// namespace, so the host's files and other users of them are untouched, and whatever ranges
/// the host's files hold right now play no part).
fn with_subuid(lab: &rrun_common::Lab, s: &Scratch, text: &str) -> Output {
    let f = s.join("subuid");
    fs::write(&f, text).unwrap();
    let mut c = rbox_tests::command("unshare");
    c.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg("mount --bind \"$1\" /etc/subuid && mount --bind \"$1\" /etc/subgid && shift && exec \"$@\"")
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
    // no useradd or userdel of this binary's other tests replaces the files meanwhile
    let _files = rrun_common::user::subid_files_lock();
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

#[test]
fn root_refuses_its_default_range_where_it_overlaps_a_users_range() {
    // No rbox entry: root's containers would be host ids 100000-165535, the very range
    // Debian's useradd gives its first user, who could then (through newuidmap) signal, trace
    // and write as root of every remapped container.
    let lab = rrun_common::Lab::new("rbi");
    let s = Scratch::new("rbi");
    let o = with_subuid(&lab, &s, "alice:100000:65536\n");
    assert!(!o.status.success(), "ran: {}", stdout(&o));
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("/etc/subuid has no rbox entry, and root's default remap range 100000-165535 overlaps alice's subordinate range 100000-165535")
            && err.contains("give rbox a range beyond every other"),
        "{err}"
    );
    // clear of it: the default is used
    let o = with_subuid(&lab, &s, "alice:165536:65536\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    lab.assert_clean(&[]);
}
