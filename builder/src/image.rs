//! Composing images: an OCI image config (canonical JSON: sorted keys, no insignificant
//! whitespace, no wall-clock time) whose sha256 is the ImageID, written into the store
//! (`Store::put_image_config`). No kernel interface of its own.

use oci_spec::image::{
    Arch, ConfigBuilder, ImageConfiguration, ImageConfigurationBuilder, Os, RootFsBuilder,
};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use store::{Store, StoreError, DEFAULT_PATH};

#[derive(Debug, Clone, Default)]
pub struct ImageOptions {
    pub cmd: Vec<String>,
    pub entrypoint: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    /// RFC 3339 creation time (from SOURCE_DATE_EPOCH only; never the clock)
    pub created: Option<String>,
    /// OCI architecture name; default amd64
    pub arch: Option<String>,
    /// `config.Labels` (none when empty)
    pub labels: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("--env {0:?} is not KEY=VALUE")]
    BadEnv(String),
    #[error("--user {0:?} is not UID[:GID] or NAME[:GROUP]")]
    BadUser(String),
    #[error("--workdir {0:?} must be an absolute path")]
    BadWorkdir(String),
    #[error("an image needs at least one layer")]
    NoLayers,
    #[error("image config: {0}")]
    Config(String),
}

/// Serialises JSON canonically: object keys sorted bytewise, no whitespace.
pub fn canonical_json(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(serde_json::to_string(k).unwrap_or_default().as_bytes());
                out.push(b':');
                write_canonical(&m[*k], out);
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(x, out);
            }
            out.push(b']');
        }
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

/// Builds the image config for `layers` (hex DiffIDs, bottom first).
pub fn build_config(layers: &[String], o: &ImageOptions) -> Result<ImageConfiguration, ImageError> {
    if layers.is_empty() {
        return Err(ImageError::NoLayers);
    }
    for e in &o.env {
        match e.split_once('=') {
            Some((k, _)) if !k.is_empty() => {}
            _ => return Err(ImageError::BadEnv(e.clone())),
        }
    }
    if let Some(u) = &o.user {
        let ok = !u.is_empty()
            && u.split(':').count() <= 2
            && u.split(':').all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            });
        if !ok {
            return Err(ImageError::BadUser(u.clone()));
        }
    }
    if let Some(w) = &o.workdir {
        if !w.starts_with('/') {
            return Err(ImageError::BadWorkdir(w.clone()));
        }
    }
    let cfg_err = |e: oci_spec::OciSpecError| ImageError::Config(e.to_string());
    let mut env = o.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    let mut c = ConfigBuilder::default().env(env);
    if !o.cmd.is_empty() {
        c = c.cmd(o.cmd.clone());
    }
    if !o.entrypoint.is_empty() {
        c = c.entrypoint(o.entrypoint.clone());
    }
    if let Some(w) = &o.workdir {
        c = c.working_dir(w.clone());
    }
    if let Some(u) = &o.user {
        c = c.user(u.clone());
    }
    if !o.labels.is_empty() {
        c = c.labels(
            o.labels
                .clone()
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        );
    }
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(
            layers
                .iter()
                .map(|h| format!("sha256:{h}"))
                .collect::<Vec<_>>(),
        )
        .build()
        .map_err(cfg_err)?;
    let arch = match o.arch.as_deref() {
        None | Some("amd64") => Arch::Amd64,
        Some(a) => Arch::from(a),
    };
    let mut b = ImageConfigurationBuilder::default()
        .architecture(arch)
        .os(Os::Linux)
        .config(c.build().map_err(cfg_err)?)
        .rootfs(rootfs);
    if let Some(t) = &o.created {
        b = b.created(t.clone());
    }
    b.build().map_err(cfg_err)
}

/// The canonical bytes of a config and its ImageID hex.
pub fn config_bytes(cfg: &ImageConfiguration) -> Result<(Vec<u8>, String), ImageError> {
    let v = serde_json::to_value(cfg).map_err(|e| ImageError::Config(e.to_string()))?;
    let bytes = canonical_json(&v);
    let id = store::digest::hex(&Sha256::digest(&bytes));
    Ok((bytes, id))
}

/// Creates (or finds) the image of `layer_refs` with `o`; tags it with `tag` if given.
/// Returns the ImageID hex.
/// Refused when the layers were extracted in different modes (root and rootless). Holds the
/// store lock shared, so no `layer rm` or `gc` removes a layer before the image names it.
pub fn create(
    store: &Store,
    layer_refs: &[String],
    o: &ImageOptions,
    tags: &[String],
) -> Result<String, ImageError> {
    let _lock = store.lock_shared()?;
    let mut layers = Vec::new();
    for r in layer_refs {
        layers.push(store.resolve_layer_hex(r)?);
    }
    store.common_mode("the new image", &layers)?;
    // validate tags before anything is written
    for t in tags {
        store::normalize_tag(t)?;
    }
    let cfg = build_config(&layers, o)?;
    let (bytes, id) = config_bytes(&cfg)?;
    store.put_image_config(&bytes, &id)?;
    for t in tags {
        store.set_tag(t, &id)?;
    }
    Ok(id)
}

/// RFC 3339 UTC time of a Unix timestamp (for SOURCE_DATE_EPOCH), e.g. 1970-01-01T00:00:00Z.
pub fn rfc3339(secs: i64) -> Option<String> {
    if secs < 0 {
        return None;
    }
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // civil-from-days (proleptic Gregorian)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let mut y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    if m <= 2 {
        y += 1;
    }
    Some(format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_without_spaces() {
        let v: Value =
            serde_json::from_str(r#"{"b": [1, {"z": 1, "a": "x"}], "a": null}"#).unwrap();
        assert_eq!(canonical_json(&v), br#"{"a":null,"b":[1,{"a":"x","z":1}]}"#);
    }

    #[test]
    fn same_inputs_give_the_same_image_id() {
        let l = vec!["ab".repeat(32)];
        let o = ImageOptions {
            cmd: vec!["/bin/sh".into()],
            ..Default::default()
        };
        let a = config_bytes(&build_config(&l, &o).unwrap()).unwrap();
        let b = config_bytes(&build_config(&l, &o).unwrap()).unwrap();
        assert_eq!(a, b);
        let s = String::from_utf8(a.0).unwrap();
        assert!(s.contains(r#""diff_ids":["sha256:abab"#), "{s}");
        assert!(!s.contains("created"), "{s}");
    }

    #[test]
    fn rfc3339_of_known_times() {
        assert_eq!(rfc3339(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000).unwrap(), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400).unwrap(), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn images_mixing_root_and_rootless_layers_are_not_created() {
        let dir = std::env::temp_dir().join(format!(
            "rbuild-unit-{}-{}",
            std::process::id(),
            store::files::nonce()
        ));
        let store = Store::create(&dir).unwrap();
        let (r, u) = ("d".repeat(64), "e".repeat(64));
        for (hex, rootless) in [(&r, false), (&u, true)] {
            std::fs::create_dir_all(store.layer_dir(hex).join("rootfs")).unwrap();
            let meta = store::LayerMeta {
                diff_id: format!("sha256:{hex}"),
                size: 0,
                source: "unit".into(),
                blob_sha256: hex.to_string(),
                blob_sha512: None,
                compression: "tar".into(),
                tree_digest: String::new(),
                rootless,
                id_map: None,
                tar_split: None,
                tar_split_lost: None,
            };
            std::fs::write(
                store.layer_dir(hex).join("layer.json"),
                serde_json::to_vec(&meta).unwrap(),
            )
            .unwrap();
        }
        let e = create(&store, &[r, u], &ImageOptions::default(), &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("the new image mixes layers extracted as root (sha256:dddd")
                && e.contains("(sha256:eeee"),
            "{e}"
        );
        assert!(store.image_ids().unwrap().is_empty(), "nothing was written");
        store::remove_tree(&dir).unwrap();
    }

    #[test]
    fn bad_options_are_refused() {
        let l = vec!["ab".repeat(32)];
        let env = ImageOptions {
            env: vec!["NOEQUALS".into()],
            ..Default::default()
        };
        assert!(matches!(build_config(&l, &env), Err(ImageError::BadEnv(_))));
        let wd = ImageOptions {
            workdir: Some("rel".into()),
            ..Default::default()
        };
        assert!(matches!(
            build_config(&l, &wd),
            Err(ImageError::BadWorkdir(_))
        ));
        assert!(matches!(
            build_config(&[], &ImageOptions::default()),
            Err(ImageError::NoLayers)
        ));
    }
}
