//! rbuild layer add within bounds: GNU sparse members (holes kept as holes, a sparse last member
//! accepted, a tiny archive claiming a huge file refused), trees deeper than the open-file
//! limit (added, removed, gc'd and refused late under `ulimit -n 256`), and peak memory on a
//! layer of 400k directories.

mod rbuild_common;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use rbox_tests::{require_root, Scratch};
use rbuild_common::*;

/// `tar --sparse` (GNU format, the default) of `members` of `dir`, in that order.
fn gnu_sparse_tar(dir: &Path, out: &Path, members: &[&str]) {
    let st = rbox_tests::command("tar")
        .args(["--sparse", "--numeric-owner", "--format=gnu", "-C"])
        .arg(dir)
        .arg("-cf")
        .arg(out)
        .args(members)
        .status()
        .unwrap();
    assert!(st.success(), "tar --sparse failed");
}

fn file_sha256(p: &Path) -> String {
    use sha2::Digest;
    use std::io::Read;
    let mut f = fs::File::open(p).unwrap();
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match f.read(&mut buf).unwrap() {
            0 => break,
            n => h.update(&buf[..n]),
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn layer_add_keeps_gnu_sparse_members_as_holes_including_a_sparse_last_member() {
    require_root();
    let s = Scratch::new("rbl");
    let src = s.join("src");
    fs::create_dir(&src).unwrap();
    // six data regions: more than the four a GNU header holds, so extension headers follow
    let regions: Vec<(u64, Vec<u8>)> = (0..6u64)
        .map(|i| (i * (10 << 20) + 4096, vec![b'a' + i as u8; 5000]))
        .collect();
    let refs: Vec<(u64, &[u8])> = regions.iter().map(|(o, d)| (*o, d.as_slice())).collect();
    sparse_file(&src.join("mid.img"), 64 << 20, &refs);
    fs::write(src.join("plain.txt"), "plain\n").unwrap();
    // the last member ends in a hole: its real size is far beyond its data on the archive
    sparse_file(
        &src.join("last.img"),
        256 << 20,
        &[(0, b"head"), (100 << 20, b"middle")],
    );
    let t = s.join("sparse.tar");
    gnu_sparse_tar(&src, &t, &["mid.img", "plain.txt", "last.img"]);
    assert!(
        fs::metadata(&t).unwrap().len() < 1 << 20,
        "tar stored the holes: not a sparse archive"
    );

    let root = s.join("store");
    let id = add_ok(&root, &t);
    let r = rootfs(&root, &id);
    for name in ["mid.img", "plain.txt", "last.img"] {
        let (a, b) = (src.join(name), r.join(name));
        assert_eq!(
            fs::metadata(&b).unwrap().len(),
            fs::metadata(&a).unwrap().len(),
            "{name}: size"
        );
        assert_eq!(file_sha256(&b), file_sha256(&a), "{name}: contents");
    }
    for name in ["mid.img", "last.img"] {
        let used = allocated(&r.join(name));
        assert!(
            used < 1 << 20,
            "{name}: holes were written as zeros ({used} bytes allocated)"
        );
    }
    // the same archive compressed: same layer, still accepted
    let gz = s.join("sparse.tar.gz");
    fs::write(&gz, gzip(&fs::read(&t).unwrap())).unwrap();
    assert_eq!(add_ok(&root, &gz), id);
    assert_tmp_empty(&root);
}

#[test]
fn layer_add_refuses_a_tiny_sparse_archive_claiming_a_huge_file() {
    require_root();
    let s = Scratch::new("rbl");
    let src = s.join("src");
    fs::create_dir(&src).unwrap();
    // 1 TiB apparent, 4 bytes of data at its end: GNU tar stores it in a few KiB
    let tib = 1u64 << 40;
    sparse_file(&src.join("huge.img"), tib, &[(tib - 4, b"tail")]);
    let t = s.join("huge.tar");
    gnu_sparse_tar(&src, &t, &["huge.img"]);
    fs::remove_file(src.join("huge.img")).unwrap();
    assert!(
        fs::metadata(&t).unwrap().len() < 64 << 10,
        "not a tiny archive"
    );

    let root = s.join("store");
    let seed = s.join("seed.tar");
    fs::write(&seed, RawTar::new().file(b"seed", b"seed").finish()).unwrap();
    add_ok(&root, &seed);
    let before = snapshot(&root);
    let started = Instant::now();
    let mut c = rbox_tests::cmd("rbuild");
    c.arg("--root").arg(&root).args(["layer", "add"]).arg(&t);
    let o = output_within(c, Duration::from_secs(120));
    assert_refused(&o, "member \"huge.img\"");
    let err = stderr(&o);
    assert!(
        err.contains("sparse") && err.contains("limit"),
        "names the limit: {err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "refused before expanding: {:?}",
        started.elapsed()
    );
    assert_eq!(snapshot(&root), before, "the store changed");
    assert_tmp_empty(&root);
}

/// A member path `depth` directories deep.
fn deep_name(depth: usize, leaf: &str) -> Vec<u8> {
    let mut v = b"d/".repeat(depth);
    v.extend_from_slice(leaf.as_bytes());
    v
}

const LOW_FDS: &str = "ulimit -n 256";

#[test]
fn a_1500_deep_layer_is_added_removed_and_gcd_under_ulimit_n_256() {
    require_root();
    let s = Scratch::new("rbl");
    let root = s.join("store");
    let t = s.join("deep.tar");
    fs::write(
        &t,
        RawTar::new()
            .file(&deep_name(1500, "f"), b"deep")
            .file(b"top", b"top")
            .finish(),
    )
    .unwrap();
    let tp = t.to_str().unwrap();

    let id = ok_line(&rbuild_sh(&root, LOW_FDS, &["layer", "add", tp]));
    let leaf = rootfs(&root, &id).join(String::from_utf8(deep_name(1500, "f")).unwrap());
    assert_eq!(fs::read(&leaf).unwrap(), b"deep");
    assert_eq!(
        ok_line(&rbuild_sh(&root, LOW_FDS, &["layer", "rm", &id])),
        id
    );
    assert!(
        !root
            .join("layers")
            .join(id.trim_start_matches("sha256:"))
            .exists(),
        "layer still there"
    );
    assert_tmp_empty(&root);

    assert_eq!(
        ok_line(&rbuild_sh(&root, LOW_FDS, &["layer", "add", tp])),
        id
    );
    assert_eq!(
        ok_line(&rbuild_sh(&root, LOW_FDS, &["gc"])),
        id,
        "gc removes the unreferenced deep layer"
    );
    assert_eq!(fs::read_dir(root.join("layers")).unwrap().count(), 0);
    assert_tmp_empty(&root);
}

#[test]
fn a_1500_deep_archive_refused_late_leaves_the_store_unchanged_under_ulimit_n_256() {
    require_root();
    let s = Scratch::new("rbl");
    let root = s.join("store");
    let seed = s.join("seed.tar");
    fs::write(&seed, RawTar::new().file(b"seed", b"seed").finish()).unwrap();
    add_ok(&root, &seed);
    let before = snapshot(&root);
    let t = s.join("deep-bad.tar");
    fs::write(
        &t,
        RawTar::new()
            .file(&deep_name(1500, "f"), b"deep")
            .file(b"../escape", b"x")
            .finish(),
    )
    .unwrap();
    let o = rbuild_sh(&root, LOW_FDS, &["layer", "add", t.to_str().unwrap()]);
    assert_refused(&o, "member \"../escape\" escapes the layer root; refused");
    assert_eq!(snapshot(&root), before, "the store changed");
    assert_tmp_empty(&root);
}

/// Streams a gzip'd tar of 400 x 1000 directories with long names to `out` (about 6 MB).
fn many_dirs_tgz(out: &Path) {
    let f = fs::File::create(out).unwrap();
    let mut gz =
        flate2::write::GzEncoder::new(std::io::BufWriter::new(f), flate2::Compression::fast());
    let mut dir = |name: &str| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(0);
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        gz.write_all(h.as_bytes()).unwrap();
    };
    for i in 0..400 {
        let top = format!("usr/share/a-rather-long-directory-name-{i:04}/");
        dir(&top);
        for j in 0..1000 {
            dir(&format!("{top}another-long-subdirectory-{j:04}/"));
        }
    }
    gz.write_all(&[0u8; 1024]).unwrap();
    gz.finish().unwrap().flush().unwrap();
}

/// A tmpfs mounted for the test's store, unmounted on drop: 400k directories are written and
/// removed in seconds there instead of minutes of ext4 journal on a small VM. It changes
/// nothing in what is measured (rbuild's own peak RSS; tmpfs pages are not in it).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &Path) -> Tmpfs {
        fs::create_dir_all(at).unwrap();
        let st = rbox_tests::command("mount")
            .args(["-t", "tmpfs", "-o", "size=1g,mode=0700", "tmpfs"])
            .arg(at)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs on {}", at.display());
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = rbox_tests::command("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn layer_add_of_400k_directories_peaks_below_64_mib() {
    require_root();
    let s = Scratch::new("rbl");
    let tgz = s.join("dirs.tar.gz");
    many_dirs_tgz(&tgz);
    let mnt = Tmpfs::mount(&s.join("mnt"));
    let root = mnt.0.join("store");
    let rss = s.join("rss");
    let mut c = rbox_tests::command("/usr/bin/time");
    c.arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss)
        .arg(rbox_tests::bin("rbuild"));
    c.arg("--root")
        .arg(&root)
        .args(["layer", "add"])
        .arg(&tgz)
        .env_remove("RBOX_ROOT");
    let o = output_within(c, Duration::from_secs(600));
    let id = ok_line(&o);
    let kib: u64 = fs::read_to_string(&rss)
        .unwrap()
        .trim()
        .lines()
        .last()
        .unwrap()
        .parse()
        .unwrap();
    assert!(kib < 64 << 10, "peak RSS {} MiB (goal < 64 MiB)", kib >> 10);
    let r = rootfs(&root, &id);
    assert!(r
        .join("usr/share/a-rather-long-directory-name-0399/another-long-subdirectory-0999")
        .is_dir());
    assert_eq!(fs::read_dir(r.join("usr/share")).unwrap().count(), 400);
}

#[test]
fn layer_add_refuses_pax_format_sparse_members_instead_of_storing_their_map() {
    require_root();
    let s = Scratch::new("rbl");
    let src = s.join("src");
    fs::create_dir(&src).unwrap();
    sparse_file(&src.join("s.img"), 64 << 20, &[(1 << 20, b"data")]);
    let t = s.join("posix.tar");
    let st = rbox_tests::command("tar")
        .args(["--sparse", "--format=posix", "-C"])
        .arg(&src)
        .arg("-cf")
        .arg(&t)
        .arg("s.img")
        .status()
        .unwrap();
    assert!(st.success());
    let root = s.join("store");
    let o = rbuild(&root, &["layer", "add", t.to_str().unwrap()]);
    assert_refused(&o, "a PAX-format sparse member (GNU.sparse.*) is not supported: re-create the archive with tar --format=gnu");
    assert_eq!(fs::read_dir(root.join("layers")).unwrap().count(), 0);
    assert_tmp_empty(&root);
}
