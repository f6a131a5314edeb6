//! Reading the store as a new user does: a command that only reads never creates a store, a
//! damaged tags.json blocks only what needs a tag (`rbuild fsck --repair` rebuilds it and says
//! what it dropped), and an id prefix under 12 digits is told so instead of `not found`.

mod rrun_common;

use std::fs;
use std::process::Output;

use rbox_tests::{cmd, require_root, Scratch};
use rrun_common::{output, Lab};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim().to_string()
}

fn rbuild(lab: &Lab, args: &[&str]) -> Output {
    let mut c = lab.rbuild();
    c.env_remove("RUST_LOG").args(args);
    output(c, 60)
}

fn rrun(lab: &Lab, args: &[&str]) -> Output {
    let mut c = lab.rrun();
    c.env_remove("RUST_LOG").args(args);
    output(c, 60)
}

#[test]
fn commands_that_only_read_never_create_a_store() {
    require_root();
    let s = Scratch::new("nostore");
    let root = s.join("nonexistent/x");
    let root_s = root.to_str().unwrap();
    // (program, args, exit status): listings have nothing to list and succeed
    let cases: &[(&str, &[&str], i32)] = &[
        ("rbuild", &["image", "ls"], 0),
        ("rbuild", &["layer", "ls"], 0),
        ("rbuild", &["gc"], 0),
        ("rbuild", &["image", "inspect", "alpine"], 1),
        ("rbuild", &["image", "rm", "alpine"], 1),
        ("rbuild", &["image", "tag", "alpine", "b:1"], 1),
        ("rbuild", &["fsck"], 1),
        (
            "rrun",
            &["--net", "none", "--image", "alpine", "--", "true"],
            125,
        ),
    ];
    for (prog, args, code) in cases {
        let mut c = cmd(prog);
        c.env_remove("RUST_LOG")
            .env_remove("RBOX_ROOT")
            .arg("--root")
            .arg(&root)
            .args(*args);
        let o = output(c, 30);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(*code), "{prog} {args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{prog} {args:?}: {err}");
        assert!(
            err.contains(&format!("no store at {root_s}")),
            "{prog} {args:?}: {err}"
        );
        // a listing prints its header alone (as `docker images` with nothing to list)
        let want = match *args {
            ["image", "ls"] => "IMAGE ID   TAGS   LAYERS   SIZE",
            ["layer", "ls"] => "LAYER ID   SIZE   SOURCE",
            _ => "",
        };
        assert_eq!(text(&o.stdout).trim_end(), want, "{prog} {args:?}");
        assert!(
            !s.join("nonexistent").exists(),
            "{prog} {args:?} created {}",
            s.join("nonexistent").display()
        );
    }
    // rrun's lifecycle commands have no container to find there, and create nothing either
    for args in [
        &["ps", "-a"][..],
        &["inspect", "c"],
        &["rm", "c"],
        &["logs", "c"],
    ] {
        let mut c = cmd("rrun");
        c.env_remove("RBOX_ROOT")
            .arg("--root")
            .arg(&root)
            .args(args);
        let o = output(c, 30);
        assert!(!s.join("nonexistent").exists(), "rrun {args:?} created it");
        if args[0] == "ps" {
            assert!(o.status.success(), "{}", text(&o.stderr));
        } else {
            assert_eq!(o.status.code(), Some(125), "rrun {args:?}");
        }
    }
}

#[test]
fn a_damaged_tags_json_blocks_only_what_needs_a_tag_and_fsck_repair_rebuilds_it() {
    let lab = Lab::new("tags");
    let hex = lab.image.trim_start_matches("sha256:").to_string();
    let tags = lab.store.join("tags.json");
    // a tag at a missing image, then the file cut short in the middle of a line
    let mut t = fs::read_to_string(&tags).unwrap();
    assert!(t.contains("alpine:3.15"), "{t}");
    t = t.replace(
        "{\n",
        &format!("{{\n  \"gone:1\": \"sha256:{}\",\n", "0".repeat(64)),
    );
    t = t.trim_end().trim_end_matches('}').to_string() + ",\n  \"cut\": \"sha2";
    fs::write(&tags, &t).unwrap();

    // by id (full, bare, a 12-digit prefix): runs and inspects as before
    for r in [lab.image.clone(), hex.clone(), hex[..12].to_string()] {
        let o = rrun(
            &lab,
            &[
                "--net",
                "none",
                "--image",
                &r,
                "--",
                "cat",
                "/etc/alpine-release",
            ],
        );
        assert_eq!(text(&o.stdout), "3.15.11", "{r}: {}", text(&o.stderr));
        let o = rbuild(&lab, &["image", "inspect", &r]);
        assert!(o.status.success(), "{r}: {}", text(&o.stderr));
        assert!(text(&o.stdout).contains("diff_ids"), "{r}");
    }
    let o = rbuild(&lab, &["layer", "ls"]);
    assert!(o.status.success() && text(&o.stdout).contains(&lab.layer));
    let o = rbuild(&lab, &["image", "ls"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout)
            .lines()
            .any(|l| l.starts_with(&lab.image) && l.contains("<tags unreadable>")),
        "{}",
        text(&o.stdout)
    );
    assert!(
        text(&o.stderr).contains("fsck --repair"),
        "{}",
        text(&o.stderr)
    );
    // by name: one line saying what is wrong and what repairs it
    let o = rrun(
        &lab,
        &["--net", "none", "--image", "alpine:3.15", "--", "true"],
    );
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("tags.json") && err.contains("`rbuild fsck --repair`"),
        "{err}"
    );
    // fsck says so; fsck --repair keeps what it can verify and says what it dropped
    let o = rbuild(&lab, &["fsck"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stdout).contains("tags.json"), "{}", text(&o.stdout));
    let o = rbuild(&lab, &["fsck", "--repair"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let dropped = text(&o.stdout);
    assert_eq!(dropped.lines().count(), 2, "{dropped}");
    assert!(
        dropped.contains("dropped tag \"gone:1\": points at missing image"),
        "{dropped}"
    );
    assert!(dropped.contains("unreadable"), "{dropped}");
    assert!(
        text(&o.stderr).contains("tags.json rebuilt: 1 tag(s) kept, 2 dropped"),
        "{}",
        text(&o.stderr)
    );
    let o = rrun(
        &lab,
        &[
            "--net",
            "none",
            "--image",
            "alpine:3.15",
            "--",
            "echo",
            "back",
        ],
    );
    assert_eq!(text(&o.stdout), "back", "{}", text(&o.stderr));
    let o = rbuild(&lab, &["fsck"]);
    assert!(o.status.success(), "{}", text(&o.stdout));
    lab.assert_clean(&[]);
}

#[test]
fn an_id_prefix_under_twelve_digits_is_told_to_need_twelve() {
    let lab = Lab::new("short");
    let hex = lab.image.trim_start_matches("sha256:");
    let r = &hex[..8];
    let o = rbuild(&lab, &["image", "inspect", r]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("an id prefix needs at least 12 hex digits"),
        "{r}: {err}"
    );
    let o = rrun(&lab, &["--net", "none", "--image", r, "--", "true"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert!(err.contains("at least 12 hex digits"), "{r}: {err}");
    // with sha256: it can only be an id, and the message says what an id reference is
    let o = rbuild(&lab, &["image", "inspect", &format!("sha256:{r}")]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("a hex prefix of at least 12 digits"), "{err}");
    // a name that looks like a short prefix is still a name when it is a tag
    let o = rbuild(&lab, &["image", "tag", &lab.image, &hex[..8]]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = rbuild(&lab, &["image", "inspect", &hex[..8]]);
    assert!(o.status.success(), "{}", text(&o.stderr));
}
