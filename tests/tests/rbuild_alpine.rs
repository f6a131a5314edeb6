//! Both Alpine minirootfs fixtures imported with `rbuild layer add` are the same, file by file,
//! as GNU `tar -x` of the same tarball (names, types, modes, owners, mtimes, link targets,
//! device numbers, xattrs, hardlink structure, contents); their DiffIDs are sha256 of
//! `gzip -dc`, and the published SHA256SUMS are accepted as --sha256.

mod rbuild_common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rbox_tests::{alpine_fixture, require_root, Scratch};
use rbuild_common::*;

/// name -> everything tar -x is expected to reproduce
fn describe(root: &Path) -> BTreeMap<Vec<u8>, String> {
    let mut out = BTreeMap::new();
    let mut inode_names: BTreeMap<(u64, u64), Vec<u8>> = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let md = fs::symlink_metadata(&p).unwrap();
        let rel = p
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        let ft = md.file_type();
        let what = if ft.is_symlink() {
            format!("link->{}", fs::read_link(&p).unwrap().display())
        } else if ft.is_file() {
            // hardlinked files: name the first path of the inode, so link structure is compared
            let first = inode_names
                .entry((md.dev(), md.ino()))
                .or_insert_with(|| rel.clone())
                .clone();
            format!(
                "file {} nlink {} sha256 {}",
                md.size(),
                md.nlink(),
                sha256_hex(&fs::read(&p).unwrap())
            ) + if md.nlink() > 1 {
                format!(" inode-of {}", String::from_utf8_lossy(&first))
            } else {
                String::new()
            }
            .as_str()
        } else if ft.is_dir() {
            let mut kids: Vec<_> = fs::read_dir(&p)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            kids.sort();
            stack.extend(kids.into_iter().rev());
            "dir".to_string()
        } else {
            format!("special rdev {}", md.rdev())
        };
        let mut xattrs = Vec::new();
        let mut names = vec![0u8; 65536];
        if let Ok(n) = rustix::fs::llistxattr(&p, &mut names[..]) {
            for name in names[..n].split(|b| *b == 0).filter(|s| !s.is_empty()) {
                let mut v = vec![0u8; 65536];
                let k = rustix::fs::lgetxattr(&p, name, &mut v[..]).unwrap();
                xattrs.push(format!("{}={:?}", String::from_utf8_lossy(name), &v[..k]));
            }
        }
        xattrs.sort();
        out.insert(
            rel,
            format!(
                "{what} mode {:o} owner {}:{} mtime {} xattrs {:?}",
                md.mode(),
                md.uid(),
                md.gid(),
                md.mtime(),
                xattrs
            ),
        );
    }
    out
}

fn compare_with_tar_x(version: &str) {
    require_root();
    let s = Scratch::new("rba");
    let tgz = alpine_fixture(version);
    let sums = fs::read_to_string(tgz.parent().unwrap().join("SHA256SUMS")).unwrap();
    let name = tgz.file_name().unwrap().to_str().unwrap();
    let sum = sums
        .lines()
        .find(|l| l.contains(name))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    let root = s.join("store");
    let id = ok_line(&rbuild(
        &root,
        &["layer", "add", tgz.to_str().unwrap(), "--sha256", &sum],
    ));

    let gz = rbox_tests::command("sh")
        .arg("-c")
        .arg(format!("gzip -dc '{}' | sha256sum", tgz.display()))
        .output()
        .unwrap();
    let want = String::from_utf8_lossy(&gz.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        id,
        format!("sha256:{want}"),
        "the DiffID is sha256 of gzip -dc"
    );

    let x = s.join("tar-x");
    fs::create_dir_all(&x).unwrap();
    let st = rbox_tests::command("tar")
        .args(["-xpf"])
        .arg(&tgz)
        .arg("-C")
        .arg(&x)
        .args(["--numeric-owner", "--xattrs", "--xattrs-include=*"])
        .status()
        .unwrap();
    assert!(st.success(), "tar -x");

    let a = describe(&x);
    let b = describe(&rootfs(&root, &id));
    assert!(a.len() > 400, "the fixture has many entries ({})", a.len());
    let only_tar: Vec<_> = a
        .keys()
        .filter(|k| !b.contains_key(*k))
        .map(|k| String::from_utf8_lossy(k))
        .collect();
    let only_rbuild: Vec<_> = b
        .keys()
        .filter(|k| !a.contains_key(*k))
        .map(|k| String::from_utf8_lossy(k))
        .collect();
    assert!(
        only_tar.is_empty() && only_rbuild.is_empty(),
        "names differ: tar only {only_tar:?}, rbuild only {only_rbuild:?}"
    );
    for (k, v) in &a {
        assert_eq!(&b[k], v, "{} differs", String::from_utf8_lossy(k));
    }
}

#[test]
fn alpine_3_15_imports_exactly_like_tar_x() {
    compare_with_tar_x("3.15.11");
}

#[test]
fn alpine_3_20_imports_exactly_like_tar_x() {
    compare_with_tar_x("3.20.3");
}
