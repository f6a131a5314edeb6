//! rbuild's store commands as a user drives them: image create/ls/inspect/tag/rm, image
//! references (id, 12-digit prefix, NAME[:TAG]), layer ls/rm refused while used, gc, and fsck
//! catching real corruption. Holds (image rm refused while a container uses the image) are in
//! store_holds.rs, the migration of an older store in store_migration.rs.

mod rbuild_common;

use std::fs;
use std::path::{Path, PathBuf};

use rbox_tests::{require_root, Scratch};
use rbuild_common::*;

/// A store with two layers and one image made of both, tagged demo:1.
struct Lab {
    _s: Scratch,
    root: PathBuf,
    l1: String,
    l2: String,
    img: String,
}

impl Lab {
    fn new() -> Lab {
        require_root();
        let s = Scratch::new("rbs");
        let root = s.join("store");
        let f1 = s.join("base.tar.gz");
        fs::write(
            &f1,
            gzip(
                &RawTar::new()
                    .file(b"etc/hostname", b"base\n")
                    .file(b"bin/tool", b"tool")
                    .finish(),
            ),
        )
        .unwrap();
        let f2 = s.join("app.tar");
        fs::write(&f2, RawTar::new().file(b"srv/app", b"app").finish()).unwrap();
        let l1 = add_ok(&root, &f1);
        let l2 = add_ok(&root, &f2);
        let img = ok_line(&rbuild(
            &root,
            &[
                "image", "create", &l1, &l2, "--tag", "demo:1", "--cmd", "/srv/app",
            ],
        ));
        Lab {
            _s: s,
            root,
            l1,
            l2,
            img,
        }
    }

    fn rb(&self, args: &[&str]) -> std::process::Output {
        rbuild(&self.root, args)
    }

    fn fails_with(&self, args: &[&str], phrase: &str) {
        let o = self.rb(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("rbuild: ") && err.contains(phrase),
            "{args:?}: want {phrase:?} in {err}"
        );
    }
}

fn hex(id: &str) -> &str {
    id.trim_start_matches("sha256:")
}

#[test]
fn image_create_lists_layers_bottom_first_and_image_ls_shows_the_tag() {
    let lab = Lab::new();
    let ls = stdout(&lab.rb(&["image", "ls"]));
    let lines: Vec<&str> = ls.lines().collect();
    assert_eq!(lines.len(), 2, "a header and the image: {ls}");
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&row[..3], [lab.img.as_str(), "demo:1", "2"], "{ls}");
    let cfg: String = stdout(&lab.rb(&["image", "inspect", "demo:1"]));
    let i1 = cfg.find(&lab.l1).unwrap();
    let i2 = cfg.find(&lab.l2).unwrap();
    assert!(i1 < i2, "diff_ids bottom first: {cfg}");
    assert!(cfg.contains("\"Cmd\"") && cfg.contains("/srv/app"), "{cfg}");
    let layers = stdout(&lab.rb(&["layer", "ls"]));
    assert_eq!(
        layers.lines().count(),
        3,
        "a header and two layers: {layers}"
    );
    assert!(
        layers.contains(&lab.l1) && layers.contains("base.tar.gz"),
        "id and source: {layers}"
    );
}

#[test]
fn images_resolve_by_id_prefix_and_tag() {
    let lab = Lab::new();
    let h = hex(&lab.img);
    for r in [
        lab.img.clone(),
        h.to_string(),
        h[..12].to_string(),
        format!("sha256:{}", &h[..12]),
        "demo:1".into(),
    ] {
        let o = lab.rb(&["image", "inspect", "--raw", &r]);
        assert_eq!(
            format!("sha256:{}", sha256_hex(stdout(&o).as_bytes())),
            lab.img,
            "reference {r}"
        );
    }
    lab.fails_with(&["image", "inspect", "demo"], "image \"demo\" not found");
    lab.fails_with(&["image", "inspect", &h[..11]], "not found");
    lab.fails_with(
        &["image", "inspect", "sha256:0123"],
        "not a valid reference",
    );
}

#[test]
fn image_tag_points_another_name_at_an_image() {
    let lab = Lab::new();
    assert_eq!(
        ok_line(&lab.rb(&["image", "tag", &lab.img[..19], "other"])),
        "other:latest"
    );
    let o = lab.rb(&["image", "inspect", "--raw", "other:latest"]);
    assert_eq!(
        format!("sha256:{}", sha256_hex(stdout(&o).as_bytes())),
        lab.img
    );
    let tags: serde_json_lite::Tags = serde_json_lite::read(&lab.root.join("tags.json"));
    assert_eq!(tags.get("other:latest"), Some(&lab.img));
    assert_eq!(tags.get("demo:1"), Some(&lab.img));
    lab.fails_with(
        &["image", "tag", &lab.img, "Bad Name"],
        "is not a valid tag",
    );
}

#[test]
fn image_rm_of_a_tag_keeps_the_image_while_another_tag_remains() {
    let lab = Lab::new();
    ok_line(&lab.rb(&["image", "tag", "demo:1", "demo:2"]));
    assert_eq!(
        ok_line(&lab.rb(&["image", "rm", "demo:1"])),
        "untagged demo:1"
    );
    assert!(lab.root.join("images").join(hex(&lab.img)).is_dir());
    assert_eq!(
        ok_line(&lab.rb(&["image", "rm", "demo:2"])),
        lab.img,
        "the last tag takes the image with it"
    );
    assert!(!lab.root.join("images").join(hex(&lab.img)).exists());
    assert_eq!(stdout(&lab.rb(&["image", "ls", "-q"])), "");
}

#[test]
fn layer_rm_refuses_while_an_image_uses_the_layer() {
    let lab = Lab::new();
    lab.fails_with(
        &["layer", "rm", &lab.l1],
        &format!("is used by image {}", lab.img),
    );
    assert!(rootfs(&lab.root, &lab.l1).is_dir());
    ok_line(&lab.rb(&["image", "rm", "demo:1"]));
    assert_eq!(ok_line(&lab.rb(&["layer", "rm", &lab.l1[..19]])), lab.l1);
    assert!(!lab.root.join("layers").join(hex(&lab.l1)).exists());
    lab.fails_with(&["layer", "rm", &lab.l1], "not found");
}

#[test]
fn gc_drops_only_unreferenced_layers_and_stale_staging() {
    let lab = Lab::new();
    let s = Scratch::new("rbs");
    let f = s.join("loose.tar");
    fs::write(&f, RawTar::new().file(b"loose", b"l").finish()).unwrap();
    let loose = add_ok(&lab.root, &f);
    // a staging folder of a process that no longer exists (pid above pid_max)
    let stale = lab.root.join("tmp/layer-4194999-dead/rootfs/x");
    fs::create_dir_all(&stale).unwrap();
    let o = lab.rb(&["gc"]);
    assert_eq!(ok_line(&o), loose, "gc prints what it removed");
    assert!(!lab.root.join("layers").join(hex(&loose)).exists());
    assert!(
        rootfs(&lab.root, &lab.l1).is_dir() && rootfs(&lab.root, &lab.l2).is_dir(),
        "used layers stay"
    );
    assert!(!lab.root.join("tmp/layer-4194999-dead").exists());
    assert_eq!(stdout(&lab.rb(&["gc"])), "", "nothing more to do");
}

#[test]
fn fsck_passes_on_a_healthy_store() {
    let lab = Lab::new();
    let o = lab.rb(&["fsck"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("every digest verified"));
}

#[test]
fn fsck_detects_a_corrupted_file_in_a_layer() {
    let lab = Lab::new();
    let f = rootfs(&lab.root, &lab.l1).join("etc/hostname");
    let md = fs::metadata(&f).unwrap();
    fs::write(&f, "evil\n").unwrap(); // same size, other bytes
                                      // put the mtime back: only the contents differ
    let ts = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: std::os::unix::fs::MetadataExt::mtime(&md),
            tv_nsec: 0,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: std::os::unix::fs::MetadataExt::mtime(&md),
            tv_nsec: 0,
        },
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        f.as_path(),
        &ts,
        rustix::fs::AtFlags::empty(),
    )
    .unwrap();
    let o = lab.rb(&["fsck"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains(&format!("layer {}: the extracted tree changed", lab.l1)),
        "{}",
        stdout(&o)
    );
    assert!(
        !stdout(&o).contains(&lab.l2),
        "the healthy layer is not blamed: {}",
        stdout(&o)
    );
    assert!(
        stderr(&o).contains("fsck: 1 problem(s) found"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn fsck_detects_a_changed_mode_and_an_added_file() {
    let lab = Lab::new();
    let r = rootfs(&lab.root, &lab.l2);
    fs::set_permissions(
        r.join("srv/app"),
        std::os::unix::fs::PermissionsExt::from_mode(0o4777),
    )
    .unwrap();
    assert_eq!(lab.rb(&["fsck"]).status.code(), Some(1));
    let r1 = rootfs(&lab.root, &lab.l1);
    fs::write(r1.join("planted"), "x").unwrap();
    let out = stdout(&lab.rb(&["fsck"]));
    assert_eq!(out.lines().count(), 2, "{out}");
}

#[test]
fn fsck_detects_a_tampered_image_config_and_a_dangling_tag() {
    let lab = Lab::new();
    let cfg = lab
        .root
        .join("images")
        .join(hex(&lab.img))
        .join("config.json");
    let text = fs::read_to_string(&cfg)
        .unwrap()
        .replace("/srv/app", "/bin/evil");
    fs::write(&cfg, text).unwrap();
    let out = stdout(&lab.rb(&["fsck"]));
    assert!(
        out.contains(&format!("image {}: config.json has sha256:", lab.img)),
        "{out}"
    );
    let tags = lab.root.join("tags.json");
    fs::write(
        &tags,
        format!("{{\"ghost:1\": \"sha256:{}\"}}", "e".repeat(64)),
    )
    .unwrap();
    let out = stdout(&lab.rb(&["fsck"]));
    assert!(
        out.contains("tag ghost:1: points at missing image"),
        "{out}"
    );
}

#[test]
fn image_create_refuses_bad_options_with_one_line() {
    let lab = Lab::new();
    lab.fails_with(
        &["image", "create", &lab.l1, "--env", "NOVALUE"],
        "--env \"NOVALUE\" is not KEY=VALUE",
    );
    lab.fails_with(
        &["image", "create", &lab.l1, "--workdir", "relative"],
        "must be an absolute path",
    );
    lab.fails_with(&["image", "create", &lab.l1, "--user", "a:b:c"], "--user");
    lab.fails_with(
        &["image", "create", &format!("sha256:{}", "0".repeat(64))],
        "not found",
    );
    lab.fails_with(&["image", "create", "nonsense"], "not a valid reference");
    assert_eq!(
        stdout(&lab.rb(&["image", "ls", "-q"])).lines().count(),
        1,
        "nothing was created"
    );
}

#[test]
fn rbox_root_environment_selects_the_store() {
    let lab = Lab::new();
    let o = rbox_tests::cmd("rbuild")
        .args(["image", "ls"])
        .env("RBOX_ROOT", &lab.root)
        .output()
        .unwrap();
    assert!(stdout(&o).contains("demo:1"), "{}", stderr(&o));
    assert!(Path::new(&lab.root).join("layers").is_dir());
}

/// tags.json read without a JSON dependency: it is a flat object of strings.
mod serde_json_lite {
    use std::collections::BTreeMap;
    use std::path::Path;
    pub type Tags = BTreeMap<String, String>;
    pub fn read(p: &Path) -> Tags {
        let text = std::fs::read_to_string(p).unwrap();
        let mut out = Tags::new();
        let parts: Vec<&str> = text.split('"').collect();
        let mut i = 1;
        while i + 2 < parts.len() {
            out.insert(parts[i].to_string(), parts[i + 2].to_string());
            i += 4;
        }
        out
    }
}

#[test]
fn a_killed_layer_add_leaves_no_layer_and_the_next_add_cleans_its_staging() {
    let lab = Lab::new();
    let s = Scratch::new("rbs");
    let mut t = RawTar::new();
    let mut x: u32 = 1;
    for i in 0..64 {
        let data: Vec<u8> = (0..(2 << 20))
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        t.file(format!("big/{i}").as_bytes(), &data);
    }
    let f = s.join("big.tar");
    fs::write(&f, t.finish()).unwrap();
    let layers_before = stdout(&lab.rb(&["layer", "ls"]));
    let mut child = rbox_tests::cmd("rbuild")
        .arg("--root")
        .arg(&lab.root)
        .args(["layer", "add"])
        .arg(&f)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let tmp = lab.root.join("tmp");
    for _ in 0..2000 {
        if fs::read_dir(&tmp).unwrap().count() > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        stdout(&lab.rb(&["layer", "ls"])),
        layers_before,
        "no half layer under its final name"
    );
    assert_eq!(
        fs::read_dir(&tmp).unwrap().count(),
        1,
        "the killed run's staging is there"
    );
    let small = s.join("small.tar");
    fs::write(&small, RawTar::new().file(b"s", b"s").finish()).unwrap();
    add_ok(&lab.root, &small);
    assert_eq!(
        fs::read_dir(&tmp).unwrap().count(),
        0,
        "the next add removed the dead run's staging"
    );
}

#[test]
fn the_store_and_its_folders_are_private_to_root() {
    let lab = Lab::new();
    use std::os::unix::fs::PermissionsExt;
    for sub in [
        "",
        "layers",
        "images",
        "holds",
        "containers",
        "blobs",
        "tmp",
    ] {
        let mode = fs::metadata(lab.root.join(sub))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777;
        assert_eq!(mode, 0o700, "{}/{sub}", lab.root.display());
    }
    // even with every folder above it open, another user reaches nothing in a layer
    fs::set_permissions(
        lab.root.parent().unwrap(),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let tool = rootfs(&lab.root, &lab.l1).join("bin/tool");
    let o = rbox_tests::command("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            "cat",
        ])
        .arg(&tool)
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "nobody read a layer's file: {}",
        stdout(&o)
    );
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
}

/// Holds `<root>/store.lock` shared, as rrun does while it resolves an image and mounts it.
fn hold_store_lock_shared(root: &Path) -> fs::File {
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join("store.lock"))
        .unwrap();
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockShared).unwrap();
    f
}

/// Spawns rbuild, checks that it is still waiting after half a second, and returns it.
fn spawn_waiting(root: &Path, args: &[&str]) -> std::process::Child {
    let mut child = rbuild_command(root, args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "{args:?} did not wait for the store lock"
    );
    child
}

#[test]
fn layer_rm_and_gc_wait_for_the_store_lock() {
    let lab = Lab::new();
    let s = Scratch::new("rbs");
    let f = s.join("loose.tar");
    fs::write(&f, RawTar::new().file(b"loose", b"l").finish()).unwrap();
    for args in [vec!["gc"], vec!["layer", "rm", "LOOSE"]] {
        let loose = add_ok(&lab.root, &f);
        let args: Vec<&str> = args
            .iter()
            .map(|a| if *a == "LOOSE" { loose.as_str() } else { a })
            .collect();
        let lock = hold_store_lock_shared(&lab.root);
        let child = spawn_waiting(&lab.root, &args);
        assert!(
            lab.root.join("layers").join(hex(&loose)).is_dir(),
            "{args:?} removed the layer under the lock"
        );
        drop(lock);
        let o = child.wait_with_output().unwrap();
        assert_eq!(ok_line(&o), loose, "{args:?}");
        assert!(!lab.root.join("layers").join(hex(&loose)).exists());
    }
}
