//! rbuild's command line as a script sees it: stdout whose reader went away or whose disk is
//! full, stderr whose reader went away, usage errors, and an image config changed behind the
//! store's back. Real binary, real store, as root.

mod rbuild_common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use rbox_tests::{require_root, Scratch};
use rbuild_common::*;

/// A store with one layer and one image tagged `demo:1`.
struct Lab {
    s: Scratch,
    root: PathBuf,
    layer: String,
    img: String,
}

impl Lab {
    fn new() -> Lab {
        require_root();
        let s = Scratch::new("rbc");
        let root = s.join("store");
        let f = s.join("base.tar");
        fs::write(
            &f,
            RawTar::new()
                .file(b"etc/hostname", b"base\n")
                .file(b"srv/app", b"app")
                .finish(),
        )
        .unwrap();
        let layer = add_ok(&root, &f);
        let img = ok_line(&rbuild(
            &root,
            &[
                "image", "create", &layer, "--tag", "demo:1", "--cmd", "/srv/app",
            ],
        ));
        Lab {
            s,
            root,
            layer,
            img,
        }
    }

    fn rb(&self, args: &[&str]) -> Output {
        rbuild(&self.root, args)
    }

    /// rbuild with its stdout (or stderr) on the write end of a pipe whose reader is gone.
    fn rb_reader_gone(&self, args: &[&str], on_stderr: bool) -> Output {
        let w = pipe_without_reader();
        let mut c = rbuild_command(&self.root, args);
        if on_stderr {
            c.stderr(w).stdout(Stdio::piped());
        } else {
            c.stdout(w).stderr(Stdio::piped());
        }
        c.output().expect("run rbuild")
    }

    /// rbuild with its stdout on /dev/full (every write fails with ENOSPC).
    fn rb_full(&self, args: &[&str]) -> Output {
        let full = fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        rbuild_command(&self.root, args)
            .stdout(full)
            .stderr(Stdio::piped())
            .output()
            .expect("run rbuild")
    }

    fn config(&self) -> PathBuf {
        self.root
            .join("images")
            .join(self.img.trim_start_matches("sha256:"))
            .join("config.json")
    }
}

/// The write end of a pipe whose read end is already closed: a write gets EPIPE (rbuild keeps
/// SIGPIPE ignored, as every Rust program starts).
fn pipe_without_reader() -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two new descriptors into the array it is given, which has room for
    // them; on success this function owns both.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just created by pipe2 and are owned by nothing else.
    let (r, w) = unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    };
    drop(r);
    w
}

/// A fresh tar file in the lab (so `layer add` stores something new, then prints).
fn new_tar(s: &Scratch, name: &str) -> String {
    let f = s.join(name);
    fs::write(&f, RawTar::new().file(name.as_bytes(), b"x").finish()).unwrap();
    f.to_str().unwrap().to_string()
}

fn assert_no_panic(o: &Output, what: &str) {
    let err = stderr(o);
    assert_ne!(o.status.code(), Some(101), "{what}: panicked: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert!(!err.contains("backtrace"), "{what}: {err}");
}

#[test]
fn stdout_whose_reader_is_gone_exits_141_without_a_message() {
    let lab = Lab::new();
    let add = new_tar(&lab.s, "piped.tar");
    let cases: Vec<Vec<&str>> = vec![
        vec!["image", "ls"],
        vec!["layer", "ls"],
        vec!["image", "inspect", "demo:1"],
        vec!["image", "inspect", "--raw", "demo:1"],
        vec!["image", "tag", "demo:1", "other:2"],
        vec!["layer", "add", &add],
        vec!["--help"],
        vec!["image", "--help"],
        vec!["--version"],
    ];
    for args in &cases {
        let o = lab.rb_reader_gone(args, false);
        assert_no_panic(&o, &format!("{args:?}"));
        assert_eq!(o.status.code(), Some(141), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o), "", "{args:?}: quiet on a closed pipe");
    }
    // what was asked for was still done: the layer is stored, the tag exists
    assert_eq!(stdout(&lab.rb(&["layer", "ls", "-q"])).lines().count(), 2);
    assert!(stdout(&lab.rb(&["image", "ls"])).contains("other:2"));
}

#[test]
fn stdout_on_a_full_disk_says_so_in_one_line_and_exits_1() {
    let lab = Lab::new();
    let add = new_tar(&lab.s, "full.tar");
    let cases: Vec<Vec<&str>> = vec![
        vec!["image", "ls"],
        vec!["layer", "ls"],
        vec!["image", "inspect", "demo:1"],
        vec!["layer", "add", &add],
        vec!["image", "create", &lab.layer],
        vec!["--help"],
    ];
    for args in &cases {
        let o = lab.rb_full(args);
        assert_no_panic(&o, &format!("{args:?}"));
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert_eq!(
            stderr(&o),
            "rbuild: write to stdout: No space left on device (os error 28)",
            "{args:?}"
        );
    }
}

#[test]
fn stderr_whose_reader_is_gone_does_not_panic() {
    let lab = Lab::new();
    // a refusal (its message cannot be written) keeps its status
    let o = lab.rb_reader_gone(&["image", "inspect", "nosuch:1"], true);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    // a usage error too
    let o = lab.rb_reader_gone(&["image", "bogus"], true);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    // a warning or a summary on stderr does not turn success into failure
    let o = lab.rb_reader_gone(&["gc"], true);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let o = lab.rb_reader_gone(&["fsck"], true);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
}

/// Asserts a usage error: exit 1, one line on stderr naming the problem and where help is.
fn assert_usage(o: &Output, phrase: &str, help: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(o.stdout.is_empty(), "{}", stdout(o));
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("rbuild: "), "{err}");
    assert!(err.contains(phrase), "want {phrase:?}: {err}");
    assert!(err.ends_with(&format!("(see `{help} --help`)")), "{err}");
}

#[test]
fn usage_errors_are_one_line_and_exit_1() {
    let lab = Lab::new();
    assert_usage(
        &lab.rb(&["image", "bogus"]),
        "unrecognized subcommand 'bogus'",
        "rbuild image",
    );
    assert_usage(
        &lab.rb(&["image", "create"]),
        "the following required arguments were not provided: <LAYER>...",
        "rbuild image create",
    );
    assert_usage(
        &lab.rb(&["layer", "ls", "--nope"]),
        "unexpected argument '--nope'",
        "rbuild layer ls",
    );
    assert_usage(
        &lab.rb(&[]),
        "a subcommand is required: layer, image, export, import, save, pull, push, login, logout, build, gc or fsck",
        "rbuild",
    );
    assert_usage(
        &lab.rb(&["image"]),
        "a subcommand is required: create, ls, inspect, rm or tag",
        "rbuild image",
    );
    // help and version still print in full on stdout and succeed
    for args in [
        &["--help"][..],
        &["image", "create", "--help"],
        &["help", "layer"],
    ] {
        let o = lab.rb(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).lines().count() > 3, "{args:?}: {}", stdout(&o));
        assert!(stdout(&o).contains("Usage: rbuild"), "{args:?}");
    }
    let o = lab.rb(&["--version"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("rbuild "), "{}", stdout(&o));
}

/// Changes the image's config.json as someone writing into the store would.
fn tamper(p: &Path) {
    let text = fs::read_to_string(p)
        .unwrap()
        .replace("/srv/app", "/bin/evil");
    fs::write(p, text).unwrap();
}

fn assert_mismatch(o: &Output, what: &str, img: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{what}: {err}");
    assert!(o.stdout.is_empty(), "{what}: printed {}", stdout(o));
    assert_eq!(err.lines().count(), 1, "{what}: {err}");
    assert!(
        err.starts_with(&format!("rbuild: {what}"))
            && err.contains(&format!(
                "image {img}: its config.json does not match its id"
            )),
        "{what}: {err}"
    );
    assert!(!err.contains("/bin/evil"), "{err}");
}

#[test]
fn a_tampered_image_config_is_not_inspected_reused_or_trusted_for_removals() {
    let lab = Lab::new();
    let cfg = lab.config();
    tamper(&cfg);
    assert_mismatch(
        &lab.rb(&["image", "inspect", "demo:1"]),
        "image inspect demo:1",
        &lab.img,
    );
    assert_mismatch(
        &lab.rb(&["image", "inspect", "--raw", &lab.img]),
        "image inspect",
        &lab.img,
    );
    // creating the same image again does not hand out the tampered one under a new tag
    assert_mismatch(
        &lab.rb(&[
            "image", "create", &lab.layer, "--tag", "again:1", "--cmd", "/srv/app",
        ]),
        "image create",
        &lab.img,
    );
    assert!(!stdout(&lab.rb(&["image", "ls"])).contains("again:1"));
    // its layer list cannot be trusted: no layer is removed on its word
    assert_mismatch(&lab.rb(&["gc"]), "gc", &lab.img);
    assert_mismatch(
        &lab.rb(&["layer", "rm", &lab.layer]),
        &format!("layer rm {}", lab.layer),
        &lab.img,
    );
    assert!(rootfs(&lab.root, &lab.layer).join("srv/app").is_file());
    // listing still works, and removing the image is the way out
    let ls = lab.rb(&["image", "ls"]);
    assert_eq!(ls.status.code(), Some(0), "{}", stderr(&ls));
    assert!(stdout(&ls).contains(&lab.img), "{}", stdout(&ls));
    ok_line(&lab.rb(&["image", "rm", "demo:1"]));
    let again = ok_line(&lab.rb(&[
        "image", "create", &lab.layer, "--tag", "demo:1", "--cmd", "/srv/app",
    ]));
    assert_eq!(again, lab.img, "the same inputs give the same id");
    let o = lab.rb(&["image", "inspect", "demo:1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("/srv/app"), "{}", stdout(&o));
}

/// rbuild under `timeout 10` with 1 GiB of address space: a regression that waits on a FIFO
/// or reads /dev/zero without end fails the test instead of hanging or filling the machine.
fn rb_bounded(lab: &Lab, args: &[&str]) -> Output {
    let c = rbuild_command(&lab.root, args);
    let mut b = rbox_tests::command("sh");
    b.arg("-c")
        .arg("ulimit -v 1048576; exec timeout 10 \"$@\"")
        .arg("sh")
        .arg(c.get_program())
        .args(c.get_args())
        .env_remove("RBOX_ROOT")
        .stdin(Stdio::null());
    b.output().expect("run rbuild")
}

/// A config.json that is not a regular file (a FIFO, a symbolic link to /dev/zero) or is huge:
/// every command that reads it says so in one line at once; `image ls` still lists the image.
#[test]
fn a_config_json_that_is_a_fifo_a_link_to_dev_zero_or_huge_is_refused_at_once() {
    let lab = Lab::new();
    let cfg = lab.config();
    type Make<'a> = &'a dyn Fn(&Path);
    let kinds: [(&str, Make, &str); 3] = [
        (
            "fifo",
            &|p| {
                let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
                // SAFETY: mkfifo on a valid C path.
                assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
            },
            "a fifo, not a regular file",
        ),
        (
            "zero",
            &|p| std::os::unix::fs::symlink("/dev/zero", p).unwrap(),
            "a symbolic link, not a regular file",
        ),
        (
            "huge",
            &|p| fs::write(p, vec![b' '; 17 << 20]).unwrap(),
            "larger than 16 MiB",
        ),
    ];
    for (kind, make, want) in kinds {
        fs::remove_file(&cfg).unwrap();
        make(&cfg);
        for args in [
            vec!["image", "inspect", "demo:1"],
            vec!["gc"],
            vec!["layer", "rm", &lab.layer],
        ] {
            let o = rb_bounded(&lab, &args);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(1), "{kind} {args:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{kind} {args:?}: {err}");
            assert!(
                err.contains("config.json") && err.contains(want),
                "{kind} {args:?}: {err}"
            );
        }
        let o = rb_bounded(&lab, &["fsck"]);
        assert!(
            stderr(&o).contains(want) || stdout(&o).contains(want),
            "{kind} fsck: {}",
            stderr(&o)
        );
        assert_eq!(o.status.code(), Some(1), "{kind} fsck");
        let o = rb_bounded(&lab, &["image", "ls"]);
        assert_eq!(o.status.code(), Some(0), "{kind} ls: {}", stderr(&o));
        assert!(
            stdout(&o).contains(&lab.img) && stdout(&o).contains("damaged config"),
            "{kind} ls: {}",
            stdout(&o)
        );
    }
    fs::remove_file(&cfg).unwrap();
    ok_line(&lab.rb(&["image", "rm", "demo:1"]));
}
