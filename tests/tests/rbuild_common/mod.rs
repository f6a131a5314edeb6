//! Helpers shared by the rbuild end-to-end tests: a raw tar writer (so tests can build the
//! hostile archives safe builders refuse), store snapshots, and running rbuild on a store.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use rbox_tests::cmd;
use sha2::{Digest, Sha256};

/// One tar member, written byte for byte as given (names are not checked).
pub struct Member<'a> {
    pub name: &'a [u8],
    pub kind: u8,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub data: &'a [u8],
    pub link: &'a [u8],
    pub dev: (u32, u32),
    pub pax: Vec<(Vec<u8>, Vec<u8>)>,
}

impl<'a> Member<'a> {
    pub fn new(name: &'a [u8], kind: u8) -> Member<'a> {
        let mode = match kind {
            b'5' => 0o755,
            b'2' => 0o777,
            _ => 0o644,
        };
        Member {
            name,
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: 1_600_000_000,
            data: b"",
            link: b"",
            dev: (0, 0),
            pax: Vec::new(),
        }
    }
}

/// A tar stream assembled by hand: ustar headers, GNU long names, PAX records.
#[derive(Default)]
pub struct RawTar {
    pub bytes: Vec<u8>,
}

impl RawTar {
    pub fn new() -> RawTar {
        RawTar::default()
    }

    fn header(m: &Member, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::new(m.kind));
        h.set_mode(m.mode);
        h.set_uid(m.uid);
        h.set_gid(m.gid);
        h.set_mtime(m.mtime);
        h.set_size(size);
        let old = h.as_old_mut();
        let n = m.name.len().min(100);
        old.name[..n].copy_from_slice(&m.name[..n]);
        let n = m.link.len().min(100);
        old.linkname[..n].copy_from_slice(&m.link[..n]);
        if m.kind == b'3' || m.kind == b'4' {
            h.set_device_major(m.dev.0).unwrap();
            h.set_device_minor(m.dev.1).unwrap();
        }
        h.set_cksum();
        h
    }

    /// The header of an extension entry (GNU long name/link, PAX records).
    fn ext_header(name: &[u8], kind: u8, size: u64) -> tar::Header {
        Self::header(
            &Member {
                mode: 0o644,
                mtime: 0,
                ..Member::new(name, kind)
            },
            size,
        )
    }

    fn block(&mut self, h: &tar::Header, data: &[u8]) {
        self.bytes.extend_from_slice(h.as_bytes());
        self.bytes.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.bytes.extend(std::iter::repeat_n(0u8, pad));
    }

    pub fn add(&mut self, m: &Member) -> &mut Self {
        if m.name.len() > 100 {
            let mut d = m.name.to_vec();
            d.push(0);
            let h = Self::ext_header(b"././@LongLink", b'L', d.len() as u64);
            self.block(&h, &d);
        }
        if m.link.len() > 100 {
            let mut d = m.link.to_vec();
            d.push(0);
            let h = Self::ext_header(b"././@LongLink", b'K', d.len() as u64);
            self.block(&h, &d);
        }
        if !m.pax.is_empty() {
            let mut body = Vec::new();
            for (k, v) in &m.pax {
                let base = k.len() + v.len() + 3;
                let mut len = base + 1;
                while base + len.to_string().len() != len {
                    len = base + len.to_string().len();
                }
                body.extend_from_slice(format!("{len} ").as_bytes());
                body.extend_from_slice(k);
                body.push(b'=');
                body.extend_from_slice(v);
                body.push(b'\n');
            }
            let h = Self::ext_header(b"PaxHeaders/x", b'x', body.len() as u64);
            self.block(&h, &body);
        }
        let size = if matches!(m.kind, b'0' | b'7') {
            m.data.len() as u64
        } else {
            0
        };
        let h = Self::header(m, size);
        let data = if size > 0 { m.data } else { &[][..] };
        self.block(&h, data);
        self
    }

    pub fn file(&mut self, name: &[u8], data: &[u8]) -> &mut Self {
        self.add(&Member {
            data,
            ..Member::new(name, b'0')
        })
    }

    pub fn dir(&mut self, name: &[u8]) -> &mut Self {
        self.add(&Member::new(name, b'5'))
    }

    pub fn symlink(&mut self, name: &[u8], target: &[u8]) -> &mut Self {
        self.add(&Member {
            link: target,
            ..Member::new(name, b'2')
        })
    }

    pub fn hardlink(&mut self, name: &[u8], target: &[u8]) -> &mut Self {
        self.add(&Member {
            link: target,
            ..Member::new(name, b'1')
        })
    }

    /// The end-of-archive marker (two zero blocks).
    pub fn finish(&mut self) -> Vec<u8> {
        let mut v = self.bytes.clone();
        v.extend_from_slice(&[0u8; 1024]);
        v
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// zstd with frame checksums, as the zstd command line writes by default.
pub fn zstd(data: &[u8]) -> Vec<u8> {
    let mut e = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
    e.include_checksum(true).unwrap();
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs `rbuild --root ROOT ARGS...` with a clean proxy environment.
pub fn rbuild(root: &Path, args: &[&str]) -> Output {
    rbuild_command(root, args).output().expect("run rbuild")
}

/// The command `rbuild` runs, to add environment or spawn it.
pub fn rbuild_command(root: &Path, args: &[&str]) -> std::process::Command {
    let mut c = cmd("rbuild");
    c.arg("--root")
        .arg(root)
        .args(args)
        .env_remove("RBOX_ROOT")
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy");
    c
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_string()
}

/// Asserts success and returns stdout's single line.
pub fn ok_line(o: &Output) -> String {
    assert!(
        o.status.success(),
        "rbuild failed: {:?}\nstderr: {}",
        o.status,
        stderr(o)
    );
    stdout(o)
}

/// `layer add` of a file that must succeed; returns `sha256:<hex>`.
pub fn add_ok(root: &Path, file: &Path) -> String {
    let id = ok_line(&rbuild(root, &["layer", "add", file.to_str().unwrap()]));
    assert!(
        id.starts_with("sha256:") && id.len() == 71,
        "not a DiffID: {id}"
    );
    id
}

/// The extracted rootfs of a layer id (`sha256:<hex>`).
pub fn rootfs(root: &Path, id: &str) -> PathBuf {
    root.join("layers")
        .join(id.trim_start_matches("sha256:"))
        .join("rootfs")
}

/// Asserts a refusal as a user sees it: exit code 1, one stderr line starting with
/// `rbuild: layer add`, mentioning `phrase`, no panic.
pub fn assert_refused(o: &Output, phrase: &str) {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "want exit 1, got {:?}; stderr: {err}",
        o.status
    );
    assert!(
        o.stdout.is_empty(),
        "nothing on stdout when refused: {:?}",
        stdout(o)
    );
    assert_eq!(err.lines().count(), 1, "one line on stderr: {err}");
    assert!(
        err.starts_with("rbuild: layer add "),
        "names the command: {err}"
    );
    assert!(
        err.contains(phrase),
        "stderr should mention {phrase:?}: {err}"
    );
    assert!(!err.to_lowercase().contains("panick"), "{err}");
}

/// Everything under `dir` that a user could notice: names, types, modes, sizes, link counts,
/// owners, mtimes, link targets, contents' digests (what `find -printf` would show).
pub fn snapshot(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn walk(base: &Path, p: &Path, out: &mut Vec<String>) {
    let md = match fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(_) => return,
    };
    let rel = p
        .strip_prefix(base)
        .unwrap()
        .as_os_str()
        .as_bytes()
        .to_vec();
    let rel = String::from_utf8_lossy(&rel).into_owned();
    let mtime = format!("{}.{:09}", md.mtime(), md.mtime_nsec());
    let extra = if md.file_type().is_symlink() {
        fs::read_link(p).unwrap().display().to_string()
    } else if md.is_file() {
        sha256_hex(&fs::read(p).unwrap_or_default())
    } else {
        String::new()
    };
    let size = if md.is_dir() { 0 } else { md.size() };
    out.push(format!(
        "{rel} {:o} {} {} {}:{} {mtime} {extra}",
        md.mode(),
        size,
        md.nlink(),
        md.uid(),
        md.gid()
    ));
    if md.is_dir() {
        let mut names: Vec<_> = fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for n in names {
            walk(base, &n, out);
        }
    }
}

/// `rbuild --root ROOT ARGS...` started through `sh -c 'PRELUDE; exec rbuild ...'`, so a test
/// can set shell limits (`ulimit -n 256`) on the real binary.
pub fn rbuild_sh(root: &Path, prelude: &str, args: &[&str]) -> Output {
    let mut c = rbox_tests::command("sh");
    c.arg("-c")
        .arg(format!("{prelude}; exec \"$0\" \"$@\""))
        .arg(rbox_tests::bin("rbuild"))
        .arg("--root")
        .arg(root);
    c.args(args).env_remove("RBOX_ROOT");
    output_within(c, std::time::Duration::from_secs(300))
}

/// Runs `c` to completion, killing it (and failing the test) if it takes longer than `limit`.
pub fn output_within(mut c: std::process::Command, limit: std::time::Duration) -> Output {
    use std::process::Stdio;
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut v);
        v
    });
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{c:?} did not finish within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

/// Writes a file of apparent size `size` holding `data` at the given offsets, holes elsewhere.
pub fn sparse_file(p: &Path, size: u64, data: &[(u64, &[u8])]) {
    use std::io::{Seek, SeekFrom};
    let mut f = fs::File::create(p).unwrap();
    f.set_len(size).unwrap();
    for (off, bytes) in data {
        f.seek(SeekFrom::Start(*off)).unwrap();
        f.write_all(bytes).unwrap();
    }
}

/// Bytes of disk a file really uses (st_blocks * 512).
pub fn allocated(p: &Path) -> u64 {
    fs::symlink_metadata(p).unwrap().blocks() * 512
}

/// The staging folder of a store is empty (nothing left behind).
pub fn assert_tmp_empty(root: &Path) {
    let tmp: Vec<_> = fs::read_dir(root.join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(tmp.is_empty(), "staging left behind: {tmp:?}");
}

/// An archive that leaves directories and comes back to them, writes through a symlinked
/// parent, goes below a directory its owner cannot search, and names a directory twice: the
/// cases where a directory's mode and mtime must be put back after it was settled.
pub fn revisiting_tar() -> Vec<u8> {
    let d = |name: &'static [u8], mode: u32, mtime: u64| Member {
        mode,
        mtime,
        ..Member::new(name, b'5')
    };
    let mut t = RawTar::new();
    t.add(&d(b"a/", 0o750, 1_000_000_001));
    t.file(b"a/x", b"x");
    t.add(&d(b"b/", 0o700, 1_000_000_002));
    t.file(b"a/y", b"y");
    t.add(&d(b"lib/", 0o755, 1_000_000_003));
    t.symlink(b"lib64", b"lib");
    t.file(b"lib64/z", b"z");
    t.add(&d(b"ro/", 0o555, 1_000_000_004));
    t.file(b"ro/f", b"f");
    t.add(&d(b"nx/", 0o600, 1_000_000_005));
    t.add(&d(b"nx/sub/", 0o755, 1_000_000_006));
    t.file(b"b/later", b"l");
    t.file(b"ro/g", b"g");
    t.file(b"nx/sub/h", b"h");
    t.file(b"nx/sub/new/deeper", b"d");
    t.add(&d(b"a/", 0o711, 1_000_000_007));
    t.finish()
}

/// What extracting [`revisiting_tar`] must give, whatever the order of its members.
pub fn assert_revisited(r: &Path) {
    let m = |p: &str| {
        let md = fs::symlink_metadata(r.join(p)).unwrap();
        (md.mode() & 0o7777, md.mtime())
    };
    assert_eq!(
        m("a"),
        (0o711, 1_000_000_007),
        "a: named again last, the later entry wins"
    );
    assert_eq!(
        m("b"),
        (0o700, 1_000_000_002),
        "b: written to after it was left"
    );
    assert_eq!(
        m("lib"),
        (0o755, 1_000_000_003),
        "lib: written to through lib64"
    );
    assert_eq!(
        m("ro"),
        (0o555, 1_000_000_004),
        "ro: written to again while read-only"
    );
    assert_eq!(
        m("nx"),
        (0o600, 1_000_000_005),
        "nx: written below again while unsearchable"
    );
    assert_eq!(m("nx/sub"), (0o755, 1_000_000_006), "nx/sub");
    assert_eq!(
        m("nx/sub/new").0,
        0o755,
        "a parent made for a member is 0755"
    );
    for (f, want) in [
        ("a/x", "x"),
        ("a/y", "y"),
        ("lib/z", "z"),
        ("ro/g", "g"),
        ("nx/sub/h", "h"),
        ("b/later", "l"),
    ] {
        assert_eq!(fs::read_to_string(r.join(f)).unwrap(), want, "{f}");
    }
}
