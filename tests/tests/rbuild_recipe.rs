//! rbuild build: reproducible images from recipes. The recipes of images/ rebuild to the ids
//! of their lock files in fresh stores, at other times, from other folders, under another
//! umask, locale and time zone, and as another user (tools/recipe-check); a changed file fails
//! that check naming the layer; recipe layers are normalised (owners, modes, xattrs, mtimes);
//! the base is found in the store, at its path, in --source-dir, and only then downloaded (from
//! a server the test starts on 127.0.0.1); bad recipes are one line and store nothing.

mod rbuild_common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rbox_tests::{alpine_fixture, bin_dir, require_root, Scratch};
use rbuild_common::*;

const SHA_315: &str = "1040dc3c9cdf5c52778789e4fe5f7b44d10d24ce9167afbbf907e44789654b9d";

fn project() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

fn fixtures() -> PathBuf {
    alpine_fixture("3.15.11").parent().unwrap().to_path_buf()
}

fn build(store: &Path, recipe: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["build", recipe.to_str().unwrap()];
    args.extend_from_slice(extra);
    rbuild(store, &args)
}

/// A refusal of `rbuild build`: exit 1, nothing on stdout, one stderr line naming the command
/// and `phrase`.
fn assert_build_refused(o: &Output, phrase: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "want exit 1; stderr: {err}");
    assert!(o.stdout.is_empty(), "stdout: {}", stdout(o));
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("rbuild: build "), "{err}");
    assert!(err.contains(phrase), "want {phrase:?} in: {err}");
}

fn layer_count(store: &Path) -> usize {
    fs::read_dir(store.join("layers"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn write_recipe(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, body).unwrap();
    p
}

fn base_315(extra: &str) -> String {
    format!("[base]\npath = \"alpine-minirootfs-3.15.11-x86_64.tar.gz\"\nsha256 = \"{SHA_315}\"\n{extra}")
}

#[test]
fn every_recipe_rebuilds_to_its_lock_file_in_any_conditions_and_as_another_user() {
    require_root();
    let o = Command::new(project().join("tools/recipe-check"))
        .env("RBOX_BIN", bin_dir())
        .env("SOURCE_DIR", fixtures())
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    let recipes = fs::read_dir(project().join("images"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "toml")
        })
        .count();
    assert!(recipes >= 2, "images/ holds the lab recipes");
    // per recipe: the lock file, three builds, two stores alike, the rootless extraction
    assert!(
        out.ends_with(&format!("{} passed, 0 failed", recipes * 6)),
        "{out}"
    );
    assert!(!out.contains("not ok"), "{out}");
}

#[test]
fn a_changed_file_of_a_recipe_fails_the_lock_check_naming_its_layer() {
    require_root();
    let s = Scratch::new("rcp");
    let images = s.join("images");
    let st = Command::new("cp")
        .arg("-R")
        .arg(project().join("images"))
        .arg(&images)
        .status()
        .unwrap();
    assert!(st.success());
    let tool = images.join("lab/usr/local/bin/lab-info");
    let mut text = fs::read_to_string(&tool).unwrap();
    text.push_str("# one more line\n");
    fs::write(&tool, text).unwrap();
    let recipe = images.join("alpine-3.20-lab.toml");
    let src = fixtures();
    let o = build(
        &s.join("store"),
        &recipe,
        &["--source-dir", src.to_str().unwrap(), "--locked"],
    );
    assert_build_refused(&o, "alpine-3.20-lab.lock: the build gave sha256:");
    assert!(
        stderr(&o).contains(": layer 1 is sha256:"),
        "{}",
        stderr(&o)
    );
    // and the check script says so
    let o = Command::new(project().join("tools/recipe-check"))
        .arg(&recipe)
        .env("RBOX_BIN", bin_dir())
        .env("SOURCE_DIR", &src)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stdout(&o).contains("not ok - alpine-3.20-lab: root, cwd the project"),
        "{}",
        stdout(&o)
    );
    // --write-lock records the new ids, and --locked then holds
    let o = build(
        &s.join("store"),
        &recipe,
        &["--source-dir", src.to_str().unwrap(), "--write-lock"],
    );
    let id = ok_line(&o);
    assert!(fs::read_to_string(images.join("alpine-3.20-lab.lock"))
        .unwrap()
        .contains(&id));
    assert_eq!(
        ok_line(&build(
            &s.join("store2"),
            &recipe,
            &["--source-dir", src.to_str().unwrap(), "--locked"]
        )),
        id
    );
}

/// A folder of the repository as a careless checkout leaves it: odd modes, another owner,
/// xattrs, a recent mtime.
fn messy_tree(dir: &Path, mode_file: u32, mode_exec: u32, owner: u32, xattr: bool, mtime: &str) {
    fs::create_dir_all(dir.join("bin")).unwrap();
    fs::write(dir.join("bin/tool"), "#!/bin/sh\necho tool\n").unwrap();
    fs::write(dir.join("notes.txt"), "notes\n").unwrap();
    std::os::unix::fs::symlink("bin/tool", dir.join("tool-link")).unwrap();
    fs::set_permissions(dir.join("bin/tool"), fs::Permissions::from_mode(mode_exec)).unwrap();
    fs::set_permissions(dir.join("notes.txt"), fs::Permissions::from_mode(mode_file)).unwrap();
    fs::set_permissions(dir.join("bin"), fs::Permissions::from_mode(mode_exec)).unwrap();
    for p in ["bin/tool", "notes.txt", "bin", "tool-link", "."] {
        rustix::fs::chownat(
            rustix::fs::CWD,
            dir.join(p),
            Some(rustix::process::Uid::from_raw(owner)),
            Some(rustix::process::Gid::from_raw(owner)),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .unwrap();
    }
    if xattr {
        rustix::fs::setxattr(
            dir.join("notes.txt"),
            "user.origin",
            b"checkout",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
    }
    let st = Command::new("touch")
        .args(["-h", "-d", mtime])
        .arg(dir.join("notes.txt"))
        .arg(dir.join("bin/tool"))
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn recipe_layers_are_normalised_whatever_the_checkout() {
    require_root();
    let s = Scratch::new("rcp");
    let fx = fixtures();
    let recipe = |dir: &Path| {
        fs::create_dir_all(dir).unwrap();
        fs::copy(
            fx.join("alpine-minirootfs-3.15.11-x86_64.tar.gz"),
            dir.join("alpine-minirootfs-3.15.11-x86_64.tar.gz"),
        )
        .unwrap();
        write_recipe(
            dir,
            "r.toml",
            &base_315(
                "[[layer]]\ndir = [{ src = \"tree\", dest = \"/opt/lab\" }]\n\
                 file = [{ text = \"secret\\n\", dest = \"/etc/lab/secret\", mode = \"0640\", owner = \"1000:1001\" }]\n\
                 [config]\ncmd = [\"/bin/sh\"]\n",
            ),
        )
    };
    let a = recipe(&s.join("a"));
    messy_tree(
        &s.join("a/tree"),
        0o600,
        0o700,
        1234,
        true,
        "2001-01-01 00:00",
    );
    let b = recipe(&s.join("b"));
    messy_tree(&s.join("b/tree"), 0o664, 0o775, 0, false, "now");
    let id_a = ok_line(&build(&s.join("sa"), &a, &[]));
    let id_b = ok_line(&build(&s.join("sb"), &b, &["--tag", "other:tag"]));
    assert_eq!(id_a, id_b, "two checkouts of one folder give one image");

    // what the layer holds, extracted as root: normalised owners and modes, no xattr, mtime 0
    let cfg: serde_json::Value = serde_json::from_str(&ok_line(&rbuild(
        &s.join("sa"),
        &["image", "inspect", &id_a],
    )))
    .unwrap();
    let diff_ids = cfg["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(diff_ids.len(), 2);
    let r = rootfs(&s.join("sa"), diff_ids[1].as_str().unwrap());
    use std::os::unix::fs::MetadataExt;
    let attrs = |p: &str| {
        let m = fs::symlink_metadata(r.join(p)).unwrap();
        (m.mode() & 0o7777, m.uid(), m.gid(), m.mtime())
    };
    assert_eq!(attrs("opt"), (0o755, 0, 0, 0));
    assert_eq!(attrs("opt/lab"), (0o755, 0, 0, 0));
    assert_eq!(attrs("opt/lab/bin"), (0o755, 0, 0, 0));
    assert_eq!(attrs("opt/lab/bin/tool"), (0o755, 0, 0, 0));
    assert_eq!(attrs("opt/lab/notes.txt"), (0o644, 0, 0, 0));
    assert_eq!(attrs("etc/lab/secret"), (0o640, 1000, 1001, 0));
    assert_eq!(
        fs::read_link(r.join("opt/lab/tool-link")).unwrap(),
        Path::new("bin/tool")
    );
    let mut buf = [0u8; 64];
    assert!(
        rustix::fs::getxattr(r.join("opt/lab/notes.txt"), "user.origin", &mut buf[..]).is_err(),
        "no xattr kept"
    );
    assert_eq!(
        fs::read_to_string(r.join("etc/lab/secret")).unwrap(),
        "secret\n"
    );
    let tags = ok_line(&rbuild(&s.join("sb"), &["image", "ls"]));
    assert!(tags.contains("other:tag"), "{tags}");
}

#[test]
fn the_config_of_a_recipe_is_the_image_config() {
    require_root();
    let s = Scratch::new("rcp");
    fs::copy(
        alpine_fixture("3.15.11"),
        s.join("alpine-minirootfs-3.15.11-x86_64.tar.gz"),
    )
    .unwrap();
    let r = write_recipe(
        s.path(),
        "c.toml",
        &format!(
            "tags = [\"cfg:1\"]\n{}",
            base_315(
                "[config]\nentrypoint = [\"/bin/echo\", \"hi\"]\ncmd = [\"there\"]\nenv = [\"A=1\", \"B=two words\"]\n\
                 workdir = \"/tmp\"\nuser = \"1000:1000\"\nlabels = { \"org.example.b\" = \"2\", \"org.example.a\" = \"1\" }\n"
            )
        ),
    );
    let id = ok_line(&build(&s.join("st"), &r, &[]));
    let cfg: serde_json::Value = serde_json::from_str(&ok_line(&rbuild(
        &s.join("st"),
        &["image", "inspect", "cfg:1"],
    )))
    .unwrap();
    assert_eq!(
        format!(
            "sha256:{}",
            sha256_hex(
                stdout(&rbuild(&s.join("st"), &["image", "inspect", "--raw", &id])).as_bytes()
            )
        ),
        id
    );
    let c = &cfg["config"];
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/echo", "hi"]));
    assert_eq!(c["Cmd"], serde_json::json!(["there"]));
    assert_eq!(c["Env"][1], "A=1");
    assert_eq!(c["Env"][2], "B=two words");
    assert!(c["Env"][0].as_str().unwrap().starts_with("PATH="));
    assert_eq!(c["WorkingDir"], "/tmp");
    assert_eq!(c["User"], "1000:1000");
    assert_eq!(
        c["Labels"],
        serde_json::json!({"org.example.a": "1", "org.example.b": "2"})
    );
    assert!(
        cfg.get("created").is_none(),
        "no clock in a recipe's image: {cfg}"
    );
}

/// An HTTP server on 127.0.0.1 answering every GET with `body`, counting requests.
fn serve(body: Vec<u8>) -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    std::thread::spawn(move || {
        for c in l.incoming().take(16) {
            let Ok(mut c) = c else { break };
            h.fetch_add(1, Ordering::SeqCst);
            let _ = c.set_read_timeout(Some(std::time::Duration::from_secs(5)));
            let mut req = Vec::new();
            let mut b = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&b[..n]),
                }
            }
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = c.write_all(&body);
        }
    });
    (port, hits)
}

#[test]
fn the_base_is_found_in_the_store_then_at_its_path_then_in_the_source_dir_then_downloaded() {
    require_root();
    let s = Scratch::new("rcp");
    let tgz = fs::read(alpine_fixture("3.15.11")).unwrap();
    let (port, hits) = serve(tgz);
    let url = format!("http://127.0.0.1:{port}/dl/alpine-minirootfs-3.15.11-x86_64.tar.gz");
    let recipe = write_recipe(
        s.path(),
        "u.toml",
        &format!(
            "[base]\nurl = \"{url}\"\nsha256 = \"{SHA_315}\"\n[config]\ncmd = [\"/bin/sh\"]\n"
        ),
    );
    let fx = fixtures();

    // in --source-dir: no download
    let st1 = s.join("st1");
    let id = ok_line(&build(
        &st1,
        &recipe,
        &["--source-dir", fx.to_str().unwrap()],
    ));
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the source dir came before the URL"
    );
    // in the store by its checksum: neither the folder nor the URL is needed
    assert_eq!(
        ok_line(&build(
            &st1,
            &recipe,
            &["--source-dir", s.join("nothing-here").to_str().unwrap()]
        )),
        id
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the store came before the URL"
    );
    // nowhere else: downloaded, verified, the same id
    let st2 = s.join("st2");
    assert_eq!(ok_line(&build(&st2, &recipe, &[])), id);
    assert_eq!(hits.load(Ordering::SeqCst), 1, "downloaded once");
    // a path relative to the recipe's folder, from another working directory
    fs::create_dir_all(s.join("r/base")).unwrap();
    fs::copy(alpine_fixture("3.15.11"), s.join("r/base/a.tgz")).unwrap();
    let rel = write_recipe(&s.join("r"), "p.toml", &format!("[base]\npath = \"base/a.tgz\"\nsha256 = \"{SHA_315}\"\n[config]\ncmd = [\"/bin/sh\"]\n"));
    let o = rbuild_command(&s.join("st3"), &["build", "r/p.toml"])
        .current_dir(s.path())
        .output()
        .unwrap();
    assert_eq!(ok_line(&o), id);
    let _ = rel;

    // a wrong file in --source-dir is refused by its checksum, naming it
    fs::create_dir_all(s.join("bad")).unwrap();
    fs::write(
        s.join("bad/alpine-minirootfs-3.15.11-x86_64.tar.gz"),
        gzip(&RawTar::new().file(b"x", b"x").finish()),
    )
    .unwrap();
    let st4 = s.join("st4");
    let o = build(
        &st4,
        &recipe,
        &["--source-dir", s.join("bad").to_str().unwrap()],
    );
    assert_build_refused(
        &o,
        "bad/alpine-minirootfs-3.15.11-x86_64.tar.gz: sha256 mismatch",
    );
    assert_eq!(layer_count(&st4), 0, "nothing stored");
    // found nowhere, and no URL: one line saying where it looked and what to do
    let norl = write_recipe(
        s.path(),
        "n.toml",
        &format!("[base]\npath = \"gone.tar.gz\"\nsha256 = \"{SHA_315}\"\n"),
    );
    let o = build(
        &s.join("st5"),
        &norl,
        &["--source-dir", s.join("bad").to_str().unwrap()],
    );
    assert_build_refused(&o, "is not in the store, nor at ");
    assert!(
        stderr(&o).contains("pass --source-dir DIR"),
        "{}",
        stderr(&o)
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[test]
fn a_bad_recipe_is_one_line_and_stores_no_layer() {
    require_root();
    let s = Scratch::new("rcp");
    fs::copy(
        alpine_fixture("3.15.11"),
        s.join("alpine-minirootfs-3.15.11-x86_64.tar.gz"),
    )
    .unwrap();
    fs::create_dir_all(s.join("d")).unwrap();
    fs::write(s.join("d/f"), "f").unwrap();
    fs::create_dir_all(s.join("fifo")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        s.join("fifo/p"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let cases: &[(&str, &str)] = &[
        ("[base]\nsha256 = \"x\"\n", "base.sha256 \"x\" is not 64 hex digits"),
        ("bogus = 1\n[base]\npath = \"a\"\nsha256 = \"a\"\n", "unknown field `bogus`"),
        (&base_315("[[layer]]\nfile = [{ text = \"x\", dest = \"etc/x\" }]\n"), "layer 1: file.dest \"etc/x\" must be an absolute path"),
        (&base_315("[[layer]]\nfile = [{ text = \"x\", dest = \"/etc/../../x\" }]\n"), "must not hold `..`"),
        (&base_315("[[layer]]\nfile = [{ text = \"x\", dest = \"/x\", mode = \"rwx\" }]\n"), "mode \"rwx\" is not octal"),
        (&base_315("[[layer]]\nfile = [{ text = \"x\", dest = \"/x\", owner = \"root\" }]\n"), "owner \"root\" is not UID:GID"),
        (&base_315("[[layer]]\nfile = [{ src = \"nope\", dest = \"/x\" }]\n"), "layer 1: file "),
        (&base_315("[[layer]]\ndir = [{ src = \"fifo\" }]\n"), "fifo/p: a device, FIFO or socket"),
        (&base_315("[[layer]]\ndir = [{ src = \"d\", dest = \"/x\" }]\nfile = [{ text = \"y\", dest = \"/x/f\" }]\n"), "/x/f is given twice in one layer"),
        (&format!("tags = [\"Bad Tag\"]\n{}", base_315("")), "tag \"Bad Tag\""),
        (&base_315("[config]\nenv = [\"NOEQUALS\"]\n"), "\"NOEQUALS\" is not KEY=VALUE"),
        (&base_315("[[layer]]\n"), "a layer needs at least one dir or file"),
    ];
    for (i, (body, phrase)) in cases.iter().enumerate() {
        let r = write_recipe(s.path(), &format!("bad{i}.toml"), body);
        let st = s.join(format!("st{i}"));
        let o = build(&st, &r, &[]);
        assert_build_refused(&o, phrase);
        assert_eq!(layer_count(&st), 0, "case {i}: nothing stored");
    }
    let o = build(&s.join("stx"), &s.join("missing.toml"), &[]);
    assert_build_refused(&o, "missing.toml: cannot open it");
}
