//! Tests across the store's modules, on scratch stores in the temp dir.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::Digest as _;

use crate::*;

/// A scratch folder removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        Dir(std::env::temp_dir().join(format!(
            "store-unit-{}-{}",
            std::process::id(),
            files::nonce()
        )))
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = remove_tree(&self.0);
    }
}

fn fake_layer(store: &Store, hex: &str, rootless: bool) {
    fs::create_dir_all(store.layer_dir(hex).join("rootfs")).unwrap();
    let meta = LayerMeta {
        diff_id: format!("sha256:{hex}"),
        size: 0,
        source: "unit".into(),
        blob_sha256: hex.into(),
        blob_sha512: None,
        compression: "tar".into(),
        tree_digest: String::new(),
        rootless,
        id_map: None,
        tar_split: None,
        tar_split_lost: None,
    };
    fs::write(
        store.layer_dir(hex).join("layer.json"),
        serde_json::to_vec(&meta).unwrap(),
    )
    .unwrap();
}

/// Stores an image of `layers` (hex, bottom first) with `/bin/sh` as its command; its hex id.
fn fake_image(store: &Store, layers: &[&str]) -> String {
    let ids: Vec<String> = layers.iter().map(|l| format!("\"sha256:{l}\"")).collect();
    let bytes = format!(
        r#"{{"architecture":"amd64","config":{{"Cmd":["/bin/sh"]}},"os":"linux","rootfs":{{"diff_ids":[{}],"type":"layers"}}}}"#,
        ids.join(",")
    );
    let id = digest::hex(&sha2::Sha256::digest(bytes.as_bytes()));
    let _l = store.lock_shared().unwrap();
    store.put_image_config(bytes.as_bytes(), &id).unwrap();
    id
}

#[test]
fn resolve_image_gives_config_and_lowerdirs_bottom_first() {
    let dir = Dir::new();
    let store = Store::create(&dir.0).unwrap();
    let (a, b, c) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
    for (l, rootless) in [(&a, false), (&b, false), (&c, true)] {
        fake_layer(&store, l, rootless);
    }
    let id = fake_image(&store, &[&b, &a]);
    store.set_tag("x:1", &id).unwrap();
    for r in [
        format!("sha256:{id}"),
        id.clone(),
        id[..12].to_string(),
        format!("sha256:{}", &id[..20]),
        "x:1".into(),
    ] {
        let img = store.resolve_image(&r).unwrap();
        assert_eq!(img.id, format!("sha256:{id}"));
        assert_eq!(img.hex(), id);
        assert_eq!(img.layers, vec![b.clone(), a.clone()]);
        assert_eq!(
            img.lowerdirs,
            vec![
                store.layer_dir(&b).join("rootfs"),
                store.layer_dir(&a).join("rootfs")
            ]
        );
        let cmd = img.config.config().as_ref().and_then(|c| c.cmd().clone());
        assert_eq!(cmd, Some(vec!["/bin/sh".to_string()]));
        assert_eq!(img.mode, LayerMode::Root);
    }
    let rl = fake_image(&store, &[&c]);
    assert_eq!(store.resolve_image(&rl).unwrap().mode, LayerMode::Rootless);
    assert!(matches!(
        store.resolve_image("x"),
        Err(StoreError::ImageNotFound(_))
    ));
    assert!(matches!(
        store.resolve_image("sha256:xyz"),
        Err(StoreError::InvalidReference(_))
    ));
    for short in ["7b3eda33", &id[..11]] {
        let e = store.resolve_image(short).unwrap_err();
        assert!(matches!(e, StoreError::ShortPrefix(_)), "{short}: {e}");
        assert!(e.to_string().contains("at least 12 hex digits"), "{e}");
    }
    let e = store.resolve_image("sha256:7b3eda33").unwrap_err();
    assert!(matches!(e, StoreError::InvalidReference(_)), "{e}");
    assert!(e.to_string().contains("at least 12 digits"), "{e}");
    // a short name that is a tag is the tag
    store.set_tag("abc123", &id).unwrap();
    assert_eq!(store.resolve_image_hex("abc123").unwrap(), id);
    assert_eq!(store.containers_dir(), dir.0.join("containers"));
}

#[test]
fn images_mixing_root_and_rootless_layers_are_refused_when_resolved() {
    let dir = Dir::new();
    let store = Store::create(&dir.0).unwrap();
    let (r, u) = ("d".repeat(64), "e".repeat(64));
    fake_layer(&store, &r, false);
    fake_layer(&store, &u, true);
    // an image written by hand (or by an older rbuild) is refused when resolved
    let id = fake_image(&store, &[&r, &u]);
    assert!(matches!(
        store.resolve_image(&id),
        Err(StoreError::MixedLayerModes { .. })
    ));
}

#[test]
fn a_new_store_and_its_folders_are_private() {
    let dir = Dir::new();
    Store::create(&dir.0).unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(mode(&dir.0), 0o700);
    for sub in layout::SUBDIRS {
        assert_eq!(mode(&dir.0.join(sub)), 0o700, "{sub}");
    }
    // folders an older rbuild left open are closed again; a shared root is left alone
    fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(dir.0.join("layers"), fs::Permissions::from_mode(0o755)).unwrap();
    Store::open(&dir.0).unwrap();
    assert_eq!((mode(&dir.0), mode(&dir.0.join("layers"))), (0o755, 0o700));
}

#[test]
fn reading_never_creates_a_store() {
    let dir = Dir::new();
    let missing = dir.0.join("not/there");
    for e in [
        Store::open_read(&missing).unwrap_err(),
        Store::open(&missing).unwrap_err(),
    ] {
        assert!(matches!(e, StoreError::NoStore(_)), "{e}");
        assert!(e.to_string().starts_with("no store at "), "{e}");
    }
    assert!(!dir.0.exists());
    // an empty folder is no store either
    fs::create_dir_all(&missing).unwrap();
    assert!(matches!(Store::open(&missing), Err(StoreError::NoStore(_))));
    assert_eq!(fs::read_dir(&missing).unwrap().count(), 0);
    let s = Store::create(&missing).unwrap();
    assert_eq!(migrate::format_of(&s).unwrap(), Some(migrate::FORMAT));
    Store::open_read(&missing).unwrap();
}

#[test]
fn a_damaged_tags_file_blocks_names_only() {
    let dir = Dir::new();
    let store = Store::create(&dir.0).unwrap();
    let l = "f".repeat(64);
    fake_layer(&store, &l, false);
    let id = fake_image(&store, &[&l]);
    store.set_tag("keep:1", &id).unwrap();
    store.set_tag("gone:1", &"0".repeat(64)).unwrap();
    let good = fs::read(store.tags_path()).unwrap();
    let mut bad = good.clone();
    bad.extend_from_slice(b"\n  \"cut\": \"sha2");
    fs::write(store.tags_path(), &bad).unwrap();
    for r in [id.clone(), id[..12].to_string(), format!("sha256:{id}")] {
        assert_eq!(store.resolve_image(&r).unwrap().hex(), id, "{r}");
    }
    let e = store.resolve_image("keep:1").unwrap_err();
    assert!(matches!(e, StoreError::TagsDamaged { .. }), "{e}");
    assert!(e.to_string().contains("fsck --repair"), "{e}");
    let r = store.repair_tags().unwrap();
    assert!(r.rewritten);
    assert_eq!(r.kept, 1);
    assert_eq!(r.dropped.len(), 2, "{:?}", r.dropped);
    assert!(r
        .dropped
        .iter()
        .any(|d| d.contains("gone:1") && d.contains("missing image")));
    assert!(r.dropped.iter().any(|d| d.contains("unreadable")));
    assert_eq!(store.resolve_image_hex("keep:1").unwrap(), id);
    assert_eq!(store.tags().unwrap().len(), 1);
    let again = store.repair_tags().unwrap();
    assert!(!again.rewritten && again.dropped.is_empty());
    // a symlink in its place is no tags file
    fs::remove_file(store.tags_path()).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", store.tags_path()).unwrap();
    assert!(matches!(store.tags(), Err(StoreError::TagsDamaged { .. })));
    let r = store.repair_tags().unwrap();
    assert!(r.rewritten && r.kept == 0);
    assert!(fs::symlink_metadata(store.tags_path()).unwrap().is_file());
}

#[test]
fn holds_last_until_released_or_while_their_process_runs() {
    let dir = Dir::new();
    let store = Store::create(&dir.0).unwrap();
    let l = "1".repeat(64);
    fake_layer(&store, &l, false);
    let id = fake_image(&store, &[&l]);
    let img = store.resolve_image(&id).unwrap();
    let kept = Holder::container(&"a".repeat(64)).unwrap();
    let mine = Holder::new("unit-mine").unwrap();
    let gone = Holder::new("unit-gone").unwrap();
    store.hold(&img, &kept, Lifetime::UntilReleased).unwrap();
    store
        .hold(&img, &mine, Lifetime::this_process().unwrap())
        .unwrap();
    // a process that has ended
    let mut child = std::process::Command::new("sleep")
        .arg("10")
        .spawn()
        .unwrap();
    let p = process::ProcessId::of(child.id()).unwrap();
    store
        .hold(&img, &gone, Lifetime::WhileProcessRuns(p))
        .unwrap();
    assert_eq!(store.holds_on(&id).unwrap().len(), 3);
    child.kill().unwrap();
    child.wait().unwrap();
    let holds = store.holds_on(&id).unwrap();
    let names: Vec<&str> = holds.iter().map(|h| h.holder.name()).collect();
    assert_eq!(
        names,
        vec![kept.name(), "unit-mine"],
        "the dead process's hold is dropped"
    );
    assert_eq!(holds[0].layers, vec![l.clone()]);
    assert_eq!(holds[0].by(), format!("container {}", "a".repeat(64)));
    assert!(holds[0].until_released() && !holds[1].until_released());
    assert_eq!(fs::read_dir(store.holds_dir()).unwrap().count(), 2);
    // making a hold last until released replaces it
    store.hold(&img, &mine, Lifetime::UntilReleased).unwrap();
    assert!(store
        .holds_on(&id)
        .unwrap()
        .iter()
        .all(|h| h.until_released()));
    assert_eq!(store.release(&mine).unwrap(), 1);
    assert_eq!(store.release(&mine).unwrap(), 0);
    // a damaged hold still holds its image, and is released by name
    let p = store.holds_dir().join(format!("{id}.{}", kept.name()));
    fs::write(&p, b"\0garbage").unwrap();
    let holds = store.holds_on(&id).unwrap();
    assert_eq!(holds.len(), 1);
    assert!(holds[0].by().contains("is damaged"), "{}", holds[0].by());
    assert_eq!(store.release(&kept).unwrap(), 1);
    assert!(store.holds().unwrap().is_empty());
    // names that are not holds are not read
    fs::write(store.holds_dir().join("stray"), b"{}").unwrap();
    assert!(store.holds().unwrap().is_empty());
}

#[test]
fn a_first_format_store_is_migrated_once() {
    let dir = Dir::new();
    let store = Store::create(&dir.0).unwrap();
    let l = "2".repeat(64);
    fake_layer(&store, &l, false);
    let id = fake_image(&store, &[&l]);
    // back to the first format: no marker, no holds, containers' states name their images
    fs::remove_file(store.format_path()).unwrap();
    fs::remove_dir(store.holds_dir()).unwrap();
    let c = store.containers_dir();
    let kept = "b".repeat(64);
    fs::create_dir_all(c.join(&kept)).unwrap();
    fs::write(
        c.join(&kept).join("state.json"),
        format!("{{\"id\":\"{kept}\",\"image\":\"sha256:{id}\",\"auto_remove\":false}}   "),
    )
    .unwrap();
    fs::create_dir_all(c.join("not a holder")).unwrap();
    fs::write(
        c.join("not a holder/state.json"),
        format!("{{\"image\":\"sha256:{id}\"}}"),
    )
    .unwrap();
    assert_eq!(migrate::format_of(&store).unwrap(), None);
    assert!(
        Store::open_read(&dir.0)
            .unwrap()
            .holds()
            .unwrap()
            .is_empty(),
        "reading migrates nothing"
    );
    let s = Store::open(&dir.0).unwrap();
    assert_eq!(migrate::format_of(&s).unwrap(), Some(2));
    let holds = s.holds_on(&id).unwrap();
    assert_eq!(holds.len(), 1);
    assert_eq!(holds[0].holder, Holder::container(&kept).unwrap());
    assert!(holds[0].until_released());
    assert_eq!(holds[0].layers, vec![l]);
    // once migrated, states are never read again
    s.release(&holds[0].holder).unwrap();
    Store::open(&dir.0).unwrap();
    assert!(s.holds().unwrap().is_empty());
    // a newer format is refused
    fs::write(s.format_path(), b"{\"format\":99}").unwrap();
    let e = Store::open(&dir.0).unwrap_err();
    assert!(
        matches!(e, StoreError::NewerFormat { found: 99, .. }),
        "{e}"
    );
}
