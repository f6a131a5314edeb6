//! A store written by the previous release (commit f731b8b: no format marker, no holds; rbuild
//! learnt which images were in use from rrun's containers/<id>/state.json) keeps working with
//! this one: the first writer migrates it once, under the store lock, turning the containers'
//! states into holds; `image rm` then refuses an image an old container uses until `rrun rm`,
//! and a second open migrates nothing. The old store is written here file by file, as that
//! release wrote it (its binaries are not needed).

mod rrun_common;

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;

use rbox_tests::{alpine_fixture, cmd, require_root, unique, Scratch};
use rrun_common::output;
use sha2::{Digest, Sha256};

/// A store laid out by the previous release: one Alpine layer, images made of it, tags.
struct OldStore {
    _s: Scratch,
    root: PathBuf,
    layer: String,
}

fn mkdir(p: &Path, mode: u32) {
    fs::DirBuilder::new().mode(mode).create(p).unwrap();
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

impl OldStore {
    fn new() -> OldStore {
        require_root();
        let s = Scratch::new("mig");
        let root = s.join("store");
        mkdir(&root, 0o700);
        for sub in ["layers", "images", "containers", "blobs", "tmp"] {
            mkdir(&root.join(sub), 0o700);
        }
        for lock in ["store.lock", "tags.lock"] {
            fs::write(root.join(lock), b"").unwrap();
            fs::set_permissions(root.join(lock), fs::Permissions::from_mode(0o600)).unwrap();
        }
        // a layer folder (rootfs/ and layer.json) is the same in both releases: extract it in a
        // scratch store and move it over, as the old release left it
        let donor = s.join("donor");
        let o = rbuild(
            &donor,
            &["layer", "add", alpine_fixture("3.15.11").to_str().unwrap()],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let layer = String::from_utf8_lossy(&o.stdout)
            .trim()
            .trim_start_matches("sha256:")
            .to_string();
        fs::rename(
            donor.join("layers").join(&layer),
            root.join("layers").join(&layer),
        )
        .unwrap();
        OldStore { _s: s, root, layer }
    }

    /// Writes an image config as the old `image create` did (canonical JSON) and tags it;
    /// returns `sha256:<id>`.
    fn image(&self, tag: &str, cmd: &str) -> String {
        let config = format!(
            "{{\"architecture\":\"amd64\",\"config\":{{\"Cmd\":[\"{cmd}\"],\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"]}},\"os\":\"linux\",\"rootfs\":{{\"diff_ids\":[\"sha256:{}\"],\"type\":\"layers\"}}}}",
            self.layer
        );
        let id: String = Sha256::digest(config.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let dir = self.root.join("images").join(&id);
        mkdir(&dir, 0o755);
        fs::write(dir.join("config.json"), config).unwrap();
        let tags = self.root.join("tags.json");
        let mut map: serde_json::Map<String, serde_json::Value> = fs::read(&tags)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        map.insert(tag.into(), format!("sha256:{id}").into());
        fs::write(&tags, serde_json::to_string_pretty(&map).unwrap() + "\n").unwrap();
        format!("sha256:{id}")
    }

    /// A kept container that ran and exited, as the old rrun recorded it (its state.json
    /// rewritten in place, so padded with spaces). Returns its id.
    fn exited_container(&self, name: &str, image: &str, image_ref: &str) -> String {
        let id: String = Sha256::digest(name.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let dir = self.root.join("containers").join(&id);
        mkdir(&dir, 0o755);
        mkdir(&dir.join("upper"), 0o755);
        mkdir(&dir.join("work"), 0o700);
        let state = serde_json::json!({
            "id": id,
            "name": name,
            "image": image,
            "image_ref": image_ref,
            "created": 1_700_000_000u64,
            "pid": 999_999_999,
            "pid_start": 911_155,
            "owner_pid": 999_999_998,
            "owner_start": 911_154,
            "exit_code": 0,
            "finished": true,
            "oom_killed": false,
            "detached": false,
            "auto_remove": false,
            // the paths its cgroup had differ by host; they were removed when it exited
            "cgroup_paths": [],
            "config": {
                "hostname": &id[..12],
                "net": "none",
                "userns": "remap",
                "idmaps": {
                    "uid": [{"inside": 0, "outside": 100000, "count": 65536}],
                    "gid": [{"inside": 0, "outside": 100000, "count": 65536}],
                    "deny_setgroups": false
                },
                "rootless": false,
                "read_only": false,
                "volumes": [],
                "tmpfs": [],
                "limits": {"memory": null, "cpus": null, "cpuset_cpus": null, "pids": null},
                "process": {
                    "args": ["echo", "hi"],
                    "env": [format!("HOSTNAME={}", &id[..12]), "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                    "cwd": "/",
                    "user": "",
                    "tty": false,
                    "stdin": false
                },
                "lowerdirs": [self.root.join("layers").join(&self.layer).join("rootfs")]
            }
        });
        let text = serde_json::to_string_pretty(&state).unwrap() + "\n    ";
        fs::write(dir.join("state.json"), text).unwrap();
        id
    }

    fn rbuild(&self, args: &[&str]) -> Output {
        rbuild(&self.root, args)
    }

    fn rrun(&self, args: &[&str]) -> Output {
        let mut c = cmd("rrun");
        c.env("RBOX_ROOT", &self.root).args(args);
        output(c, 60)
    }

    fn holds(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.root.join("holds"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

impl Drop for OldStore {
    fn drop(&mut self) {
        // containers of the old store whose record this test did not remove
        let ids: Vec<String> = fs::read_dir(self.root.join("containers"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if !ids.is_empty() {
            let mut c = cmd("rrun");
            c.env("RBOX_ROOT", &self.root)
                .arg("rm")
                .arg("-f")
                .args(&ids);
            let _ = output(c, 60);
        }
    }
}

fn rbuild(root: &Path, args: &[&str]) -> Output {
    let mut c = cmd("rbuild");
    c.env("RBOX_ROOT", root).env_remove("RUST_LOG").args(args);
    output(c, 60)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim().to_string()
}

#[test]
fn a_store_of_the_previous_release_is_migrated_once_and_its_containers_hold_their_images() {
    let old = OldStore::new();
    let img = old.image("old:1", "/bin/sh");
    let other = old.image("other:1", "/bin/true");
    let name = unique("oldc");
    let cid = old.exited_container(&name, &img, "old:1");
    assert!(!old.root.join("format.json").exists());

    // the first writer of this release migrates: the old container holds its image
    let o = old.rbuild(&["image", "rm", "old:1"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("is used by container {cid}")) && err.contains("rrun rm"),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(old.root.join("format.json"))
            .unwrap()
            .trim(),
        r#"{"format":2}"#
    );
    let hex = img.trim_start_matches("sha256:");
    assert_eq!(old.holds(), vec![format!("{hex}.container-{cid}")]);

    // the old store keeps working: its image runs, its container is listed
    let o = old.rrun(&[
        "--net",
        "none",
        "--image",
        "old:1",
        "--",
        "cat",
        "/etc/alpine-release",
    ]);
    assert_eq!(text(&o.stdout), "3.15.11", "{}", text(&o.stderr));
    let o = old.rrun(&["ps", "-a"]);
    assert!(text(&o.stdout).contains(&name), "{}", text(&o.stdout));

    // once migrated, no state.json is read again: a record written the old way now (which only
    // the old release would write) holds nothing
    let later = old.exited_container(&unique("late"), &other, "other:1");
    let o = old.rbuild(&["image", "rm", "other:1"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), other);
    assert_eq!(old.holds().len(), 1, "{:?}", old.holds());
    let o = old.rrun(&["rm", &later]);
    assert!(o.status.success(), "{}", text(&o.stderr));

    // `rrun rm` of the old container releases its hold; then the image goes
    let o = old.rrun(&["rm", &name]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(old.holds().is_empty(), "{:?}", old.holds());
    let o = old.rbuild(&["image", "rm", "old:1"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), img);
    assert!(!old.root.join("images").join(hex).exists());
}

#[test]
fn rrun_rm_of_an_old_container_first_migrates_so_no_hold_outlives_it() {
    let old = OldStore::new();
    let img = old.image("old:1", "/bin/sh");
    let name = unique("oldr");
    old.exited_container(&name, &img, "old:1");
    // rrun is the first writer here: it migrates before it removes
    let o = old.rrun(&["rm", &name]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(old.root.join("format.json").exists());
    assert!(old.holds().is_empty(), "{:?}", old.holds());
    let o = old.rbuild(&["image", "rm", "old:1"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
}

#[test]
fn migration_reads_only_a_valid_image_field_of_old_states() {
    let old = OldStore::new();
    let img = old.image("old:1", "/bin/sh");
    let c = old.root.join("containers");
    let write_state = |folder: &str, json: &str| {
        mkdir(&c.join(folder), 0o755);
        fs::write(c.join(folder).join("state.json"), json).unwrap();
    };
    // none of these holds the image, and none may make the migration hang or follow a link
    write_state("a0-garbage", "\u{1}\u{2} not json at all");
    write_state("a1-number", "{\"image\": 42}");
    write_state("a2-path", "{\"image\": \"sha256:../../../etc\"}");
    mkdir(&c.join("a3-dir-state"), 0o755);
    mkdir(&c.join("a3-dir-state/state.json"), 0o755);
    mkdir(&c.join("a4-fifo"), 0o755);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        c.join("a4-fifo/state.json"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let elsewhere = old.root.parent().unwrap().join("elsewhere.json");
    fs::write(&elsewhere, format!("{{\"image\":\"{img}\"}}")).unwrap();
    mkdir(&c.join("a5-symlink"), 0o755);
    std::os::unix::fs::symlink(&elsewhere, c.join("a5-symlink/state.json")).unwrap();
    std::os::unix::fs::symlink(c.join("a1-number"), c.join("a6-linked-folder")).unwrap();
    // rrun's own fields, whatever they hold, do not matter: only "image" is read
    let user = "f".repeat(64);
    write_state(
        &user,
        &format!("{{\"id\":\"/etc\",\"name\":\"\u{7f}x\",\"pid\":\"?\",\"image\":\"{img}\",\"config\":[1]}}"),
    );
    let o = old.rbuild(&["image", "rm", &img]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("is used by container {user}")),
        "{err}"
    );
    let hex = img.trim_start_matches("sha256:");
    assert_eq!(old.holds(), vec![format!("{hex}.container-{user}")]);
    // its record is refused by rrun (an id that is not its folder's); rm -f removes the folder
    // and releases the hold
    let o = old.rrun(&["rm", "-f", &user]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(old.holds().is_empty());
    let o = old.rbuild(&["image", "rm", &img]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    for d in [
        "a0-garbage",
        "a1-number",
        "a2-path",
        "a3-dir-state",
        "a4-fifo",
        "a5-symlink",
    ] {
        let _ = fs::remove_dir_all(c.join(d));
    }
}
