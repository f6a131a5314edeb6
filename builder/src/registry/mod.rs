//! Registries, as `docker pull` users expect: `pull`, `push`, `login` and `logout` over the OCI
//! distribution API (distribution-spec), with the credentials files podman and Docker use.
//! rbuild's only network code besides URL sources; rrun links none of it.
//!
//! - [`reference`]: references, `[REGISTRY/]REPO[:TAG]` or `REPO@sha256:…`;
//! - [`auth`]: `auth.json` / `~/.docker/config.json`;
//! - [`client`]: the HTTP side (TLS, authentication, manifests, blobs, uploads);
//! - [`pull`] and [`push`]: images from and to a registry.

pub mod auth;
pub mod client;
pub mod pull;
pub mod push;
pub mod reference;

use std::path::PathBuf;

pub use client::ConnOptions;

use crate::oci::OciError;
use auth::Creds;
use client::{host_key, Client};

/// Checks `creds` against `registry` and files them in the auth file; returns that file.
pub fn login(registry: &str, creds: Creds, o: &ConnOptions) -> Result<PathBuf, OciError> {
    let key = registry_key(registry)?;
    let host = if key == reference::DOCKER_HUB {
        "registry-1.docker.io"
    } else {
        key.as_str()
    };
    let o = ConnOptions {
        creds: Some(creds.clone()),
        ..o.clone()
    };
    let mut c = Client::connect(host, "", false, &o)?;
    c.check_login()?;
    let file = auth::write_path(o.authfile.as_deref());
    auth::save(&file, host_key(host), &creds)?;
    Ok(file)
}

/// Removes the credentials of `registry` (all of them when None); returns the file changed.
pub fn logout(
    registry: Option<&str>,
    authfile: Option<&std::path::Path>,
) -> Result<PathBuf, OciError> {
    let file = auth::write_path(authfile);
    let key = registry.map(registry_key).transpose()?;
    let n = auth::remove(&file, key.as_deref())?;
    if n == 0 {
        if let Some(k) = key {
            return Err(OciError::msg(format!(
                "not logged in to {k} (in {})",
                file.display()
            )));
        }
    }
    Ok(file)
}

/// A registry as `login` names it: `HOST[:PORT]`, `docker.io` for Docker Hub's aliases.
fn registry_key(r: &str) -> Result<String, OciError> {
    let r = r
        .strip_prefix("https://")
        .or_else(|| r.strip_prefix("http://"))
        .unwrap_or(r)
        .trim_end_matches('/');
    let ok = !r.is_empty()
        && !r.contains('/')
        && r.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    if !ok {
        return Err(OciError::msg(format!(
            "{r:?} is not a registry HOST[:PORT]"
        )));
    }
    Ok(match r {
        "index.docker.io" | "registry-1.docker.io" => reference::DOCKER_HUB.to_string(),
        r => r.to_string(),
    })
}
