//! `rbuild layer ls` and `rbuild image ls` as people and scripts read them (issue 10): a
//! header, sizes in human units, `-q` for ids only, `--format json` for one object per line.

use std::process::Output;

use rbox_tests::{alpine_fixture, cmd, require_root, Scratch};

fn rb(store: &Scratch, args: &[&str]) -> Output {
    let o = cmd("rbuild")
        .env("RBOX_ROOT", store.path())
        .args(args)
        .output()
        .expect("run rbuild");
    assert!(
        o.status.success(),
        "rbuild {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn layer_and_image_ls_have_a_header_human_sizes_quiet_ids_and_json() {
    require_root();
    let store = Scratch::new("rbls");
    let fixture = alpine_fixture("3.15.11");
    let layer = out(&rb(&store, &["layer", "add", fixture.to_str().unwrap()]));
    let layer = layer.trim();
    let image = out(&rb(
        &store,
        &[
            "image",
            "create",
            layer,
            "--tag",
            "alpine:3.15",
            "--tag",
            "a:b",
        ],
    ));
    let image = image.trim();

    // Empty listings print the header alone (as `docker images`), -q prints nothing.
    let empty = Scratch::new("rbls0");
    assert_eq!(out(&rb(&empty, &["image", "ls"])).lines().count(), 1);
    assert_eq!(out(&rb(&empty, &["layer", "ls", "-q"])), "");

    let ls = out(&rb(&store, &["layer", "ls"]));
    let lines: Vec<&str> = ls.lines().collect();
    assert_eq!(lines.len(), 2, "{ls}");
    assert!(
        lines[0].starts_with("LAYER ID")
            && lines[0].contains("SIZE")
            && lines[0].contains("SOURCE"),
        "{ls}"
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(row[0], layer);
    assert!(
        row[1].ends_with("MB") && row[1].trim_end_matches("MB").parse::<f64>().is_ok(),
        "a size in human units: {ls}"
    );
    assert_eq!(
        lines[0].find("SIZE"),
        lines[1].find(row[1]),
        "aligned: {ls}"
    );
    assert!(
        lines[1].ends_with("alpine-minirootfs-3.15.11-x86_64.tar.gz"),
        "{ls}"
    );

    let ls = out(&rb(&store, &["image", "ls"]));
    let lines: Vec<&str> = ls.lines().collect();
    assert_eq!(lines.len(), 2, "{ls}");
    assert!(
        lines[0].starts_with("IMAGE ID") && lines[0].contains("TAGS"),
        "{ls}"
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(row[0], image);
    assert!(
        row[1].contains("alpine:3.15") && row[1].contains("a:b"),
        "{ls}"
    );
    assert_eq!(row[2], "1", "{ls}");
    assert!(row[3].ends_with("MB"), "{ls}");

    assert_eq!(
        out(&rb(&store, &["layer", "ls", "-q"])),
        format!("{layer}\n")
    );
    assert_eq!(
        out(&rb(&store, &["image", "ls", "--quiet"])),
        format!("{image}\n")
    );

    let j = out(&rb(&store, &["layer", "ls", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_str(j.trim()).expect("one JSON object");
    assert_eq!(v["ID"], layer);
    assert!(v["Size"].as_u64().unwrap() > 5_000_000, "{j}");
    let j = out(&rb(&store, &["image", "ls", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_str(j.trim()).expect("one JSON object");
    assert_eq!(v["ID"], image);
    assert_eq!(v["Layers"], 1);
    let mut tags: Vec<&str> = v["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    tags.sort();
    assert_eq!(tags, ["a:b", "alpine:3.15"]);
}
