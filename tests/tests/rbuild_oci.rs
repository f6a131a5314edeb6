//! rbuild export, import and save against the tools people use: skopeo, umoci and podman
//! read our OCI layouts and docker-archives, we import theirs (gzip, zstd and uncompressed
//! layers, whiteouts and opaque directories), round trips keep the ImageID and the layers'
//! own DiffIDs, a corrupted blob is refused naming its digest.

mod oci_common;
mod rbuild_common;

use std::fs;
use std::io::Read;
use std::path::Path;

use oci_common::*;
use rbox_tests::{require_root, Scratch};
use rbuild_common::*;

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
}

/// The blob a layout's image `name` lists as its layer `i`, and its manifest.
fn layer_blob(layout: &Path, name: &str, i: usize) -> std::path::PathBuf {
    let idx = json(&layout.join("index.json"));
    let m = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == name)
        .unwrap();
    let mhex = m["digest"].as_str().unwrap().trim_start_matches("sha256:");
    let man = json(&layout.join("blobs/sha256").join(mhex));
    let lhex = man["layers"][i]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    layout.join("blobs/sha256").join(lhex)
}

fn gunzip_sha(p: &Path) -> String {
    let mut d = flate2::read::GzDecoder::new(fs::File::open(p).unwrap());
    let mut v = Vec::new();
    d.read_to_end(&mut v).unwrap();
    format!("sha256:{}", sha256_hex(&v))
}

#[test]
fn export_is_read_by_skopeo_umoci_and_podman() {
    require_root();
    let s = Scratch::new("oci-exp");
    let root = s.join("store");
    let id = rbuild_alpine_image(&root, "alpine:3.15");
    let layout = s.join("out");
    let dest = format!("{}:3.15", layout.display());
    let o = rbuild(&root, &["export", "alpine:3.15", &dest]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stdout.is_empty(), "export prints nothing on stdout");
    // skopeo: the config digest it reports is our ImageID; the layer is the layer's own stream
    assert_eq!(
        skopeo_config_digest(s.path(), &format!("oci:{dest}"), &[]),
        id
    );
    let diff = ok_line(&rbuild(&root, &["layer", "ls", "-q"]));
    let want_diff = diff.split_whitespace().next().unwrap();
    assert_eq!(gunzip_sha(&layer_blob(&layout, "3.15", 0)), want_diff);
    // umoci unpacks it to the same files rbuild extracted
    let bundle = s.join("bundle");
    run_ok(umoci(
        s.path(),
        &["unpack", "--image", &dest, bundle.to_str().unwrap()],
    ));
    assert_eq!(
        fs::read_to_string(bundle.join("rootfs/etc/alpine-release")).unwrap(),
        "3.15.11\n"
    );
    let ours = snapshot(&rootfs(&root, want_diff));
    let theirs = snapshot(&bundle.join("rootfs"));
    let names = |v: &[String]| {
        v.iter()
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&ours), names(&theirs), "umoci unpacks the same files");
    // podman runs it, and calls it by our id
    let p = Podman::new();
    let mut args = p.run_args();
    args.extend([
        format!("oci:{dest}"),
        "cat".into(),
        "/etc/alpine-release".into(),
    ]);
    let out = run_ok(p.cmd(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    assert_eq!(out.trim(), "3.15.11");
    let listed = run_ok(p.cmd(&["images", "--no-trunc", "--format", "{{.ID}}"]));
    assert!(
        listed.contains(id.trim_start_matches("sha256:")),
        "podman's id is ours: {listed}"
    );
}

#[test]
fn export_then_import_gives_back_the_same_image_id() {
    require_root();
    let s = Scratch::new("oci-rt");
    let (a, b) = (s.join("a"), s.join("b"));
    let id = rbuild_alpine_image(&a, "alpine:3.15");
    let dest = format!("{}:x", s.join("l").display());
    ok_line(&rbuild(&a, &["export", &id, &dest]));
    assert_eq!(
        ok_line(&rbuild(&b, &["import", &dest, "--tag", "back:1"])),
        id
    );
    // and again out of the second store, into the same layout under another name
    let dest2 = format!("{}:y", s.join("l").display());
    ok_line(&rbuild(&b, &["export", "back:1", &dest2]));
    let idx = json(&s.join("l/index.json"));
    assert_eq!(idx["manifests"].as_array().unwrap().len(), 2, "{idx}");
    assert_eq!(
        layer_blob(&s.join("l"), "x", 0),
        layer_blob(&s.join("l"), "y", 0),
        "the same layer compresses to the same blob"
    );
    // a docker-archive round trip too
    let tar = s.join("a.tar");
    ok_line(&rbuild(&b, &["save", "back:1", tar.to_str().unwrap()]));
    let c = s.join("c");
    assert_eq!(ok_line(&rbuild(&c, &["import", tar.to_str().unwrap()])), id);
    let tags = ok_line(&rbuild(&c, &["image", "ls"]));
    assert!(
        tags.contains("back:1"),
        "the archive's RepoTags name it: {tags}"
    );
    assert_tmp_empty(&b);
}

/// A second layer as umoci writes it: /etc/motd deleted (umoci repack's whiteout).
fn umoci_deletion_layer(s: &Scratch, layout: &Path) {
    let l = layout.to_str().unwrap();
    let b = s.join("ub");
    run_ok(umoci(
        s.path(),
        &[
            "unpack",
            "--image",
            &format!("{l}:base"),
            b.to_str().unwrap(),
        ],
    ));
    fs::remove_file(b.join("rootfs/etc/motd")).unwrap();
    run_ok(umoci(
        s.path(),
        &[
            "repack",
            "--image",
            &format!("{l}:two"),
            b.to_str().unwrap(),
        ],
    ));
}

#[test]
fn import_reads_umoci_and_skopeo_layouts_with_whiteouts_zstd_and_opaque_dirs() {
    require_root();
    let s = Scratch::new("oci-imp");
    let layout = umoci_alpine_layout(&s);
    umoci_deletion_layer(&s, &layout);
    // a third layer with an opaque /root holding one new file, added verbatim
    let mut t = RawTar::new();
    t.dir(b"root/");
    t.file(b"root/.wh..wh..opq", b"");
    t.file(b"root/new", b"new\n");
    let opq = s.join("opq.tar");
    fs::write(&opq, t.finish()).unwrap();
    let l = layout.to_str().unwrap();
    run_ok(umoci(
        s.path(),
        &[
            "raw",
            "add-layer",
            "--image",
            &format!("{l}:two"),
            "--tag",
            "three",
            opq.to_str().unwrap(),
        ],
    ));
    let root = s.join("store");
    for (name, xform) in [("three", None), ("three", Some("zstd"))] {
        let src = match xform {
            None => format!("{l}:{name}"),
            Some(fmt) => {
                let z = s.join(format!("{fmt}-layout"));
                run_ok(skopeo(
                    s.path(),
                    &[
                        "copy",
                        "-q",
                        "--dest-compress",
                        "--dest-compress-format",
                        fmt,
                        &format!("oci:{l}:{name}"),
                        &format!("oci:{}:{name}", z.display()),
                    ],
                ));
                let raw = run_ok({
                    let mut c = tool("skopeo", s.path());
                    c.args(["inspect", "--raw", &format!("oci:{}:{name}", z.display())]);
                    c
                });
                assert!(raw.contains("tar+zstd"), "skopeo wrote zstd layers: {raw}");
                format!("{}:{name}", z.display())
            }
        };
        let want = skopeo_config_digest(s.path(), &format!("oci:{src}"), &[]);
        let id = ok_line(&rbuild(&root, &["import", &src]));
        assert_eq!(
            id, want,
            "the ImageID is the config digest skopeo reports ({src})"
        );
    }
    // the whiteout and the opaque directory, as overlayfs sees them
    let id = ok_line(&rbuild(&root, &["import", &format!("{l}:three")]));
    let cfg: serde_json::Value = serde_json::from_str(&ok_line(&rbuild(
        &root,
        &["image", "inspect", "--raw", &id],
    )))
    .unwrap();
    let diffs: Vec<String> = cfg["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    assert_eq!(diffs.len(), 3);
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let motd = fs::symlink_metadata(rootfs(&root, &diffs[1]).join("etc/motd")).unwrap();
    assert!(
        motd.file_type().is_char_device() && motd.rdev() == 0,
        "a 0/0 whiteout"
    );
    let mut v = [0u8; 4];
    let n = rustix::fs::lgetxattr(
        rootfs(&root, &diffs[2]).join("root"),
        "trusted.overlay.opaque",
        &mut v[..],
    )
    .unwrap();
    assert_eq!(&v[..n], b"y");
    assert!(!rootfs(&root, &diffs[2]).join("root/.wh..wh..opq").exists());
    // and an export of it gives back the three DiffIDs
    let out = s.join("again");
    ok_line(&rbuild(
        &root,
        &["export", &id, &format!("{}:t", out.display())],
    ));
    for (i, d) in diffs.iter().enumerate() {
        assert_eq!(&gunzip_sha(&layer_blob(&out, "t", i)), d, "layer {i}");
    }
}

/// An OCI layout whose one layer is an uncompressed tar (media type ...tar), written by hand.
fn uncompressed_layout(dir: &Path, tar: &[u8], config: &[u8]) {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |b: &[u8]| {
        let h = sha256_hex(b);
        fs::write(blobs.join(&h), b).unwrap();
        (format!("sha256:{h}"), b.len())
    };
    let (ld, ls) = put(tar);
    let (cd, cs) = put(config);
    let m = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls}]});
    let (md, ms) = put(&serde_json::to_vec(&m).unwrap());
    fs::write(
        dir.join("oci-layout"),
        br#"{"imageLayoutVersion": "1.0.0"}"#,
    )
    .unwrap();
    let idx = serde_json::json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": md, "size": ms, "annotations": {"org.opencontainers.image.ref.name": "u"}}]});
    fs::write(dir.join("index.json"), serde_json::to_vec(&idx).unwrap()).unwrap();
}

fn small_config(tar: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"]}, "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", sha256_hex(tar))]}}))
    .unwrap()
}

#[test]
fn import_reads_uncompressed_layers_and_names_a_corrupted_blob() {
    require_root();
    let s = Scratch::new("oci-bad");
    let tar = fs::read(alpine_tar(s.path())).unwrap();
    let config = small_config(&tar);
    let layout = s.join("u");
    uncompressed_layout(&layout, &tar, &config);
    let good = s.join("good");
    let id = ok_line(&rbuild(
        &good,
        &["import", &format!("{}:u", layout.display())],
    ));
    assert_eq!(
        id,
        format!("sha256:{}", sha256_hex(&config)),
        "stored byte for byte"
    );
    assert_eq!(
        ok_line(&rbuild(&good, &["image", "inspect", "--raw", &id])).as_bytes(),
        &config[..]
    );
    // one byte of the layer changed: refused, naming the blob, nothing stored
    let lhex = sha256_hex(&tar);
    let blob = layout.join("blobs/sha256").join(&lhex);
    let mut bytes = fs::read(&blob).unwrap();
    bytes[5000] ^= 0x20;
    fs::write(&blob, &bytes).unwrap();
    for root in [s.join("fresh"), good.clone()] {
        let o = rbuild(&root, &["import", &format!("{}:u", layout.display())]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!("sha256:{lhex}")) && err.contains("corrupt"),
            "{err}"
        );
    }
    let fresh = s.join("fresh");
    assert!(
        fs::read_dir(fresh.join("layers")).unwrap().next().is_none(),
        "no layer stored"
    );
    assert!(
        fs::read_dir(fresh.join("images")).unwrap().next().is_none(),
        "no image stored"
    );
    assert_tmp_empty(&fresh);
    // a corrupted config likewise
    fs::write(&blob, &tar).unwrap();
    let chex = sha256_hex(&config);
    let mut c = config.clone();
    c[2] ^= 0x01;
    fs::write(layout.join("blobs/sha256").join(&chex), c).unwrap();
    let o = rbuild(&fresh, &["import", &format!("{}:u", layout.display())]);
    assert!(
        stderr(&o).contains(&format!("sha256:{chex}")),
        "{}",
        stderr(&o)
    );
    // a blob that is a FIFO or a symlink out of the layout is refused, never read
    fs::remove_file(layout.join("blobs/sha256").join(&chex)).unwrap();
    std::os::unix::fs::symlink("/dev/zero", layout.join("blobs/sha256").join(&chex)).unwrap();
    let o = rbuild(&fresh, &["import", &format!("{}:u", layout.display())]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    fs::remove_file(layout.join("blobs/sha256").join(&chex)).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        layout.join("blobs/sha256").join(&chex),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let o = output_within(
        rbuild_command(&fresh, &["import", &format!("{}:u", layout.display())]),
        std::time::Duration::from_secs(30),
    );
    assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
}

#[test]
fn import_reads_docker_archives_from_skopeo_and_podman_and_podman_loads_ours() {
    require_root();
    let s = Scratch::new("oci-arch");
    let layout = umoci_alpine_layout(&s);
    let l = layout.to_str().unwrap();
    let sk = s.join("skopeo.tar");
    run_ok(skopeo(
        s.path(),
        &[
            "copy",
            "-q",
            &format!("oci:{l}:base"),
            &format!("docker-archive:{}:test/alp:1", sk.display()),
        ],
    ));
    let p = Podman::new();
    run_ok(p.cmd(&["load", "-q", "-i", sk.to_str().unwrap()]));
    let pid = p.image_id("test/alp:1");
    let root = s.join("store");
    assert_eq!(
        ok_line(&rbuild(&root, &["import", sk.to_str().unwrap()])),
        pid
    );
    // podman save, both formats
    for (fmt, file) in [("docker-archive", "p.tar"), ("oci-archive", "p-oci.tar")] {
        let f = s.join(file);
        run_ok(p.cmd(&[
            "save",
            "-q",
            "--format",
            fmt,
            "-o",
            f.to_str().unwrap(),
            "test/alp:1",
        ]));
        // podman writes an OCI archive's config in OCI form: its own digest, as skopeo says
        let want = skopeo_config_digest(s.path(), &format!("{fmt}:{}", f.display()), &[]);
        if fmt == "docker-archive" {
            assert_eq!(want, pid);
        }
        let r2 = s.join(format!("store-{fmt}"));
        assert_eq!(
            ok_line(&rbuild(&r2, &["import", f.to_str().unwrap()])),
            want,
            "{fmt}"
        );
    }
    // ours: podman loads it under the same id and name, skopeo reads it
    let ours = s.join("ours.tar");
    ok_line(&rbuild(&root, &["image", "tag", &pid, "mine:2"]));
    ok_line(&rbuild(&root, &["save", "mine:2", ours.to_str().unwrap()]));
    let p2 = Podman::new();
    run_ok(p2.cmd(&["load", "-q", "-i", ours.to_str().unwrap()]));
    assert_eq!(p2.image_id("mine:2"), pid);
    assert_eq!(
        skopeo_config_digest(s.path(), &format!("docker-archive:{}", ours.display()), &[]),
        pid
    );
    let mut args = p2.run_args();
    args.extend([
        "mine:2".to_string(),
        "cat".into(),
        "/etc/alpine-release".into(),
    ]);
    assert_eq!(
        run_ok(p2.cmd(&args.iter().map(String::as_str).collect::<Vec<_>>())).trim(),
        "3.15.11"
    );
}

#[test]
fn layers_without_a_kept_stream_say_so_in_one_line() {
    require_root();
    let s = Scratch::new("oci-old");
    let root = s.join("store");
    let id = rbuild_alpine_image(&root, "a:1");
    let diff = ok_line(&rbuild(&root, &["layer", "ls", "-q"]));
    let hex = diff
        .split_whitespace()
        .next()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    // a layer as the previous release stored it: no tar-split, no field
    let dir = root.join("layers").join(&hex);
    fs::remove_file(dir.join("tar-split.zst")).unwrap();
    let mut meta = json(&dir.join("layer.json"));
    meta.as_object_mut().unwrap().remove("tar_split");
    fs::write(dir.join("layer.json"), serde_json::to_vec(&meta).unwrap()).unwrap();
    let dest = format!("{}:x", s.join("out").display());
    let o = rbuild(&root, &["export", &id, &dest]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "layer sha256:{hex} was imported before rbuild kept tar streams"
        )),
        "{err}"
    );
    assert!(!s.join("out").exists(), "nothing written");
    let o = rbuild(&root, &["save", &id, s.join("x.tar").to_str().unwrap()]);
    assert!(stderr(&o).contains("imported before"), "{}", stderr(&o));
    assert!(!s.join("x.tar").exists());
    // adding its source again gives it one
    add_ok(&root, &rbox_tests::alpine_fixture("3.15.11"));
    ok_line(&rbuild(&root, &["export", &id, &dest]));
    // a stream that cannot be rebuilt (a member replaced by a later one) says why
    let mut t = RawTar::new();
    t.file(b"f", b"first");
    t.file(b"f", b"second");
    let dup = s.join("dup.tar");
    fs::write(&dup, t.finish()).unwrap();
    let l = add_ok(&root, &dup);
    let img = ok_line(&rbuild(&root, &["image", "create", &l]));
    let o = rbuild(
        &root,
        &["export", &img, &format!("{}:d", s.join("out2").display())],
    );
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot be rebuilt") && err.contains("replaces an earlier member"),
        "{err}"
    );
}
