//! rbuild without privileges (run as uid/gid 65534 through setpriv): the store defaults to
//! $XDG_DATA_HOME/rbox, owners collapse to the user, device nodes are skipped with one warning,
//! whiteouts and opaque directories use what an unprivileged overlay mount (userxattr) reads,
//! proved by mounting the layers in a user namespace.

mod rbuild_common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Output;

use rbox_tests::{bin, require_root, Scratch};
use rbuild_common::*;

const NOBODY: u32 = 65534;

fn as_nobody(args: &[&str], envs: &[(&str, &Path)]) -> Output {
    let mut c = rbox_tests::command("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(bin("rbuild"))
        .args(args);
    c.env_remove("RBOX_ROOT")
        .env_remove("XDG_DATA_HOME")
        .env("HOME", "/nonexistent");
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().expect("setpriv")
}

/// A folder owned by the unprivileged user.
fn user_dir(p: &Path) -> PathBuf {
    fs::create_dir_all(p).unwrap();
    std::os::unix::fs::chown(p, Some(NOBODY), Some(NOBODY)).unwrap();
    p.to_path_buf()
}

/// The archive `t` at `name` in `s`, 0644 whatever the umask: the unprivileged user reads it.
fn write_tar(s: &Scratch, name: &str, t: Vec<u8>) -> String {
    let f = s.join(name);
    fs::write(&f, t).unwrap();
    fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    f.to_str().unwrap().to_string()
}

fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    rustix::fs::lgetxattr(p, name, &mut buf[..])
        .ok()
        .map(|n| buf[..n].to_vec())
}

#[test]
fn rootless_layer_add_collapses_owners_and_skips_device_nodes_with_a_warning() {
    require_root();
    let s = Scratch::new("rbr");
    let store = user_dir(&s.join("store"));
    let mut t = RawTar::new();
    t.add(&Member {
        uid: 0,
        gid: 0,
        mode: 0o4755,
        data: b"suid",
        ..Member::new(b"bin/su", b'0')
    });
    t.add(&Member {
        uid: 1000,
        gid: 1000,
        mode: 0o640,
        data: b"mine",
        ..Member::new(b"home/u/f", b'0')
    });
    t.add(&Member {
        mode: 0o666,
        dev: (1, 3),
        ..Member::new(b"dev/null", b'3')
    });
    t.add(&Member {
        mode: 0o660,
        dev: (8, 0),
        ..Member::new(b"dev/sda", b'4')
    });
    t.add(&Member {
        mode: 0o600,
        ..Member::new(b"run/fifo", b'6')
    });
    t.add(&Member {
        mode: 0o555,
        ..Member::new(b"ro/", b'5')
    });
    t.file(b"ro/inside", b"x");
    t.symlink(b"link", b"bin/su");
    // modes that lock even the owner out: extraction, the tree digest and fsck still cope
    t.add(&Member {
        mode: 0o000,
        ..Member::new(b"locked/", b'5')
    });
    t.add(&Member {
        mode: 0o000,
        ..Member::new(b"locked/inner/", b'5')
    });
    t.add(&Member {
        mode: 0o000,
        data: b"shadow",
        pax: vec![(b"SCHILY.xattr.user.k".to_vec(), b"v".to_vec())],
        ..Member::new(b"locked/inner/secret", b'0')
    });
    t.add(&Member {
        data: b"x",
        pax: vec![(b"SCHILY.xattr.user.kept".to_vec(), b"1".to_vec())],
        ..Member::new(b"xattr", b'0')
    });
    let f = write_tar(&s, "rootless.tar", t.finish());
    let o = as_nobody(
        &["--root", store.to_str().unwrap(), "layer", "add", &f],
        &[],
    );
    let id = ok_line(&o);
    let err = stderr(&o);
    assert_eq!(
        err,
        "rbuild: warning: 2 device node(s) skipped: only root can create them"
    );

    let r = rootfs(&store, &id);
    for p in [
        "bin/su",
        "home/u/f",
        "run/fifo",
        "ro",
        "ro/inside",
        "link",
        "locked/inner/secret",
        ".",
    ] {
        let m = fs::symlink_metadata(r.join(p)).unwrap();
        assert_eq!(
            (m.uid(), m.gid()),
            (NOBODY, NOBODY),
            "{p} owned by the user"
        );
    }
    assert!(!r.join("dev/null").exists() && !r.join("dev/sda").exists());
    assert!(fs::symlink_metadata(r.join("run/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(
        fs::symlink_metadata(r.join("bin/su")).unwrap().mode() & 0o7777,
        0o4755
    );
    assert_eq!(
        fs::symlink_metadata(r.join("ro")).unwrap().mode() & 0o7777,
        0o555
    );
    assert_eq!(xattr(&r.join("xattr"), "user.kept"), Some(b"1".to_vec()));
    assert_eq!(
        fs::symlink_metadata(r.join("locked")).unwrap().mode() & 0o7777,
        0o000
    );
    assert_eq!(fs::read(r.join("locked/inner/secret")).unwrap(), b"shadow");
    assert_eq!(
        fs::symlink_metadata(r.join("locked/inner/secret"))
            .unwrap()
            .mode()
            & 0o7777,
        0o000
    );
    let meta = fs::read_to_string(store.join("layers").join(&id[7..]).join("layer.json")).unwrap();
    assert!(meta.contains("\"rootless\": true"), "{meta}");

    // adding again drops the new staging copy, even with its read-only folders
    assert_eq!(
        ok_line(&as_nobody(
            &["--root", store.to_str().unwrap(), "layer", "add", &f],
            &[]
        )),
        id
    );
    assert_eq!(
        fs::read_dir(store.join("tmp")).unwrap().count(),
        0,
        "staging left behind"
    );
    // fsck as the user verifies the tree
    let o = as_nobody(&["--root", store.to_str().unwrap(), "fsck"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        fs::symlink_metadata(r.join("locked/inner")).unwrap().mode() & 0o7777,
        0o000,
        "fsck put modes back"
    );
}

#[test]
fn rootless_store_defaults_to_xdg_data_home() {
    require_root();
    let s = Scratch::new("rbr");
    let xdg = user_dir(&s.join("xdg"));
    let f = write_tar(&s, "a.tar", RawTar::new().file(b"a", b"a").finish());
    let id = ok_line(&as_nobody(
        &["layer", "add", &f],
        &[("XDG_DATA_HOME", &xdg)],
    ));
    assert!(
        rootfs(&xdg.join("rbox"), &id).join("a").is_file(),
        "layer stored under $XDG_DATA_HOME/rbox"
    );
    let ls = stdout(&as_nobody(&["layer", "ls"], &[("XDG_DATA_HOME", &xdg)]));
    assert!(ls.contains(&id), "{ls}");
}

#[test]
fn rootless_refusal_leaves_the_store_as_it_was() {
    require_root();
    let s = Scratch::new("rbr");
    let store = user_dir(&s.join("store"));
    // a store with a layer in it (a listing would not make one: reading creates nothing)
    let seed = write_tar(
        &s,
        "seed.tar",
        RawTar::new().file(b"seed", b"seed").finish(),
    );
    ok_line(&as_nobody(
        &["--root", store.to_str().unwrap(), "layer", "add", &seed],
        &[],
    ));
    let before = snapshot(&store);
    let t = RawTar::new()
        .dir(b"locked/")
        .file(b"locked/f", b"f")
        .symlink(b"s", b"/etc")
        .file(b"s/passwd", b"x")
        .finish();
    let f = write_tar(&s, "hostile.tar", t);
    let o = as_nobody(
        &["--root", store.to_str().unwrap(), "layer", "add", &f],
        &[],
    );
    assert_refused(
        &o,
        "is written through a symlink that leaves the layer root; refused",
    );
    assert_eq!(snapshot(&store), before);
}

#[test]
fn rootless_whiteouts_work_in_an_unprivileged_overlay_mount() {
    require_root();
    let s = Scratch::new("rbr");
    let store = user_dir(&s.join("store"));
    let mnt = user_dir(&s.join("mnt"));
    let root = store.to_str().unwrap();
    let lower = write_tar(
        &s,
        "lower.tar",
        RawTar::new()
            .file(b"gone", b"g")
            .file(b"kept", b"k")
            .file(b"d/old", b"o")
            .finish(),
    );
    let upper = write_tar(
        &s,
        "upper.tar",
        RawTar::new()
            .file(b".wh.gone", b"")
            .file(b"d/.wh..wh..opq", b"")
            .file(b"d/new", b"n")
            .finish(),
    );
    let lo = ok_line(&as_nobody(&["--root", root, "layer", "add", &lower], &[]));
    let up = ok_line(&as_nobody(&["--root", root, "layer", "add", &upper], &[]));
    let upr = rootfs(&store, &up);
    assert_eq!(
        xattr(&upr.join("d"), "user.overlay.opaque"),
        Some(b"y".to_vec()),
        "user.* opaque xattr"
    );
    let wh = fs::symlink_metadata(upr.join("gone")).unwrap();
    let is_dev_whiteout = wh.file_type().is_char_device() && wh.rdev() == 0;
    let is_xattr_whiteout = wh.is_file()
        && wh.len() == 0
        && xattr(&upr.join("gone"), "user.overlay.whiteout").is_some();
    assert!(
        is_dev_whiteout || is_xattr_whiteout,
        "a whiteout an unprivileged overlay understands"
    );

    let script = format!(
        "mount -t overlay overlay -o userxattr,lowerdir={}:{} {m} && \
         for p in gone kept d/old d/new; do if [ -e {m}/$p ]; then echo \"$p present\"; else echo \"$p hidden\"; fi; done",
        upr.display(),
        rootfs(&store, &lo).display(),
        m = mnt.display()
    );
    let o = rbox_tests::command("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            "unshare",
            "-Urm",
            "sh",
            "-c",
            &script,
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "rootless overlay mount: {}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "gone hidden\nkept present\nd/old hidden\nd/new present"
    );
}

/// A throwaway user with subordinate id ranges (Debian's useradd allocates them), removed
/// with its ranges on drop.
struct SubidUser {
    name: String,
    uid: u32,
    gid: u32,
    sub_uid: u32,
    sub_gid: u32,
}

impl SubidUser {
    fn new() -> SubidUser {
        let name = rbox_tests::unique("rbt");
        let st = rbox_tests::command("useradd")
            .args(["-M", "-N", "-s", "/bin/false", &name])
            .status()
            .unwrap();
        assert!(st.success(), "useradd {name}");
        let id = |flag: &str| -> u32 {
            stdout(
                &rbox_tests::command("id")
                    .args([flag, &name])
                    .output()
                    .unwrap(),
            )
            .parse()
            .unwrap()
        };
        let start = |file: &str| -> u32 {
            let text = fs::read_to_string(file).unwrap();
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("{name}:")))
                .unwrap_or_else(|| panic!("no {file} range for {name}"));
            line.split(':').nth(1).unwrap().parse().unwrap()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        SubidUser {
            sub_uid: start("/etc/subuid"),
            sub_gid: start("/etc/subgid"),
            name,
            uid,
            gid,
        }
    }

    fn rbuild(&self, args: &[&str], envs: &[(&str, &str)]) -> Output {
        let mut c = rbox_tests::command("setpriv");
        c.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .args(["--clear-groups", "--"]);
        c.arg(bin("rbuild"))
            .args(args)
            .env_remove("RBOX_ROOT")
            .env("HOME", "/nonexistent");
        for (k, v) in envs {
            c.env(k, v);
        }
        c.output().unwrap()
    }
}

impl Drop for SubidUser {
    fn drop(&mut self) {
        rbox_tests::userdel(&self.name);
    }
}

#[test]
fn rootless_with_subordinate_ids_keeps_image_owners() {
    require_root();
    let s = Scratch::new("rbr");
    let u = SubidUser::new();
    let store = s.join("store");
    fs::create_dir_all(&store).unwrap();
    std::os::unix::fs::chown(&store, Some(u.uid), Some(u.gid)).unwrap();
    let root = store.to_str().unwrap();
    let mut t = RawTar::new();
    t.add(&Member {
        uid: 0,
        gid: 0,
        data: b"r",
        ..Member::new(b"etc/passwd", b'0')
    });
    t.add(&Member {
        uid: 0,
        gid: 42,
        mode: 0o640,
        data: b"s",
        ..Member::new(b"etc/shadow", b'0')
    });
    t.add(&Member {
        uid: 1000,
        gid: 1000,
        mode: 0o700,
        ..Member::new(b"home/user/", b'5')
    });
    t.add(&Member {
        uid: 1000,
        gid: 1000,
        mode: 0o600,
        data: b"u",
        ..Member::new(b"home/user/secret", b'0')
    });
    t.add(&Member {
        uid: 200_000,
        gid: 200_000,
        data: b"far",
        ..Member::new(b"far", b'0')
    });
    t.add(&Member {
        mode: 0o666,
        dev: (1, 3),
        ..Member::new(b"dev/null", b'3')
    });
    let f = write_tar(&s, "owners.tar", t.finish());

    let o = u.rbuild(&["--root", root, "layer", "add", &f], &[]);
    let id = ok_line(&o);
    let err = stderr(&o);
    assert!(
        err.contains("1 device node(s) skipped")
            && err.contains("1 member(s) owned by ids outside"),
        "{err}"
    );
    let r = rootfs(&store, &id);
    let own = |p: &str| {
        let m = fs::symlink_metadata(r.join(p)).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(own("etc/passwd"), (u.uid, u.gid), "image root is the user");
    assert_eq!(
        own("etc/shadow"),
        (u.uid, u.sub_gid + 41),
        "gid 42 -> the 42nd subordinate gid"
    );
    assert_eq!(
        own("home/user/secret"),
        (u.sub_uid + 999, u.sub_gid + 999),
        "uid 1000 -> subordinate range"
    );
    assert_eq!(
        own("far"),
        (u.uid, u.gid),
        "outside the range: owned by the user"
    );
    let meta = fs::read_to_string(store.join("layers").join(&id[7..]).join("layer.json")).unwrap();
    assert!(
        meta.contains(&format!("\"uid\": \"0:{}:1,1:{}:65536\"", u.uid, u.sub_uid)),
        "{meta}"
    );

    // every command runs in the same mapping: fsck reads the 0700/0600 files, gc removes them
    let o = u.rbuild(&["--root", root, "fsck"], &[]);
    assert!(o.status.success(), "fsck: {}", stderr(&o));
    assert_eq!(ok_line(&u.rbuild(&["--root", root, "gc"], &[])), id);
    assert!(!store.join("layers").join(&id[7..]).exists());
    assert_eq!(fs::read_dir(store.join("tmp")).unwrap().count(), 0);

    // RBUILD_SUBIDS=0 collapses owners instead
    let id2 = ok_line(&u.rbuild(
        &["--root", root, "layer", "add", &f],
        &[("RBUILD_SUBIDS", "0")],
    ));
    let m = fs::symlink_metadata(rootfs(&store, &id2).join("home/user/secret")).unwrap();
    assert_eq!((m.uid(), m.gid()), (u.uid, u.gid));
}

#[test]
fn rootless_store_is_private_to_the_user() {
    require_root();
    let s = Scratch::new("rbr");
    let xdg = user_dir(&s.join("xdg"));
    let f = write_tar(&s, "a.tar", RawTar::new().file(b"a", b"a").finish());
    ok_line(&as_nobody(
        &["layer", "add", &f],
        &[("XDG_DATA_HOME", &xdg)],
    ));
    let store = xdg.join("rbox");
    for sub in [
        "",
        "layers",
        "images",
        "holds",
        "containers",
        "blobs",
        "tmp",
    ] {
        let md = fs::metadata(store.join(sub)).unwrap();
        assert_eq!(
            (md.mode() & 0o7777, md.uid()),
            (0o700, NOBODY),
            "{}/{sub}",
            store.display()
        );
    }
}

#[test]
fn image_create_refuses_layers_extracted_rootless_and_as_root_together() {
    require_root();
    let s = Scratch::new("rbr");
    let store = user_dir(&s.join("store"));
    let a = write_tar(&s, "a.tar", RawTar::new().file(b"a", b"a").finish());
    let b = write_tar(&s, "b.tar", RawTar::new().file(b"b", b"b").finish());
    let rootless = ok_line(&as_nobody(
        &["--root", store.to_str().unwrap(), "layer", "add", &a],
        &[],
    ));
    let root = ok_line(&rbuild(&store, &["layer", "add", &b]));
    for one in [&rootless, &root] {
        ok_line(&rbuild(&store, &["image", "create", one]));
    }
    let o = rbuild(&store, &["image", "create", &root, &rootless]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("rbuild: image create: the new image mixes layers extracted as root")
            && err.contains(&format!("({root})"))
            && err.contains(&format!("without privileges ({rootless})")),
        "{err}"
    );
    assert_eq!(
        stdout(&rbuild(&store, &["image", "ls", "-q"]))
            .lines()
            .count(),
        2,
        "nothing more was created"
    );
}

#[test]
fn rootless_layer_add_writes_again_into_directories_it_already_made_read_only() {
    require_root();
    let s = Scratch::new("rbr");
    let store = user_dir(&s.join("store"));
    let f = write_tar(&s, "revisit.tar", revisiting_tar());
    let id = ok_line(&as_nobody(
        &["--root", store.to_str().unwrap(), "layer", "add", &f],
        &[],
    ));
    assert_revisited(&rootfs(&store, &id));
    let o = as_nobody(&["--root", store.to_str().unwrap(), "fsck"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// The previous round's regression: directories are settled as soon as the archive leaves
/// them, so a rootless extraction meets its own 0600 directory again when a later member is
/// written through a symlink that leads through it (`lib64 -> d/lib`), or hardlinks a file
/// inside it. Both are written, and every directory ends with its own mode and mtime.
#[test]
fn rootless_layer_add_writes_through_a_symlink_into_a_directory_settled_unsearchable() {
    require_root();
    let s = Scratch::new("rbr");
    let store = user_dir(&s.join("store"));
    let d = |name: &'static [u8], mode: u32, mtime: u64| Member {
        mode,
        mtime,
        ..Member::new(name, b'5')
    };
    let mut t = RawTar::new();
    t.add(&d(b"d/", 0o600, 1_000_000_001));
    t.add(&d(b"d/lib/", 0o755, 1_000_000_002));
    t.file(b"d/lib/first", b"1");
    t.add(&d(b"z/", 0o755, 1_000_000_003));
    t.symlink(b"lib64", b"d/lib");
    t.file(b"lib64/second", b"2");
    t.symlink(b"up", b"z/../d");
    t.file(b"up/lib/third", b"3");
    t.hardlink(b"z/linked", b"d/lib/first");
    t.file(b"zz", b"end");
    let f = write_tar(&s, "through.tar", t.finish());
    let o = as_nobody(
        &["--root", store.to_str().unwrap(), "layer", "add", &f],
        &[],
    );
    let id = ok_line(&o);
    let r = rootfs(&store, &id);
    let m = |p: &str| {
        let md = fs::symlink_metadata(r.join(p)).unwrap();
        (md.mode() & 0o7777, md.mtime())
    };
    assert_eq!(m("d"), (0o600, 1_000_000_001), "d");
    assert_eq!(m("d/lib"), (0o755, 1_000_000_002), "d/lib");
    assert_eq!(m("z"), (0o755, 1_000_000_003), "z");
    for (p, want) in [
        ("d/lib/first", "1"),
        ("d/lib/second", "2"),
        ("d/lib/third", "3"),
        ("z/linked", "1"),
    ] {
        assert_eq!(fs::read_to_string(r.join(p)).unwrap(), want, "{p}");
    }
    assert_eq!(
        fs::symlink_metadata(r.join("z/linked")).unwrap().ino(),
        fs::symlink_metadata(r.join("d/lib/first")).unwrap().ino(),
        "a hardlink, not a copy"
    );
    let o = as_nobody(&["--root", store.to_str().unwrap(), "fsck"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
}
