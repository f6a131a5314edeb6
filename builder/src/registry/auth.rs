//! Registry credentials in the files podman, skopeo and Docker use (containers-auth.json(5)):
//! `{"auths": {"REGISTRY[/REPO...]": {"auth": base64("USER:PASSWORD")}}}`. Read from
//! `--authfile` / `$REGISTRY_AUTH_FILE` alone when given, else from
//! `$XDG_RUNTIME_DIR/containers/auth.json` (`/run/containers/<uid>/auth.json` without it),
//! `$XDG_CONFIG_HOME/containers/auth.json` and `$DOCKER_CONFIG/config.json`
//! (`~/.docker/config.json`), first match wins; the most specific key wins in a file.
//! `login` and `logout` write the first of them. Kernel interfaces: files, rename(2).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::oci::OciError;

/// Largest credentials file read.
const MAX_AUTH_FILE: u64 = 1 << 20;

#[derive(Clone)]
pub struct Creds {
    pub user: String,
    pub pass: String,
}

impl std::fmt::Debug for Creds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Creds({}, ***)", self.user)
    }
}

impl Creds {
    /// The value of an `Authorization: Basic` header.
    pub fn basic(&self) -> String {
        let raw = format!("{}:{}", self.user, self.pass);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

fn env_path(k: &str) -> Option<PathBuf> {
    std::env::var_os(k)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

fn home() -> Option<PathBuf> {
    env_path("HOME")
}

/// The file `login` writes and `logout` changes.
pub fn write_path(authfile: Option<&Path>) -> PathBuf {
    if let Some(p) = authfile
        .map(Path::to_path_buf)
        .or_else(|| env_path("REGISTRY_AUTH_FILE"))
    {
        return p;
    }
    match env_path("XDG_RUNTIME_DIR") {
        Some(d) => d.join("containers/auth.json"),
        None => PathBuf::from(format!(
            "/run/containers/{}/auth.json",
            rustix::process::geteuid().as_raw()
        )),
    }
}

/// The files credentials are read from, in order.
pub fn read_paths(authfile: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = authfile
        .map(Path::to_path_buf)
        .or_else(|| env_path("REGISTRY_AUTH_FILE"))
    {
        return vec![p];
    }
    let mut v = vec![write_path(None)];
    if let Some(c) = env_path("XDG_CONFIG_HOME").or_else(|| home().map(|h| h.join(".config"))) {
        v.push(c.join("containers/auth.json"));
    }
    if let Some(d) = env_path("DOCKER_CONFIG").or_else(|| home().map(|h| h.join(".docker"))) {
        v.push(d.join("config.json"));
    }
    v
}

/// A key of `auths` as a registry/repo path: Docker writes `https://index.docker.io/v1/`.
fn normalize_key(k: &str) -> String {
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    let k = k.strip_suffix('/').unwrap_or(k);
    let k = k
        .strip_suffix("/v1")
        .or_else(|| k.strip_suffix("/v2"))
        .unwrap_or(k);
    match k {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        _ => k.to_string(),
    }
}

fn read_file(p: &Path) -> Option<Value> {
    let f = fs::File::open(p).ok()?;
    let bytes = crate::oci::read_limited(f, MAX_AUTH_FILE, &p.display().to_string()).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn decode(entry: &Value) -> Option<Creds> {
    let auth = entry.get("auth")?.as_str()?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (user, pass) = s.split_once(':')?;
    Some(Creds {
        user: user.to_string(),
        pass: pass.to_string(),
    })
}

/// The credentials for `repo` on `registry`: the longest matching key of the first file that
/// has one (`registry/ns/repo`, then `registry/ns`, then `registry`).
pub fn lookup(registry: &str, repo: &str, authfile: Option<&Path>) -> Option<Creds> {
    let full = format!("{registry}/{repo}");
    for p in read_paths(authfile) {
        let Some(v) = read_file(&p) else { continue };
        let Some(auths) = v.get("auths").and_then(Value::as_object) else {
            continue;
        };
        let best = auths
            .iter()
            .map(|(k, e)| (normalize_key(k), e))
            .filter(|(k, _)| *k == full || full.starts_with(&format!("{k}/")))
            .max_by_key(|(k, _)| k.len());
        if let Some(c) = best.and_then(|(_, e)| decode(e)) {
            tracing::debug!("credentials for {full} from {}", p.display());
            return Some(c);
        }
    }
    None
}

/// Writes `v` to `p` (mode 0600, its folder 0700 when made) through a temporary file.
fn write_json(p: &Path, v: &Value) -> Result<(), OciError> {
    if let Some(dir) = p.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(OciError::io(dir))?;
    }
    let tmp = p.with_extension(format!("tmp-{}", store::files::nonce()));
    let mut bytes = serde_json::to_vec_pretty(v).unwrap_or_default();
    bytes.push(b'\n');
    let res = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, p)
    })();
    res.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        OciError::Io {
            path: p.to_path_buf(),
            source: e,
        }
    })
}

/// The file's JSON, or an empty one when it does not exist; anything else unreadable is an
/// error (never overwritten).
fn load_for_change(p: &Path) -> Result<Value, OciError> {
    if !p.exists() {
        return Ok(json!({"auths": {}}));
    }
    let v = read_file(p).ok_or_else(|| {
        OciError::msg(format!(
            "{}: not a JSON credentials file; fix or remove it",
            p.display()
        ))
    })?;
    if !v.is_object() {
        return Err(OciError::msg(format!("{}: not a JSON object", p.display())));
    }
    Ok(v)
}

/// Stores `creds` for `key` (a registry, or registry/repo) in `file`.
pub fn save(file: &Path, key: &str, creds: &Creds) -> Result<(), OciError> {
    let mut v = load_for_change(file)?;
    if !v.get("auths").is_some_and(Value::is_object) {
        v["auths"] = json!({});
    }
    let raw = format!("{}:{}", creds.user, creds.pass);
    v["auths"][key] = json!({"auth": base64::engine::general_purpose::STANDARD.encode(raw)});
    write_json(file, &v)
}

/// Removes the entries of `key` (or every entry with `all`) from `file`; returns how many.
pub fn remove(file: &Path, key: Option<&str>) -> Result<usize, OciError> {
    if !file.exists() {
        return Ok(0);
    }
    let mut v = load_for_change(file)?;
    let Some(auths) = v.get_mut("auths").and_then(Value::as_object_mut) else {
        return Ok(0);
    };
    let before = auths.len();
    match key {
        Some(k) => auths.retain(|name, _| normalize_key(name) != normalize_key(k)),
        None => auths.clear(),
    }
    let n = before - auths.len();
    if n > 0 {
        write_json(file, &v)?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_entries_read_as_docker_writes_them() {
        assert_eq!(normalize_key("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize_key("127.0.0.1:5000"), "127.0.0.1:5000");
        let c = decode(&json!({"auth": "dTpwOnc="})).unwrap();
        assert_eq!((c.user.as_str(), c.pass.as_str()), ("u", "p:w"));
        assert!(decode(&json!({"auth": "!!"})).is_none());
        assert_eq!(c.basic(), "Basic dTpwOnc=");
    }
}
