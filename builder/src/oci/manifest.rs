//! Manifests and indexes (image-spec manifest.md, image-index.md; Docker's manifest v2
//! schema 2 and manifest list, which have the same shape), parsed from untrusted bytes, and
//! the choice of one platform's image in an index. No kernel interface.

use std::fmt;

use oci_spec::image::{Descriptor, ImageManifest};
use serde_json::Value;

use super::{media, sha256_hex, OciError};

/// A parsed manifest document.
pub enum Parsed {
    /// An index (manifest list): one manifest per platform.
    Index(Vec<Descriptor>),
    /// One image: its config and layers.
    Image(Box<ImageManifest>),
}

/// Parses a manifest or an index. `hint` is the media type the document came with (a
/// descriptor's or a `Content-Type`), used when the document names none itself; `what` names
/// it in errors.
pub fn parse(bytes: &[u8], hint: Option<&str>, what: &str) -> Result<Parsed, OciError> {
    let bad = |why: String| OciError::msg(format!("{what} is not a valid manifest: {why}"));
    let v: Value = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    let obj = v
        .as_object()
        .ok_or_else(|| bad("not a JSON object".into()))?;
    match obj.get("schemaVersion").and_then(Value::as_u64) {
        Some(2) => {}
        Some(1) => {
            return Err(OciError::msg(format!(
                "{what} is a Docker schema 1 manifest, which rbuild does not read (push it again with a current client)"
            )))
        }
        _ => return Err(bad("schemaVersion is not 2".into())),
    }
    let own = obj.get("mediaType").and_then(Value::as_str);
    let kind = own.or(hint).unwrap_or("");
    let is_index = match kind {
        media::OCI_INDEX | media::DOCKER_LIST => true,
        media::OCI_MANIFEST | media::DOCKER_MANIFEST => false,
        _ => obj.contains_key("manifests") && !obj.contains_key("layers"),
    };
    if is_index {
        let list = obj
            .get("manifests")
            .cloned()
            .ok_or_else(|| bad("an index without manifests".into()))?;
        let list: Vec<Descriptor> = serde_json::from_value(list).map_err(|e| bad(e.to_string()))?;
        return Ok(Parsed::Index(list));
    }
    let m: ImageManifest = serde_json::from_value(v).map_err(|e| bad(e.to_string()))?;
    sha256_hex(m.config().digest().as_ref(), &format!("{what}'s config"))?;
    for l in m.layers() {
        sha256_hex(l.digest().as_ref(), &format!("{what}'s layer"))?;
    }
    Ok(Parsed::Image(Box::new(m)))
}

/// Whether a layer's media type is one rbuild reads (tar, gzip or zstd; OCI or Docker).
/// Non-distributable ("foreign") layers, fetched from URLs outside the registry, are not.
pub fn layer_media_ok(m: &str) -> Result<(), OciError> {
    let ok = matches!(
        m,
        "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.zstd"
            | "application/vnd.docker.image.rootfs.diff.tar"
    );
    if ok {
        Ok(())
    } else if m.contains("foreign") || m.contains("nondistributable") {
        Err(OciError::msg(format!(
            "a layer of media type {m} lives outside the image (non-distributable): not supported"
        )))
    } else {
        Err(OciError::msg(format!(
            "a layer has media type {m:?}, not a tar layer: is this a container image?"
        )))
    }
}

/// An OS/architecture[/variant], as `--platform` and image indexes name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl Platform {
    /// This machine's platform in Go's GOOS/GOARCH names (what indexes use).
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "powerpc64" => ("ppc64", None),
            "loongarch64" => ("loong64", None),
            a => (a, None),
        };
        Platform {
            os: "linux".into(),
            arch: arch.into(),
            variant: variant.map(String::from),
        }
    }

    /// `OS/ARCH[/VARIANT]`, e.g. `linux/arm64/v8`.
    pub fn parse(s: &str) -> Result<Platform, OciError> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &&str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(Platform {
                os: os.to_string(),
                arch: arch.to_string(),
                variant: None,
            }),
            [os, arch, v] if ok(os) && ok(arch) && ok(v) => Ok(Platform {
                os: os.to_string(),
                arch: arch.to_string(),
                variant: Some(v.to_string()),
            }),
            _ => Err(OciError::msg(format!(
                "--platform {s:?} is not OS/ARCH[/VARIANT] (e.g. linux/amd64, linux/arm64/v8)"
            ))),
        }
    }

    /// The variant an architecture has when none is named (arm64 is v8).
    fn default_variant(arch: &str) -> Option<&'static str> {
        match arch {
            "arm64" => Some("v8"),
            _ => None,
        }
    }

    /// Whether an image of `os`/`arch`/`variant` runs here when this platform is asked for.
    pub fn accepts(&self, os: &str, arch: &str, variant: Option<&str>) -> bool {
        if self.os != os || self.arch != arch {
            return false;
        }
        let Some(want) = self.variant.as_deref() else {
            return true;
        };
        variant.or(Self::default_variant(arch)) == Some(want)
            || (variant.is_none() && self.variant == Self::host().variant)
    }
}

/// The descriptor of `want`'s image in an index's `manifests`; `what` names the index.
pub fn pick<'a>(
    manifests: &'a [Descriptor],
    want: &Platform,
    what: &str,
) -> Result<&'a Descriptor, OciError> {
    let of = |d: &Descriptor| {
        d.platform().as_ref().map(|p| {
            (
                p.os().to_string(),
                p.architecture().to_string(),
                p.variant().clone(),
            )
        })
    };
    let mut hits: Vec<&Descriptor> = manifests
        .iter()
        .filter(|d| of(d).is_some_and(|(os, arch, v)| want.accepts(&os, &arch, v.as_deref())))
        .collect();
    // with no variant asked for, an entry without one (or with the usual one) comes first
    hits.sort_by_key(|d| {
        of(d).and_then(|(_, arch, v)| {
            v.filter(|v| Some(v.as_str()) != Platform::default_variant(&arch))
        })
    });
    if let Some(d) = hits.first() {
        return Ok(d);
    }
    let mut have: Vec<String> = manifests
        .iter()
        .filter_map(of)
        .filter(|(os, _, _)| os != "unknown")
        .map(|(os, arch, v)| match v {
            Some(v) => format!("{os}/{arch}/{v}"),
            None => format!("{os}/{arch}"),
        })
        .collect();
    have.dedup();
    Err(OciError::msg(format!(
        "{what} has no image for {want} (it has: {}); choose one with --platform",
        if have.is_empty() {
            "none with a platform".to_string()
        } else {
            have.join(", ")
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(platforms: &[&str]) -> Vec<Descriptor> {
        let list: Vec<Value> = platforms
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let parts: Vec<&str> = p.split('/').collect();
                let mut plat = serde_json::json!({"os": parts[0], "architecture": parts[1]});
                if let Some(v) = parts.get(2) {
                    plat["variant"] = Value::from(*v);
                }
                serde_json::json!({
                    "mediaType": media::OCI_MANIFEST,
                    "digest": format!("sha256:{}", format!("{i:x}").repeat(64).get(..64).unwrap()),
                    "size": 1,
                    "platform": plat,
                })
            })
            .collect();
        serde_json::from_value(Value::from(list)).unwrap()
    }

    #[test]
    fn platforms_are_picked_from_an_index() {
        let idx = index(&[
            "linux/arm/v7",
            "linux/arm64/v8",
            "linux/amd64",
            "unknown/unknown",
        ]);
        let amd = Platform::parse("linux/amd64").unwrap();
        assert_eq!(pick(&idx, &amd, "x").unwrap().size(), 1);
        assert!(pick(&idx, &amd, "x")
            .unwrap()
            .digest()
            .to_string()
            .contains("2222"));
        let arm64 = Platform::parse("linux/arm64").unwrap();
        assert!(pick(&idx, &arm64, "x")
            .unwrap()
            .digest()
            .to_string()
            .contains("1111"));
        let e = pick(&idx, &Platform::parse("linux/s390x").unwrap(), "the index")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("linux/arm/v7, linux/arm64/v8, linux/amd64"),
            "{e}"
        );
        assert!(!e.contains("unknown"), "{e}");
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("Linux/AMD64").is_err());
    }

    #[test]
    fn schema1_and_junk_are_refused() {
        assert!(parse(br#"{"schemaVersion":1}"#, None, "m").is_err());
        assert!(parse(b"[]", None, "m").is_err());
        let m = parse(
            br#"{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:../x","size":1},"layers":[]}"#,
            None,
            "m",
        );
        assert!(m.is_err());
    }
}
