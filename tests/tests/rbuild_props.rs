//! rbuild layer add keeps what an image means, on layers the tests build themselves: file types,
//! modes with set-id and sticky bits, numeric owners, mtimes, xattrs (security.capability too),
//! long and non-UTF-8 names, later duplicates winning, OCI whiteouts as overlayfs whiteouts
//! (proved by a real overlay mount), compression variants and the DiffID definition.

mod rbuild_common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rbox_tests::{require_root, Scratch};
use rbuild_common::*;

fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    match rustix::fs::lgetxattr(p, name, &mut buf[..]) {
        Ok(n) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

fn add_tar(s: &Scratch, root: &Path, name: &str, bytes: &[u8]) -> (String, PathBuf) {
    let f = s.join(name);
    fs::write(&f, bytes).unwrap();
    let id = add_ok(root, &f);
    let r = rootfs(root, &id);
    (id, r)
}

#[test]
fn layer_add_keeps_modes_owners_and_mtimes() {
    require_root();
    let s = Scratch::new("rbp");
    let root = s.join("store");
    let mut t = RawTar::new();
    t.add(&Member {
        mode: 0o750,
        uid: 1000,
        gid: 1001,
        mtime: 1_234_567_890,
        ..Member::new(b"d/", b'5')
    });
    t.add(&Member {
        mode: 0o640,
        uid: 1000,
        gid: 1001,
        mtime: 1_500_000_000,
        data: b"data",
        ..Member::new(b"d/f", b'0')
    });
    t.add(&Member {
        mode: 0o4755,
        data: b"#!/bin/sh\n",
        ..Member::new(b"setuid", b'0')
    });
    t.add(&Member {
        mode: 0o2755,
        gid: 50,
        data: b"#!/bin/sh\n",
        ..Member::new(b"setgid", b'0')
    });
    t.add(&Member {
        mode: 0o1777,
        ..Member::new(b"sticky/", b'5')
    });
    t.add(&Member {
        mode: 0o000,
        uid: 7,
        gid: 7,
        data: b"secret",
        ..Member::new(b"nomode", b'0')
    });
    t.add(&Member {
        mode: 0o555,
        ..Member::new(b"ro/", b'5')
    });
    t.add(&Member {
        mode: 0o444,
        data: b"in a read-only dir",
        ..Member::new(b"ro/file", b'0')
    });
    t.add(&Member {
        mode: 0o6711,
        uid: 4294967294,
        gid: 4294967294,
        ..Member::new(b"bigids", b'0')
    });
    let (_, r) = add_tar(&s, &root, "modes.tar", &t.finish());

    let m = |p: &str| fs::symlink_metadata(r.join(p)).unwrap();
    assert_eq!(
        (
            m("d").mode() & 0o7777,
            m("d").uid(),
            m("d").gid(),
            m("d").mtime()
        ),
        (0o750, 1000, 1001, 1_234_567_890)
    );
    assert_eq!(
        (
            m("d/f").mode() & 0o7777,
            m("d/f").uid(),
            m("d/f").gid(),
            m("d/f").mtime()
        ),
        (0o640, 1000, 1001, 1_500_000_000)
    );
    assert_eq!(fs::read(r.join("d/f")).unwrap(), b"data");
    assert_eq!(m("setuid").mode() & 0o7777, 0o4755);
    assert_eq!(
        (m("setgid").mode() & 0o7777, m("setgid").gid()),
        (0o2755, 50)
    );
    assert_eq!(m("sticky").mode() & 0o7777, 0o1777);
    assert!(m("sticky").is_dir());
    assert_eq!((m("nomode").mode() & 0o7777, m("nomode").uid()), (0o000, 7));
    assert_eq!(m("ro").mode() & 0o7777, 0o555);
    assert_eq!(fs::read(r.join("ro/file")).unwrap(), b"in a read-only dir");
    assert_eq!(
        (
            m("bigids").mode() & 0o7777,
            m("bigids").uid(),
            m("bigids").gid()
        ),
        (0o6711, 4294967294, 4294967294)
    );
}

#[test]
fn layer_add_keeps_symlinks_hardlinks_fifos_and_device_nodes() {
    require_root();
    let s = Scratch::new("rbp");
    let root = s.join("store");
    let mut t = RawTar::new();
    t.file(b"bin/busybox", b"\x7fELF...");
    t.add(&Member {
        link: b"/bin/busybox",
        uid: 5,
        gid: 6,
        mtime: 1_111_111_111,
        ..Member::new(b"bin/sh", b'2')
    });
    t.symlink(b"lib64", b"lib");
    t.symlink(b"dangling", b"does/not/exist");
    t.hardlink(b"bin/ls", b"bin/busybox");
    t.add(&Member {
        mode: 0o750,
        ..Member::new(b"v7dir/", b'0')
    }); // old tars: a trailing slash means a directory
    t.file(b"v7dir/inside", b"v7");
    t.hardlink(b"/bin/cat", b"/bin/busybox");
    t.add(&Member {
        mode: 0o620,
        ..Member::new(b"run/fifo", b'6')
    });
    t.add(&Member {
        mode: 0o666,
        dev: (1, 3),
        ..Member::new(b"dev/null", b'3')
    });
    t.add(&Member {
        mode: 0o660,
        gid: 6,
        dev: (8, 1),
        ..Member::new(b"dev/sda1", b'4')
    });
    let (_, r) = add_tar(&s, &root, "types.tar", &t.finish());

    let m = |p: &str| fs::symlink_metadata(r.join(p)).unwrap();
    assert_eq!(
        fs::read_link(r.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    assert_eq!(
        (m("bin/sh").uid(), m("bin/sh").gid(), m("bin/sh").mtime()),
        (5, 6, 1_111_111_111)
    );
    assert_eq!(fs::read_link(r.join("lib64")).unwrap(), Path::new("lib"));
    assert_eq!(
        fs::read_link(r.join("dangling")).unwrap(),
        Path::new("does/not/exist")
    );
    assert_eq!(m("bin/ls").ino(), m("bin/busybox").ino());
    assert_eq!(m("bin/cat").ino(), m("bin/busybox").ino());
    assert_eq!(m("bin/busybox").nlink(), 3);
    assert!(m("v7dir").is_dir() && m("v7dir").mode() & 0o7777 == 0o750);
    assert_eq!(fs::read(r.join("v7dir/inside")).unwrap(), b"v7");
    assert!(m("run/fifo").file_type().is_fifo());
    assert_eq!(m("run/fifo").mode() & 0o7777, 0o620);
    assert!(m("dev/null").file_type().is_char_device());
    assert_eq!(
        (m("dev/null").rdev(), m("dev/null").mode() & 0o7777),
        (rustix::fs::makedev(1, 3), 0o666)
    );
    assert!(m("dev/sda1").file_type().is_block_device());
    assert_eq!(
        (m("dev/sda1").rdev(), m("dev/sda1").gid()),
        (rustix::fs::makedev(8, 1), 6)
    );
}

#[test]
fn layer_add_keeps_xattrs_including_security_capability() {
    require_root();
    let s = Scratch::new("rbp");
    let root = s.join("store");
    // VFS_CAP_REVISION_2, effective, permitted = CAP_NET_BIND_SERVICE (10)
    let cap: Vec<u8> = vec![
        0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let mut t = RawTar::new();
    t.add(&Member {
        mode: 0o755,
        data: b"ping",
        pax: vec![
            (b"SCHILY.xattr.security.capability".to_vec(), cap.clone()),
            (
                b"SCHILY.xattr.user.note".to_vec(),
                b"hello\0binary\xff".to_vec(),
            ),
        ],
        ..Member::new(b"bin/ping", b'0')
    });
    t.add(&Member {
        pax: vec![(b"SCHILY.xattr.trusted.mine".to_vec(), b"t".to_vec())],
        ..Member::new(b"etc/", b'5')
    });
    // overlay metadata in an archive would forge whiteouts: it is not kept
    t.add(&Member {
        pax: vec![(
            b"SCHILY.xattr.trusted.overlay.opaque".to_vec(),
            b"y".to_vec(),
        )],
        ..Member::new(b"forged/", b'5')
    });
    let (_, r) = add_tar(&s, &root, "xattrs.tar", &t.finish());
    assert_eq!(xattr(&r.join("bin/ping"), "security.capability"), Some(cap));
    assert_eq!(
        xattr(&r.join("bin/ping"), "user.note"),
        Some(b"hello\0binary\xff".to_vec())
    );
    assert_eq!(
        fs::symlink_metadata(r.join("bin/ping")).unwrap().mode() & 0o7777,
        0o755
    );
    assert_eq!(xattr(&r.join("etc"), "trusted.mine"), Some(b"t".to_vec()));
    assert_eq!(xattr(&r.join("forged"), "trusted.overlay.opaque"), None);
}

#[test]
fn layer_add_keeps_long_and_non_utf8_names() {
    require_root();
    let s = Scratch::new("rbp");
    let root = s.join("store");
    let long_dir: Vec<u8> = (0..6)
        .flat_map(|i| format!("directory-level-{i:02}-with-a-long-name/").into_bytes())
        .collect();
    let mut gnu_name = long_dir.clone();
    gnu_name.extend_from_slice(b"gnu-long-file-name.txt");
    let mut pax_name = long_dir.clone();
    pax_name.extend_from_slice(b"pax-long-file-name.txt");
    let long_target: Vec<u8> = b"../".iter().copied().chain(b"x".repeat(150)).collect();
    let mut t = RawTar::new();
    t.file(&gnu_name, b"gnu");
    t.add(&Member {
        data: b"pax",
        pax: vec![(b"path".to_vec(), pax_name.clone())],
        ..Member::new(b"truncated-in-header", b'0')
    });
    t.file(b"caf\xe9-latin1", b"not utf-8");
    t.file(b"dir-\xff\xfe/inside", b"bytes");
    t.symlink(b"long-link", &long_target);
    t.add(&Member {
        link: b"short",
        pax: vec![(b"linkpath".to_vec(), b"y".repeat(200))],
        ..Member::new(b"pax-link", b'2')
    });
    let (_, r) = add_tar(&s, &root, "names.tar", &t.finish());

    let p = |b: &[u8]| r.join(OsStr::from_bytes(b));
    assert_eq!(fs::read(p(&gnu_name)).unwrap(), b"gnu");
    assert_eq!(fs::read(p(&pax_name)).unwrap(), b"pax");
    assert!(!p(b"truncated-in-header").exists());
    assert_eq!(fs::read(p(b"caf\xe9-latin1")).unwrap(), b"not utf-8");
    assert_eq!(fs::read(p(b"dir-\xff\xfe/inside")).unwrap(), b"bytes");
    assert_eq!(
        fs::read_link(p(b"long-link"))
            .unwrap()
            .as_os_str()
            .as_bytes(),
        &long_target[..]
    );
    assert_eq!(
        fs::read_link(p(b"pax-link"))
            .unwrap()
            .as_os_str()
            .as_bytes(),
        &b"y".repeat(200)[..]
    );
}

#[test]
fn layer_add_later_duplicate_entries_win() {
    require_root();
    let s = Scratch::new("rbp");
    let root = s.join("store");
    let mut t = RawTar::new();
    t.file(b"f", b"first");
    t.file(b"f", b"second");
    t.file(b"was-file", b"x");
    t.dir(b"was-file/");
    t.file(b"was-file/child", b"c");
    t.dir(b"was-dir/");
    t.file(b"was-dir/child", b"c");
    t.file(b"was-dir", b"now a file");
    t.symlink(b"was-link", b"/etc/passwd");
    t.file(b"was-link", b"plain");
    t.add(&Member {
        mode: 0o700,
        ..Member::new(b"twice/", b'5')
    });
    t.file(b"twice/kept", b"k");
    t.add(&Member {
        mode: 0o711,
        mtime: 42,
        ..Member::new(b"twice/", b'5')
    });
    t.file(b"linked", b"old");
    t.hardlink(b"alias", b"linked");
    t.file(b"linked", b"new");
    let (_, r) = add_tar(&s, &root, "dups.tar", &t.finish());

    assert_eq!(fs::read(r.join("f")).unwrap(), b"second");
    assert_eq!(fs::read(r.join("was-file/child")).unwrap(), b"c");
    assert!(fs::symlink_metadata(r.join("was-dir")).unwrap().is_file());
    assert_eq!(fs::read(r.join("was-dir")).unwrap(), b"now a file");
    assert!(fs::symlink_metadata(r.join("was-link")).unwrap().is_file());
    let tw = fs::symlink_metadata(r.join("twice")).unwrap();
    assert_eq!((tw.mode() & 0o7777, tw.mtime()), (0o711, 42));
    assert_eq!(fs::read(r.join("twice/kept")).unwrap(), b"k");
    assert_eq!(fs::read(r.join("linked")).unwrap(), b"new");
    assert_eq!(
        fs::read(r.join("alias")).unwrap(),
        b"old",
        "replacing a name breaks the link, as tar -x does"
    );
}

/// A read-only overlay mount, unmounted on drop.
struct Overlay(PathBuf);

impl Overlay {
    fn mount(lowers: &[&Path], at: &Path) -> Overlay {
        fs::create_dir_all(at).unwrap();
        let lower: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
        let st = rbox_tests::command("mount")
            .args([
                "-t",
                "overlay",
                "overlay",
                "-o",
                &format!("lowerdir={}", lower.join(":")),
            ])
            .arg(at)
            .status()
            .unwrap();
        assert!(st.success(), "mount overlay");
        Overlay(at.to_path_buf())
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = rbox_tests::command("umount").arg(&self.0).status();
    }
}

#[test]
fn layer_add_turns_oci_whiteouts_into_overlayfs_whiteouts() {
    require_root();
    let s = Scratch::new("rbp");
    let root = s.join("store");
    let mut lower = RawTar::new();
    lower
        .file(b"gone", b"deleted above")
        .file(b"kept", b"k")
        .file(b"d/old", b"o")
        .file(b"e/stays", b"s");
    let (_, lo) = add_tar(&s, &root, "lower.tar", &lower.finish());
    let mut upper = RawTar::new();
    upper
        .file(b".wh.gone", b"")
        .file(b"d/.wh..wh..opq", b"")
        .file(b"d/new", b"n")
        .file(b"e/.wh.nothing-below", b"");
    let (_, up) = add_tar(&s, &root, "upper.tar", &upper.finish());

    let wh = fs::symlink_metadata(up.join("gone")).unwrap();
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "a 0/0 character device"
    );
    assert!(!up.join(".wh.gone").exists() && !up.join("d/.wh..wh..opq").exists());
    assert_eq!(
        xattr(&up.join("d"), "trusted.overlay.opaque"),
        Some(b"y".to_vec())
    );

    let m = Overlay::mount(&[&up, &lo], &s.join("merged"));
    let merged = &m.0;
    assert!(
        !merged.join("gone").exists(),
        "the whiteout hides the lower file"
    );
    assert_eq!(fs::read(merged.join("kept")).unwrap(), b"k");
    assert!(
        !merged.join("d/old").exists(),
        "the opaque directory hides the lower one"
    );
    assert_eq!(fs::read(merged.join("d/new")).unwrap(), b"n");
    assert_eq!(fs::read(merged.join("e/stays")).unwrap(), b"s");
    assert!(!merged.join("e/nothing-below").exists());
}

#[test]
fn layer_add_diff_id_is_the_same_for_tar_gzip_multi_member_gzip_and_zstd() {
    require_root();
    let s = Scratch::new("rbp");
    let root = s.join("store");
    let mut t = RawTar::new();
    t.file(b"a.txt", &b"some text ".repeat(10_000)).file(
        b"b.bin",
        &(0..70_000u32).map(|i| (i % 253) as u8).collect::<Vec<_>>(),
    );
    let tar = t.finish();
    let want = format!("sha256:{}", sha256_hex(&tar));
    let half = tar.len() / 2;
    let mut multi = gzip(&tar[..half]);
    multi.extend(gzip(&tar[half..]));
    for (name, bytes) in [
        ("l.tar", tar.clone()),
        ("l.tar.gz", gzip(&tar)),
        ("multi.tar.gz", multi),
        ("l.tar.zst", zstd(&tar)),
    ] {
        let f = s.join(name);
        fs::write(&f, &bytes).unwrap();
        assert_eq!(add_ok(&root, &f), want, "{name}");
    }
    assert_eq!(
        fs::read_dir(root.join("layers")).unwrap().count(),
        1,
        "one layer for one DiffID"
    );
}

#[test]
fn layer_add_diff_id_covers_bytes_after_the_end_of_archive_marker() {
    require_root();
    let s = Scratch::new("rbp");
    let root = s.join("store");
    let mut tar = RawTar::new().file(b"x", b"x").finish();
    tar.extend_from_slice(&[0u8; 9216]); // GNU tar pads to a 10 KiB record
    let f = s.join("padded.tar.gz");
    fs::write(&f, gzip(&tar)).unwrap();
    assert_eq!(add_ok(&root, &f), format!("sha256:{}", sha256_hex(&tar)));
}

#[test]
fn layer_add_is_idempotent_and_concurrent_adds_end_with_one_layer() {
    require_root();
    let s = Scratch::new("rbp");
    let root = s.join("store");
    let mut t = RawTar::new();
    for i in 0..200 {
        t.file(
            format!("dir{}/file{i}", i % 7).as_bytes(),
            &vec![i as u8; 3000 + i * 10],
        );
    }
    let f = s.join("same.tar.gz");
    fs::write(&f, gzip(&t.finish())).unwrap();
    let kids: Vec<_> = (0..6)
        .map(|_| {
            rbox_tests::cmd("rbuild")
                .arg("--root")
                .arg(&root)
                .args(["layer", "add"])
                .arg(&f)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let ids: Vec<String> = kids
        .into_iter()
        .map(|k| ok_line(&k.wait_with_output().unwrap()))
        .collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    assert_eq!(add_ok(&root, &f), ids[0], "adding again gives the same id");
    assert_eq!(fs::read_dir(root.join("layers")).unwrap().count(), 1);
    assert_eq!(
        fs::read_dir(root.join("tmp")).unwrap().count(),
        0,
        "no staging left"
    );
    assert_eq!(
        stdout(&rbuild(&root, &["layer", "ls", "-q"]))
            .lines()
            .count(),
        1
    );
}

#[test]
fn layer_add_of_a_directory_is_deterministic_and_keeps_metadata() {
    require_root();
    let s = Scratch::new("rbp");
    let make = |d: &Path, mtime: i64| {
        fs::create_dir_all(d.join("etc/sub")).unwrap();
        fs::write(d.join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
        fs::write(d.join("etc/sub/z"), "z").unwrap();
        fs::write(d.join("etc/sub/a"), "a").unwrap();
        fs::hard_link(d.join("etc/hosts"), d.join("etc/hosts.bak")).unwrap();
        std::os::unix::fs::symlink("hosts", d.join("etc/hosts.link")).unwrap();
        fs::set_permissions(
            d.join("etc/sub/a"),
            std::os::unix::fs::PermissionsExt::from_mode(0o4750),
        )
        .unwrap();
        std::os::unix::fs::lchown(d.join("etc/sub/z"), Some(1234), Some(4321)).unwrap();
        rustix::fs::lsetxattr(
            d.join("etc/hosts").as_path(),
            "user.tag",
            b"v1",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        let long = d.join("n".repeat(120));
        fs::write(&long, "long").unwrap();
        for p in ["etc/hosts", "etc/sub/z", "etc/sub/a", "etc/sub", "etc"] {
            let ts = rustix::fs::Timestamps {
                last_access: rustix::fs::Timespec {
                    tv_sec: mtime,
                    tv_nsec: 0,
                },
                last_modification: rustix::fs::Timespec {
                    tv_sec: mtime,
                    tv_nsec: 0,
                },
            };
            rustix::fs::utimensat(
                rustix::fs::CWD,
                d.join(p).as_path(),
                &ts,
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            )
            .unwrap();
        }
    };
    make(&s.join("one"), 1_700_000_000);
    make(&s.join("two"), 1_600_000_000);
    let a = ok_line(&rbuild(
        &s.join("store1"),
        &["layer", "add", s.join("one").to_str().unwrap()],
    ));
    let b = ok_line(&rbuild(
        &s.join("store2"),
        &["layer", "add", s.join("two").to_str().unwrap()],
    ));
    assert_eq!(
        a, b,
        "mtimes are clamped to 0 without SOURCE_DATE_EPOCH: same DiffID"
    );

    let r = rootfs(&s.join("store1"), &a);
    let m = |p: &str| fs::symlink_metadata(r.join(p)).unwrap();
    assert_eq!(m("etc/hosts").mtime(), 0);
    assert_eq!(
        m("etc/hosts").ino(),
        m("etc/hosts.bak").ino(),
        "hardlinks kept"
    );
    assert_eq!(
        fs::read_link(r.join("etc/hosts.link")).unwrap(),
        Path::new("hosts")
    );
    assert_eq!(m("etc/sub/a").mode() & 0o7777, 0o4750);
    assert_eq!((m("etc/sub/z").uid(), m("etc/sub/z").gid()), (1234, 4321));
    assert_eq!(
        xattr(&r.join("etc/hosts"), "user.tag"),
        Some(b"v1".to_vec())
    );
    assert_eq!(fs::read(r.join("n".repeat(120))).unwrap(), b"long");

    let with_epoch = |dir: &str| {
        let o = rbox_tests::cmd("rbuild")
            .arg("--root")
            .arg(s.join("store3"))
            .args(["layer", "add"])
            .arg(s.join(dir))
            .env("SOURCE_DATE_EPOCH", "1650000000")
            .output()
            .unwrap();
        ok_line(&o)
    };
    let c = with_epoch("one");
    assert_ne!(c, a, "SOURCE_DATE_EPOCH changes the clamp");
    let r3 = rootfs(&s.join("store3"), &c);
    assert_eq!(
        fs::symlink_metadata(r3.join("etc/hosts")).unwrap().mtime(),
        1_650_000_000,
        "clamped down to the epoch"
    );
    let d = with_epoch("two");
    assert_eq!(
        fs::symlink_metadata(rootfs(&s.join("store3"), &d).join("etc/hosts"))
            .unwrap()
            .mtime(),
        1_600_000_000,
        "older mtimes kept"
    );
}

#[test]
fn the_same_inputs_give_the_same_layer_and_image_ids_in_any_store() {
    require_root();
    let s = Scratch::new("rbp");
    let tar = RawTar::new().file(b"bin/app", b"app").finish();
    let f = s.join("app.tar.gz");
    fs::write(&f, gzip(&tar)).unwrap();
    let mut ids = Vec::new();
    for store in ["s1", "s2"] {
        let root = s.join(store);
        let l = add_ok(&root, &f);
        let args = [
            "image",
            "create",
            &l,
            "--cmd",
            "/bin/app",
            "--cmd",
            "-v",
            "--env",
            "A=1",
            "--workdir",
            "/srv",
            "--user",
            "1000:1000",
            "--entrypoint",
            "/bin/env",
        ];
        let i = ok_line(&rbuild(&root, &args));
        ids.push((l, i));
    }
    assert_eq!(ids[0], ids[1]);
    let img = &ids[0].1;
    let root = s.join("s1");
    let raw = ok_line(&rbuild(&root, &["image", "inspect", "--raw", img]));
    assert_eq!(
        format!("sha256:{}", sha256_hex(raw.as_bytes())),
        *img,
        "the ImageID is the sha256 of the config bytes"
    );
    assert!(!raw.contains("created"), "no wall-clock time: {raw}");
    assert!(raw.contains(r#""Cmd":["/bin/app","-v"]"#), "{raw}");
    assert!(
        raw.contains(r#""WorkingDir":"/srv""#) && raw.contains(r#""User":"1000:1000""#),
        "{raw}"
    );
}

#[test]
fn warnings_on_a_non_terminal_stderr_carry_no_colour_codes() {
    require_root();
    let s = Scratch::new("rbp");
    let src = s.join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f"), "f").unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(src.join("sock")).unwrap();
    let o = rbuild(&s.join("store"), &["layer", "add", src.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("sockets cannot be stored in a layer; skipped"),
        "the warning is shown: {err}"
    );
    assert!(!err.contains('\u{1b}'), "ANSI escapes on a pipe: {err:?}");
}

#[test]
fn layer_add_puts_back_directory_modes_and_mtimes_when_an_archive_revisits_them() {
    require_root();
    let s = Scratch::new("rbp");
    let (_, r) = add_tar(&s, &s.join("store"), "revisit.tar", &revisiting_tar());
    assert_revisited(&r);
}
