//! rbuild pull and push against Debian's docker-registry, started by each test on 127.0.0.1
//! with its own config, port and storage: plain HTTP, TLS with a test CA, Basic auth from an
//! htpasswd file; skopeo pushes and rbuild pulls and the other way round, with the ids
//! skopeo reports; login and logout write auth.json; a multi-arch index built by the test.
//! Nothing leaves loopback.

mod oci_common;
mod rbuild_common;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

use oci_common::*;
use rbox_tests::{require_root, Scratch};
use rbuild_common::*;

fn one_line_error(o: &Output, phrase: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "want a refusal; stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(phrase), "stderr should say {phrase:?}: {err}");
}

#[test]
fn skopeo_pushes_rbuild_pulls_and_the_other_way_round() {
    require_root();
    let s = Scratch::new("reg-plain");
    let reg = Registry::start(&RegistryOpts::default());
    let h = reg.host();
    let home = s.join("home");
    // skopeo pushes an umoci-made Alpine; rbuild pulls it with the id skopeo reports
    let layout = umoci_alpine_layout(&s);
    let theirs = format!("docker://{h}/skopeo/alpine:1");
    run_ok(skopeo(
        s.path(),
        &[
            "copy",
            "-q",
            "--dest-tls-verify=false",
            &format!("oci:{}:base", layout.display()),
            &theirs,
        ],
    ));
    let want = skopeo_config_digest(s.path(), &theirs, &["--tls-verify=false"]);
    let root = s.join("store");
    let id = ok_line(&rbuild_home(
        &root,
        &home,
        &["pull", &format!("{h}/skopeo/alpine:1")],
    ));
    assert_eq!(id, want);
    let ls = ok_line(&rbuild(&root, &["image", "ls"]));
    assert!(
        ls.contains(&format!("{h}/skopeo/alpine:1")),
        "tagged as pulled: {ls}"
    );
    // rbuild pushes its own image; skopeo reads it back with the same config digest
    let mine = rbuild_alpine_image(&root, "mine:1");
    let digest = ok_line(&rbuild_home(
        &root,
        &home,
        &["push", "mine:1", &format!("{h}/rbuild/alpine:2")],
    ));
    let ours = format!("docker://{h}/rbuild/alpine:2");
    assert_eq!(
        skopeo_config_digest(s.path(), &ours, &["--tls-verify=false"]),
        mine
    );
    let insp = run_ok(skopeo(s.path(), &["inspect", "--tls-verify=false", &ours]));
    assert!(
        insp.contains(&digest),
        "push printed the manifest digest {digest}: {insp}"
    );
    let out = s.join("copied");
    run_ok(skopeo(
        s.path(),
        &[
            "copy",
            "-q",
            "--src-tls-verify=false",
            &ours,
            &format!("oci:{}:x", out.display()),
        ],
    ));
    // pulled by digest into a fresh store: the same image
    let fresh = s.join("fresh");
    let pinned = format!("{h}/rbuild/alpine@{digest}");
    assert_eq!(
        ok_line(&rbuild_home(&fresh, &home, &["pull", &pinned])),
        mine
    );
    // a second push of the same image uploads nothing new and gives the same manifest
    assert_eq!(
        ok_line(&rbuild_home(
            &root,
            &home,
            &["push", &mine, &format!("{h}/rbuild/alpine:3")]
        )),
        digest
    );
    // a tag the registry lacks: one line
    one_line_error(
        &rbuild_home(&fresh, &home, &["pull", &format!("{h}/rbuild/alpine:nope")]),
        "MANIFEST_UNKNOWN",
    );
    assert_tmp_empty(&fresh);
}

#[test]
fn tls_with_a_test_ca_basic_auth_login_and_logout() {
    require_root();
    let s = Scratch::new("reg-tls");
    let (ca, crt, key) = test_ca(s.path());
    let pw = htpasswd(s.path(), "tester", "s3cret-pw");
    let reg = Registry::start(&RegistryOpts {
        tls: Some((crt, key)),
        htpasswd: Some(pw),
    });
    let h = reg.host();
    let certs = s.join("certs");
    fs::create_dir_all(&certs).unwrap();
    fs::copy(&ca, certs.join("ca.crt")).unwrap();
    let cd = certs.to_str().unwrap();
    let home = s.join("home");
    let root = s.join("store");
    let mine = rbuild_alpine_image(&root, "mine:1");
    let target = format!("{h}/secure/alpine:1");
    // without the CA the certificate is refused (and plain HTTP is no way around it)
    one_line_error(
        &rbuild_home(&root, &home, &["push", "mine:1", &target]),
        "certificate",
    );
    // without credentials: told to log in
    one_line_error(
        &rbuild_home(&root, &home, &["push", "mine:1", &target, "--cert-dir", cd]),
        &format!("run `rbuild login {h}`"),
    );
    // a wrong password is refused and nothing is written
    let login = |pass: &str| {
        let mut c = rbuild_command(
            &root,
            &[
                "login",
                &h,
                "-u",
                "tester",
                "--password-stdin",
                "--cert-dir",
                cd,
            ],
        );
        c.env("HOME", &home)
            .env("XDG_RUNTIME_DIR", home.join("run"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env_remove("REGISTRY_AUTH_FILE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{pass}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let auth_json = home.join("run/containers/auth.json");
    one_line_error(&login("wrong"), "login");
    assert!(!auth_json.exists());
    let o = login("s3cret-pw");
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&auth_json).unwrap()).unwrap();
    assert!(v["auths"][&h]["auth"].is_string(), "{v}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&auth_json).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // the saved credentials push; skopeo reads it with the same config digest
    ok_line(&rbuild_home(
        &root,
        &home,
        &["push", "mine:1", &target, "--cert-dir", cd],
    ));
    let creds = "--creds=tester:s3cret-pw";
    let skopeo_tls: [&str; 3] = ["--cert-dir", cd, creds];
    assert_eq!(
        skopeo_config_digest(s.path(), &format!("docker://{target}"), &skopeo_tls),
        mine
    );
    // skopeo pushes an umoci layout there; rbuild pulls it
    let layout = umoci_alpine_layout(&s);
    let theirs = format!("docker://{h}/skopeo/alpine:1");
    run_ok(skopeo(
        s.path(),
        &[
            "copy",
            "-q",
            "--dest-cert-dir",
            cd,
            "--dest-creds",
            "tester:s3cret-pw",
            &format!("oci:{}:base", layout.display()),
            &theirs,
        ],
    ));
    let want = skopeo_config_digest(s.path(), &theirs, &skopeo_tls);
    let fresh = s.join("fresh");
    assert_eq!(
        ok_line(&rbuild_home(
            &fresh,
            &home,
            &["pull", &format!("{h}/skopeo/alpine:1"), "--cert-dir", cd]
        )),
        want
    );
    // logout removes the entry; pulls then need credentials again
    let o = rbuild_home(&root, &home, &["logout", &h]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&auth_json).unwrap()).unwrap();
    assert!(v["auths"].get(&h).is_none(), "{v}");
    one_line_error(&rbuild_home(&root, &home, &["logout", &h]), "not logged in");
    let f2 = s.join("fresh2");
    one_line_error(
        &rbuild_home(&f2, &home, &["pull", &target, "--cert-dir", cd]),
        "asks for credentials",
    );
    // credentials in ~/.docker/config.json are read too
    fs::create_dir_all(home.join(".docker")).unwrap();
    fs::write(
        home.join(".docker/config.json"),
        serde_json::to_vec(&serde_json::json!({"auths": {format!("https://{h}"): {"auth": "dGVzdGVyOnMzY3JldC1wdw=="}}})).unwrap(),
    )
    .unwrap();
    assert_eq!(
        ok_line(&rbuild_home(
            &f2,
            &home,
            &["pull", &target, "--cert-dir", cd]
        )),
        mine
    );
}

/// An index over the images `amd` and `arm` of the layout `dir` (their manifests), added to
/// its index.json as `multi`.
fn add_index(dir: &Path) {
    let idx_path = dir.join("index.json");
    let mut idx: serde_json::Value = serde_json::from_slice(&fs::read(&idx_path).unwrap()).unwrap();
    let find = |name: &str| {
        idx["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == name)
            .unwrap()
            .clone()
    };
    let entry = |d: serde_json::Value, arch: &str, variant: Option<&str>| {
        let mut p = serde_json::json!({"os": "linux", "architecture": arch});
        if let Some(v) = variant {
            p["variant"] = v.into();
        }
        serde_json::json!({"mediaType": d["mediaType"], "digest": d["digest"], "size": d["size"], "platform": p})
    };
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(find("arm"), "arm64", Some("v8")), entry(find("amd"), "amd64", None)]});
    let bytes = serde_json::to_vec(&index).unwrap();
    let hex = sha256_hex(&bytes);
    fs::write(dir.join("blobs/sha256").join(&hex), &bytes).unwrap();
    idx["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": format!("sha256:{hex}"),
        "size": bytes.len(), "annotations": {"org.opencontainers.image.ref.name": "multi"}}));
    fs::write(&idx_path, serde_json::to_vec(&idx).unwrap()).unwrap();
}

#[test]
fn a_multi_arch_index_gives_the_host_platform_or_the_one_asked_for() {
    require_root();
    let s = Scratch::new("reg-multi");
    let reg = Registry::start(&RegistryOpts::default());
    let h = reg.host();
    let home = s.join("home");
    let root = s.join("store");
    // only x86_64 fixtures exist: the arm64 image is the same layer with another config
    let f = rbox_tests::alpine_fixture("3.15.11");
    let l = ok_line(&rbuild(&root, &["layer", "add", f.to_str().unwrap()]));
    let amd = ok_line(&rbuild(&root, &["image", "create", &l, "--tag", "a:amd"]));
    let arm = ok_line(&rbuild(
        &root,
        &["image", "create", &l, "--arch", "arm64", "--tag", "a:arm"],
    ));
    assert_ne!(amd, arm);
    let layout = s.join("multi");
    for (img, name) in [("a:amd", "amd"), ("a:arm", "arm")] {
        ok_line(&rbuild(
            &root,
            &["export", img, &format!("{}:{name}", layout.display())],
        ));
    }
    add_index(&layout);
    let reference = format!("{h}/multi/app:1");
    run_ok(skopeo(
        s.path(),
        &[
            "copy",
            "-q",
            "--all",
            "--dest-tls-verify=false",
            &format!("oci:{}:multi", layout.display()),
            &format!("docker://{reference}"),
        ],
    ));
    let fresh = s.join("fresh");
    assert_eq!(
        ok_line(&rbuild_home(&fresh, &home, &["pull", &reference])),
        amd,
        "the host's platform"
    );
    assert_eq!(
        ok_line(&rbuild_home(
            &fresh,
            &home,
            &["pull", &reference, "--platform", "linux/arm64"]
        )),
        arm
    );
    let o = rbuild_home(
        &fresh,
        &home,
        &["pull", &reference, "--platform", "linux/s390x"],
    );
    one_line_error(
        &o,
        "no image for linux/s390x (it has: linux/arm64/v8, linux/amd64)",
    );
    // the same choice from the layout itself
    let f2 = s.join("fresh2");
    let src = format!("{}:multi", layout.display());
    assert_eq!(
        ok_line(&rbuild(
            &f2,
            &["import", &src, "--platform", "linux/arm64/v8"]
        )),
        arm
    );
    assert_eq!(ok_line(&rbuild(&f2, &["import", &src])), amd);
    // a single-platform image pulled with another --platform is refused
    one_line_error(
        &rbuild_home(
            &f2,
            &home,
            &[
                "pull",
                &format!("{h}/multi/app@{}", manifest_of(&layout, "arm")),
                "--platform",
                "linux/amd64",
            ],
        ),
        "is for linux/arm64, not linux/amd64",
    );
}

fn manifest_of(layout: &Path, name: &str) -> String {
    let idx: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == name)
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string()
}
