//! `rbuild layer add DIR`: a directory source is read without ever following a symlink below
//! the SOURCE the user named (a user who can write the directory cannot make root's rbuild
//! read a root-only file into a layer), every header matches the bytes that follow it, and
//! SOURCE itself may be a symlink to a directory.

mod rbuild_common;

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rbox_tests::{require_root, Scratch};
use rbuild_common::*;

const NOBODY: u32 = 65534;

/// `./` components in front of the directory source's entries (see the race test).
const DOTS: usize = 50;

/// The end of a message whose middle is a long path.
fn tail(s: &str) -> String {
    let c: Vec<char> = s.chars().collect();
    c[c.len().saturating_sub(120)..].iter().collect()
}

/// A process running as uid/gid 65534 that swaps each pair of names with
/// renameat2(RENAME_EXCHANGE) in a tight loop until dropped (SIGKILL).
struct Swapper {
    pid: libc::pid_t,
}

impl Swapper {
    fn start(pairs: &[(PathBuf, PathBuf)]) -> Swapper {
        let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).unwrap();
        let pairs: Vec<(CString, CString)> = pairs.iter().map(|(a, b)| (c(a), c(b))).collect();
        // SAFETY: the child only makes raw system calls (setgroups, setresgid, setresuid,
        // renameat2, exit_group) on memory allocated before the fork; it allocates nothing,
        // takes no lock and never returns into the test harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            unsafe {
                let none: [libc::gid_t; 0] = [];
                let ok = libc::syscall(libc::SYS_setgroups, 0, none.as_ptr()) == 0
                    && libc::syscall(libc::SYS_setresgid, NOBODY, NOBODY, NOBODY) == 0
                    && libc::syscall(libc::SYS_setresuid, NOBODY, NOBODY, NOBODY) == 0;
                if !ok {
                    libc::syscall(libc::SYS_exit_group, 3);
                }
                loop {
                    for (a, b) in &pairs {
                        libc::syscall(
                            libc::SYS_renameat2,
                            libc::AT_FDCWD,
                            a.as_ptr(),
                            libc::AT_FDCWD,
                            b.as_ptr(),
                            libc::RENAME_EXCHANGE,
                        );
                    }
                }
            }
        }
        Swapper { pid }
    }

    fn still_running(&self) -> bool {
        let mut st = 0;
        // SAFETY: waitpid on our own child with WNOHANG only reads its status.
        unsafe { libc::waitpid(self.pid, &mut st, libc::WNOHANG) == 0 }
    }
}

impl Drop for Swapper {
    fn drop(&mut self) {
        // SAFETY: signals and reaps our own child.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

/// Every regular file below `dir` whose content holds `needle`.
fn files_holding(dir: &Path, needle: &[u8], out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let md = fs::symlink_metadata(&p).unwrap();
        if md.is_dir() {
            files_holding(&p, needle, out);
        } else if md.is_file() {
            let data = fs::read(&p).unwrap();
            if data.windows(needle.len()).any(|w| w == needle) {
                out.push(p);
            }
        }
    }
}

/// The review's repro, made dense: a directory owned by nobody holds 300 pairs of a harmless
/// file and a symlink to a root-only secret, and nobody exchanges every pair in a tight loop
/// while root imports the directory again and again. Reading an entry by name twice (lstat,
/// then open following symlinks) gives the secret's bytes under the harmless file's header.
/// SOURCE is named through [`DOTS`] `./` components: every lookup by name walks them, which
/// widens the window between two lookups of one name, so code that looks a name up twice
/// (the old lstat-then-open) leaks in every run here (37 to 388 leaked files over 20 imports,
/// in 5 runs of 0 to 50 components). Every import must succeed (each entry is opened once, so
/// nothing is ever seen half swapped) and no layer may hold the secret.
#[test]
fn a_directory_source_never_leaks_a_root_only_file_through_a_swapped_symlink() {
    require_root();
    let s = Scratch::new("rbd");
    let vault = s.join("vault");
    fs::create_dir(&vault).unwrap();
    fs::set_permissions(&vault, fs::Permissions::from_mode(0o700)).unwrap();
    let secret = vault.join("shadow");
    fs::write(&secret, "TOPSECRET-".repeat(20)).unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();

    let src = s.join("src");
    fs::create_dir(&src).unwrap();
    let mut pairs = Vec::new();
    for i in 0..300 {
        let (f, l) = (src.join(format!("f{i:03}")), src.join(format!("l{i:03}")));
        fs::write(&f, "harmless").unwrap();
        std::os::unix::fs::lchown(&f, Some(NOBODY), Some(NOBODY)).unwrap();
        std::os::unix::fs::symlink(&secret, &l).unwrap();
        std::os::unix::fs::lchown(&l, Some(NOBODY), Some(NOBODY)).unwrap();
        pairs.push((f, l));
    }
    std::os::unix::fs::chown(&src, Some(NOBODY), Some(NOBODY)).unwrap();
    let slow_src = format!("{}{}", src.display(), "/.".repeat(DOTS));
    assert!(Path::new(&slow_src).is_dir());
    let root = s.join("store");
    let swapper = Swapper::start(&pairs);

    let (mut failures, mut leaks, mut wrong) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..20 {
        let o = rbuild(&root, &["layer", "add", &slow_src]);
        assert!(
            swapper.still_running(),
            "the swapping process died (round {round})"
        );
        if !o.status.success() {
            failures.push(stderr(&o));
            continue;
        }
        let id = stdout(&o);
        let r = rootfs(&root, &id);
        files_holding(&r, b"TOPSECRE", &mut leaks);
        for (a, b) in &pairs {
            for name in [a.file_name().unwrap(), b.file_name().unwrap()] {
                let p = r.join(name);
                let md = fs::symlink_metadata(&p).unwrap();
                let fine = if md.file_type().is_symlink() {
                    fs::read_link(&p).unwrap() == secret
                } else {
                    fs::read(&p).unwrap() == b"harmless"
                };
                if !fine {
                    wrong.push(p);
                }
            }
        }
        if leaks.is_empty() && wrong.is_empty() {
            ok_line(&rbuild(&root, &["layer", "rm", &id]));
        }
    }
    drop(swapper);
    assert!(
        leaks.is_empty(),
        "the root-only file's content reached {} layer file(s), e.g. {:?}",
        leaks.len(),
        leaks.first()
    );
    assert!(
        wrong.is_empty(),
        "every entry is the harmless file or the symlink: {} are not, e.g. {:?}",
        wrong.len(),
        wrong.first()
    );
    assert!(
        failures.is_empty(),
        "every import of a directory changing under it succeeds: {} failed, e.g. {:?}",
        failures.len(),
        failures.first().map(|f| tail(f))
    );
    assert_tmp_empty(&root);
}

/// A sysfs attribute claims 4096 bytes and reads as a few: the header cannot promise bytes the
/// file does not give, so the import is refused in one line naming the file, and nothing is
/// stored.
#[test]
fn a_directory_source_file_that_shrinks_while_read_is_refused_in_one_line() {
    require_root();
    let s = Scratch::new("rbd");
    let src = s.join("src");
    fs::create_dir(&src).unwrap();
    let attr = Path::new("/sys/kernel/mm/transparent_hugepage/enabled");
    assert_eq!(fs::metadata(attr).unwrap().size(), 4096, "sysfs sizes");
    fs::write(src.join("attr"), "").unwrap();
    let st = rbox_tests::command("mount")
        .args(["--bind"])
        .arg(attr)
        .arg(src.join("attr"))
        .status()
        .unwrap();
    assert!(st.success());
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = rbox_tests::command("umount").arg(&self.0).status();
        }
    }
    let _m = Unmount(src.join("attr"));
    let root = s.join("store");
    let o = rbuild(&root, &["layer", "add", src.to_str().unwrap()]);
    assert_refused(&o, "attr");
    assert!(
        stderr(&o).contains("changed size while being read"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&rbuild(&root, &["layer", "ls", "-q"])).is_empty());
    assert_tmp_empty(&root);
}

/// `layer add /path/symlink-to-dir`: the SOURCE the user names is resolved once; the layer is
/// the directory's, and symlinks below it stay symlinks.
#[test]
fn layer_add_of_a_symlink_to_a_directory_imports_the_directory() {
    require_root();
    let s = Scratch::new("rbd");
    let dir = s.join("real");
    fs::create_dir_all(dir.join("etc")).unwrap();
    fs::write(dir.join("etc/hostname"), "box\n").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.join("etc/passwd")).unwrap();
    std::os::unix::fs::symlink(&dir, s.join("link")).unwrap();
    let root = s.join("store");
    let via_link = ok_line(&rbuild(
        &root,
        &["layer", "add", s.join("link").to_str().unwrap()],
    ));
    let direct = ok_line(&rbuild(&root, &["layer", "add", dir.to_str().unwrap()]));
    assert_eq!(via_link, direct, "the same layer through the symlink");
    let r = rootfs(&root, &via_link);
    assert_eq!(fs::read_to_string(r.join("etc/hostname")).unwrap(), "box\n");
    assert_eq!(
        fs::read_link(r.join("etc/passwd")).unwrap(),
        Path::new("/etc/passwd"),
        "a symlink below SOURCE is kept as a symlink"
    );
    assert!(fs::symlink_metadata(r.join("etc/passwd"))
        .unwrap()
        .file_type()
        .is_symlink());
}
