//! rbuild layer add refuses hostile input with one clear line and exit 1, and leaves both the
//! store and everything outside it exactly as they were. Each hostile class is its own test,
//! on archives the tests build byte by byte.

mod rbuild_common;

use std::fs;
use std::path::{Path, PathBuf};

use rbox_tests::{require_root, Scratch};
use rbuild_common::*;

/// A store with one layer in it already, a victim folder outside it, and their snapshots.
struct Lab {
    s: Scratch,
    root: PathBuf,
    victim: PathBuf,
    before_store: Vec<String>,
    before_victim: Vec<String>,
}

impl Lab {
    fn new() -> Lab {
        require_root();
        let s = Scratch::new("rbh");
        let root = s.join("store");
        let victim = s.join("victim");
        fs::create_dir_all(victim.join("etc")).unwrap();
        fs::write(victim.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        let seed = s.join("seed.tar");
        fs::write(&seed, RawTar::new().file(b"seed.txt", b"seed").finish()).unwrap();
        add_ok(&root, &seed);
        let before_store = snapshot(&root);
        let before_victim = snapshot(&victim);
        Lab {
            s,
            root,
            victim,
            before_store,
            before_victim,
        }
    }

    fn victim_abs(&self) -> Vec<u8> {
        self.victim.to_str().unwrap().as_bytes().to_vec()
    }

    /// `../` enough times to climb from any staging folder to `/`, then the victim's path.
    fn victim_rel(&self) -> Vec<u8> {
        let mut v = b"../".repeat(40);
        v.extend_from_slice(&self.victim_abs()[1..]);
        v
    }

    fn add_bytes(&self, name: &str, bytes: &[u8], extra: &[&str]) -> std::process::Output {
        let f = self.s.join(name);
        fs::write(&f, bytes).unwrap();
        let mut args = vec!["layer", "add", f.to_str().unwrap()];
        args.extend_from_slice(extra);
        rbuild(&self.root, &args)
    }

    fn assert_untouched(&self) {
        assert_eq!(snapshot(&self.root), self.before_store, "the store changed");
        assert_eq!(
            snapshot(&self.victim),
            self.before_victim,
            "a file outside the store changed"
        );
        let tmp: Vec<_> = fs::read_dir(self.root.join("tmp")).unwrap().collect();
        assert!(tmp.is_empty(), "staging left behind: {tmp:?}");
    }
}

fn path_with(mut a: Vec<u8>, tail: &[u8]) -> Vec<u8> {
    a.extend_from_slice(tail);
    a
}

#[test]
fn layer_add_refuses_dotdot_member() {
    let lab = Lab::new();
    let t = RawTar::new()
        .file(b"ok.txt", b"fine")
        .file(b"../escaped.txt", b"x")
        .finish();
    let o = lab.add_bytes("dotdot.tar", &t, &[]);
    assert_refused(
        &o,
        "member \"../escaped.txt\" escapes the layer root; refused",
    );
    lab.assert_untouched();
    assert!(!lab.s.join("escaped.txt").exists());
}

#[test]
fn layer_add_refuses_dotdot_inside_a_member_path() {
    let lab = Lab::new();
    let t = RawTar::new()
        .dir(b"a/")
        .file(b"a/../../../../x", b"x")
        .finish();
    let o = lab.add_bytes("inner-dotdot.tar.gz", &gzip(&t), &[]);
    assert_refused(&o, "escapes the layer root; refused");
    lab.assert_untouched();
}

#[test]
fn layer_add_refuses_write_through_absolute_symlink() {
    let lab = Lab::new();
    let target = path_with(lab.victim_abs(), b"/etc");
    let t = RawTar::new()
        .symlink(b"evil", &target)
        .file(b"evil/passwd", b"pwned\n")
        .finish();
    let o = lab.add_bytes("abs-symlink.tar", &t, &[]);
    assert_refused(
        &o,
        "member \"evil/passwd\" is written through a symlink that leaves the layer root; refused",
    );
    lab.assert_untouched();
}

#[test]
fn layer_add_refuses_write_through_relative_symlink_escape() {
    let lab = Lab::new();
    let target = path_with(lab.victim_rel(), b"/etc");
    let t = RawTar::new()
        .dir(b"usr/")
        .symlink(b"usr/evil", &target)
        .file(b"usr/evil/passwd", b"pwned\n")
        .finish();
    let o = lab.add_bytes("rel-symlink.tar", &t, &[]);
    assert_refused(
        &o,
        "is written through a symlink that leaves the layer root; refused",
    );
    lab.assert_untouched();
}

#[test]
fn layer_add_refuses_write_through_chained_symlinks() {
    let lab = Lab::new();
    // a -> b (inside), b -> c/.. style climb, c -> the victim: each hop looks harmless alone
    let t = RawTar::new()
        .dir(b"d/")
        .symlink(b"a", b"d/b")
        .symlink(b"d/b", b"../c")
        .symlink(b"c", &lab.victim_rel())
        .file(b"a/etc/passwd", b"pwned\n")
        .finish();
    let o = lab.add_bytes("chain.tar", &t, &[]);
    assert_refused(
        &o,
        "member \"a/etc/passwd\" is written through a symlink that leaves the layer root; refused",
    );
    lab.assert_untouched();
}

#[test]
fn layer_add_refuses_directory_member_through_escaping_symlink() {
    let lab = Lab::new();
    let t = RawTar::new()
        .symlink(b"s", &lab.victim_abs())
        .dir(b"s/newdir/")
        .finish();
    let o = lab.add_bytes("dir-through-symlink.tar", &t, &[]);
    assert_refused(
        &o,
        "is written through a symlink that leaves the layer root; refused",
    );
    lab.assert_untouched();
}

#[test]
fn layer_add_refuses_hardlink_with_dotdot_target() {
    let lab = Lab::new();
    let t = RawTar::new()
        .hardlink(b"h", &path_with(lab.victim_rel(), b"/etc/passwd"))
        .finish();
    let o = lab.add_bytes("hardlink-dotdot.tar", &t, &[]);
    assert_refused(&o, "leaves the layer root; refused");
    lab.assert_untouched();
    let nlink = std::os::unix::fs::MetadataExt::nlink(
        &fs::metadata(lab.victim.join("etc/passwd")).unwrap(),
    );
    assert_eq!(nlink, 1, "the host file gained a link");
}

#[test]
fn layer_add_refuses_hardlink_through_escaping_symlink() {
    let lab = Lab::new();
    let t = RawTar::new()
        .symlink(b"s", &path_with(lab.victim_abs(), b"/etc"))
        .hardlink(b"h", b"s/passwd")
        .file(b"h", b"overwrite through the link\n")
        .finish();
    let o = lab.add_bytes("hardlink-symlink.tar", &t, &[]);
    assert_refused(
        &o,
        "hardlink \"h\" -> \"s/passwd\" leaves the layer root; refused",
    );
    lab.assert_untouched();
}

#[test]
fn layer_add_refuses_hardlink_to_absolute_path_outside_the_layer() {
    let lab = Lab::new();
    // absolute link targets are member names: they resolve inside the layer, where there is none
    let target = path_with(lab.victim_abs(), b"/etc/passwd");
    let t = RawTar::new().hardlink(b"h", &target).finish();
    let o = lab.add_bytes("hardlink-abs.tar", &t, &[]);
    assert_refused(&o, "the target is not in the layer; refused");
    lab.assert_untouched();
}

#[test]
fn layer_add_refuses_truncated_gzip() {
    let lab = Lab::new();
    let t = RawTar::new()
        .file(b"big.bin", &vec![7u8; 300_000])
        .file(b"b", b"b")
        .finish();
    let gz = gzip(&t);
    let o = lab.add_bytes("trunc.tar.gz", &gz[..gz.len() / 2], &[]);
    assert_refused(&o, "gzip");
    assert!(stderr(&o).contains("truncated"), "{}", stderr(&o));
    lab.assert_untouched();
}

#[test]
fn layer_add_refuses_corrupt_gzip() {
    let lab = Lab::new();
    let t = RawTar::new()
        .file(b"a.txt", &b"hello world ".repeat(5000))
        .finish();
    let mut gz = gzip(&t);
    let mid = gz.len() / 2;
    for b in &mut gz[mid..mid + 16] {
        *b ^= 0x5a;
    }
    let o = lab.add_bytes("corrupt.tar.gz", &gz, &[]);
    assert_refused(&o, "corrupt or truncated gzip data");
    lab.assert_untouched();
}

#[test]
fn layer_add_refuses_corrupt_zstd() {
    let lab = Lab::new();
    let t = RawTar::new()
        .file(b"a.txt", &b"zstd data ".repeat(20000))
        .finish();
    let mut z = zstd(&t);
    let mid = z.len() / 2;
    for b in &mut z[mid..mid + 8] {
        *b ^= 0xff;
    }
    let o = lab.add_bytes("corrupt.tar.zst", &z, &[]);
    assert_refused(&o, "corrupt or truncated zstd data");
    lab.assert_untouched();
}

#[test]
fn layer_add_refuses_truncated_zstd() {
    let lab = Lab::new();
    let t = RawTar::new()
        .file(
            b"a.bin",
            &(0..200_000u32)
                .map(|i| (i * 7 % 251) as u8)
                .collect::<Vec<_>>(),
        )
        .finish();
    let z = zstd(&t);
    let o = lab.add_bytes("trunc.tar.zst", &z[..z.len() - 100], &[]);
    assert_refused(&o, "zstd");
    lab.assert_untouched();
}

#[test]
fn layer_add_refuses_non_tar_content() {
    let lab = Lab::new();
    let text = b"this is a plain text file, not a tar archive at all\n".repeat(40);
    let o = lab.add_bytes("notes.tar", &text, &[]);
    assert_refused(&o, "not a valid tar archive");
    lab.assert_untouched();
}

#[test]
fn layer_add_refuses_gzip_of_non_tar_content() {
    let lab = Lab::new();
    let o = lab.add_bytes("notes.tar.gz", &gzip(&b"not a tar\n".repeat(100)), &[]);
    assert_refused(&o, "not a valid tar archive");
    lab.assert_untouched();
}

#[test]
fn layer_add_refuses_random_bytes() {
    let lab = Lab::new();
    let junk: Vec<u8> = (0..3000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let o = lab.add_bytes("junk.tar.gz", &junk, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    lab.assert_untouched();
}

#[test]
fn layer_add_refuses_tar_truncated_inside_a_member() {
    let lab = Lab::new();
    let t = RawTar::new().file(b"a.bin", &[1u8; 5000]).finish();
    let o = lab.add_bytes("cut.tar", &t[..512 + 2048], &[]);
    assert_refused(&o, "truncated");
    lab.assert_untouched();
}

#[test]
fn layer_add_refuses_tar_without_end_of_archive_marker() {
    let lab = Lab::new();
    let mut r = RawTar::new();
    r.file(b"a.txt", b"a").file(b"b.txt", b"b");
    let o = lab.add_bytes("no-eof.tar", &r.bytes, &[]);
    assert_refused(&o, "the tar archive is truncated");
    lab.assert_untouched();
}

#[test]
fn layer_add_refuses_wrong_sha256() {
    let lab = Lab::new();
    let t = gzip(&RawTar::new().file(b"a.txt", b"a").finish());
    let wrong = "0".repeat(64);
    let o = lab.add_bytes("wrong-sum.tar.gz", &t, &["--sha256", &wrong]);
    assert_refused(
        &o,
        &format!(
            "sha256 mismatch: expected {wrong}, the input has {}",
            sha256_hex(&t)
        ),
    );
    lab.assert_untouched();
}

#[test]
fn layer_add_refuses_wrong_sha512() {
    let lab = Lab::new();
    let t = RawTar::new().file(b"a.txt", b"a").finish();
    let wrong = "ab".repeat(64);
    let o = lab.add_bytes("wrong-sum.tar", &t, &["--sha512", &wrong]);
    assert_refused(&o, "sha512 mismatch");
    lab.assert_untouched();
}

#[test]
fn layer_add_refuses_malformed_checksum_argument() {
    let lab = Lab::new();
    let t = RawTar::new().file(b"a.txt", b"a").finish();
    let o = lab.add_bytes("a.tar", &t, &["--sha256", "xyz"]);
    assert_refused(&o, "--sha256 \"xyz\" is not 64 hex digits");
    lab.assert_untouched();
}

#[test]
fn layer_add_refuses_empty_file() {
    let lab = Lab::new();
    let o = lab.add_bytes("empty.tar.gz", b"", &[]);
    assert_refused(&o, "the input is empty");
    lab.assert_untouched();
}

#[test]
fn layer_add_refuses_empty_gzip_stream() {
    let lab = Lab::new();
    let o = lab.add_bytes("empty-inside.tar.gz", &gzip(b""), &[]);
    assert_refused(&o, "the input is empty");
    lab.assert_untouched();
}

#[test]
fn layer_add_refuses_missing_source_file() {
    let lab = Lab::new();
    let missing = lab.s.join("nope.tar.gz");
    let o = rbuild(&lab.root, &["layer", "add", missing.to_str().unwrap()]);
    assert_refused(&o, "cannot open");
    lab.assert_untouched();
}

#[test]
fn layer_add_replaces_a_symlink_instead_of_writing_through_it() {
    // contained, not refused: a later member of the same name replaces the symlink itself
    let lab = Lab::new();
    let target = path_with(lab.victim_abs(), b"/etc/passwd");
    let t = RawTar::new()
        .symlink(b"passwd", &target)
        .file(b"passwd", b"inside\n")
        .finish();
    let f = lab.s.join("replace.tar");
    fs::write(&f, t).unwrap();
    let id = add_ok(&lab.root, &f);
    assert_eq!(
        snapshot(&lab.victim),
        lab.before_victim,
        "a file outside the store changed"
    );
    let p = rootfs(&lab.root, &id).join("passwd");
    assert!(fs::symlink_metadata(&p).unwrap().is_file());
    assert_eq!(fs::read(&p).unwrap(), b"inside\n");
}

#[test]
fn layer_add_keeps_absolute_member_paths_inside_the_layer() {
    let lab = Lab::new();
    let abs = path_with(lab.victim_abs(), b"/etc/passwd");
    let t = RawTar::new()
        .file(&abs, b"inside the layer\n")
        .file(b"/etc/motd", b"hi\n")
        .finish();
    let f = lab.s.join("absolute.tar");
    fs::write(&f, t).unwrap();
    let id = add_ok(&lab.root, &f);
    assert_eq!(
        snapshot(&lab.victim),
        lab.before_victim,
        "a file outside the store changed"
    );
    let r = rootfs(&lab.root, &id);
    let inside = r.join(Path::new(std::str::from_utf8(&abs[1..]).unwrap()));
    assert_eq!(fs::read(inside).unwrap(), b"inside the layer\n");
    assert_eq!(fs::read(r.join("etc/motd")).unwrap(), b"hi\n");
}

#[test]
fn layer_add_refuses_an_oversized_long_name_memory_bomb() {
    let lab = Lab::new();
    // a GNU long-name member claiming 1 GiB: buffering it whole is what the attacker wants
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::new(b'L'));
    h.set_size(1 << 30);
    h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
    h.set_cksum();
    let mut t = h.as_bytes().to_vec();
    t.extend(vec![b'a'; 2 << 20]);
    let o = lab.add_bytes("bomb.tar.gz", &gzip(&t), &[]);
    assert_refused(&o, "an extension header claims 1073741824 bytes");
    lab.assert_untouched();
}

#[test]
fn layer_add_never_panics_on_mutated_archives() {
    let lab = Lab::new();
    let mut base = RawTar::new();
    base.dir(b"d/")
        .file(b"d/f", &[5u8; 700])
        .symlink(b"l", b"d/f")
        .hardlink(b"h", b"d/f");
    base.add(&Member {
        pax: vec![(b"SCHILY.xattr.user.a".to_vec(), b"1".to_vec())],
        data: b"x",
        ..Member::new(b"x", b'0')
    });
    base.add(&Member {
        mode: 0o600,
        ..Member::new(b"p", b'6')
    });
    let base = base.finish();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let f = lab.s.join("mutant.tar");
    for round in 0..150 {
        let mut t = base.clone();
        for _ in 0..(1 + next() % 4) {
            let i = (next() as usize) % t.len();
            t[i] = next() as u8;
        }
        if round % 10 == 0 {
            t.truncate((next() as usize) % t.len());
        }
        fs::write(&f, &t).unwrap();
        let o = rbuild(&lab.root, &["layer", "add", f.to_str().unwrap()]);
        let err = stderr(&o);
        assert!(
            matches!(o.status.code(), Some(0) | Some(1)),
            "round {round}: exit {:?}: {err}",
            o.status
        );
        assert!(!err.contains("panicked"), "round {round}: {err}");
        assert!(err.lines().count() <= 2, "round {round}: {err}");
    }
    assert_eq!(snapshot(&lab.victim), lab.before_victim);
    assert_eq!(
        fs::read_dir(lab.root.join("tmp")).unwrap().count(),
        0,
        "no staging left"
    );
}

/// `tool -c` of `data`, as the command line writes it (xz-utils and bzip2 are installed by .ci/deps.sh).
fn compress_with(tool: &str, data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut c = rbox_tests::command(tool)
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    let mut stdin = c.stdin.take().unwrap();
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let o = c.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(o.status.success(), "{tool} failed");
    o.stdout
}

#[test]
fn layer_add_refuses_xz_bzip2_lz4_and_lzip_naming_the_format() {
    let lab = Lab::new();
    let tar = RawTar::new().file(b"etc/os-release", b"x\n").finish();
    let mut lz4 = vec![0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7];
    lz4.extend_from_slice(&[0u8; 64]);
    let mut lzip = b"LZIP\x01\x0c".to_vec();
    lzip.extend_from_slice(&[0x55u8; 64]);
    let cases = [
        ("xz", "layer.tar.xz", compress_with("xz", &tar)),
        ("bzip2", "layer.tar.bz2", compress_with("bzip2", &tar)),
        ("lz4", "layer.tar.lz4", lz4),
        ("lzip", "layer.tar.lz", lzip),
    ];
    for (name, file, bytes) in &cases {
        let o = lab.add_bytes(file, bytes, &[]);
        assert_refused(
            &o,
            &format!(
                "{file}: {name}-compressed input is not supported: use .tar, .tar.gz/.tgz or .tar.zst"
            ),
        );
        lab.assert_untouched();
    }
    // with a checksum of the bytes as received the refusal is the same
    let (_, file, bytes) = &cases[0];
    let o = lab.add_bytes(file, bytes, &["--sha256", &sha256_hex(bytes)]);
    assert_refused(&o, "xz-compressed input is not supported");
    lab.assert_untouched();
}

#[test]
fn layer_add_keeps_a_tar_whose_first_member_is_named_like_a_compression_magic() {
    let lab = Lab::new();
    for name in [&b"BZh91AY&SY"[..], b"LZIP-notes"] {
        let f = lab.s.join("magic-name.tar");
        fs::write(&f, RawTar::new().file(name, b"data").finish()).unwrap();
        let id = add_ok(&lab.root, &f);
        let p = rootfs(&lab.root, &id).join(std::str::from_utf8(name).unwrap());
        assert_eq!(fs::read(p).unwrap(), b"data");
    }
}
