//! The resolved description of a container: what rrun decided from the command line and the
//! image config (command, env, user, mounts, limits, id maps). Stored in state.json so `exec`
//! follows the same rules. No kernel interface.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{user, Result};
use crate::idmap::IdMaps;
use crate::image::Image;

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A `-v HOSTDIR:DIR[:ro]` volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub source: PathBuf,
    pub target: String,
    pub readonly: bool,
}

impl Volume {
    /// Parses `HOSTDIR:DIR[:ro|:rw]`; HOSTDIR must exist and both must be absolute.
    pub fn parse(s: &str) -> Result<Volume> {
        let parts: Vec<&str> = s.split(':').collect();
        let (src, dst, ro) = match parts.as_slice() {
            [a, b] => (*a, *b, false),
            [a, b, "ro"] => (*a, *b, true),
            [a, b, "rw"] => (*a, *b, false),
            _ => return Err(user(format!("bad volume {s:?}: use HOSTDIR:DIR or HOSTDIR:DIR:ro"))),
        };
        if !src.starts_with('/') || !dst.starts_with('/') {
            return Err(user(format!("bad volume {s:?}: both paths must be absolute")));
        }
        let source = Path::new(src);
        if !source.exists() {
            return Err(user(format!("volume source {src} does not exist: create it first")));
        }
        check_container_path(dst)?;
        Ok(Volume { source: source.to_path_buf(), target: dst.to_string(), readonly: ro })
    }
}

/// Refuses container paths with `..` or NUL, which have no meaning for a mount point.
pub fn check_container_path(p: &str) -> Result<()> {
    if !p.starts_with('/') || p.split('/').any(|c| c == "..") || p.contains('\0') {
        return Err(user(format!("bad path {p:?} inside the container: use an absolute path without '..'")));
    }
    Ok(())
}

/// The process rinit starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessConfig {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    /// As given (`UID[:GID]` or a name); resolved against the container's /etc/passwd.
    pub user: String,
    pub tty: bool,
    pub stdin: bool,
}

/// The cgroup limits asked for.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LimitsConfig {
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    pub cpuset_cpus: Option<String>,
    pub pids: Option<u64>,
}

impl LimitsConfig {
    pub fn is_empty(&self) -> bool {
        self.memory.is_none() && self.cpus.is_none() && self.cpuset_cpus.is_none() && self.pids.is_none()
    }
}

/// Network mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetMode {
    None,
    Host,
    Bridge,
    Network(String),
    Container(String),
}

impl NetMode {
    pub fn parse(s: &str) -> Result<NetMode> {
        Ok(match s {
            "none" => NetMode::None,
            "host" => NetMode::Host,
            "bridge" | "" => NetMode::Bridge,
            _ if s.starts_with("container:") => NetMode::Container(s["container:".len()..].to_string()),
            _ if s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) => NetMode::Network(s.to_string()),
            _ => return Err(user(format!("bad --net {s:?}: use none, host, bridge, NETWORK or container:NAME"))),
        })
    }

    pub fn name(&self) -> String {
        match self {
            NetMode::None => "none".into(),
            NetMode::Host => "host".into(),
            NetMode::Bridge => "bridge".into(),
            NetMode::Network(n) => n.clone(),
            NetMode::Container(n) => format!("container:{n}"),
        }
    }
}

/// Everything needed to create (and later exec into) a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerConfig {
    pub hostname: String,
    pub net: NetMode,
    pub userns: String,
    pub idmaps: IdMaps,
    /// rrun runs unprivileged: the child builds the overlay (userxattr) and binds volumes itself.
    #[serde(default)]
    pub rootless: bool,
    pub read_only: bool,
    pub volumes: Vec<Volume>,
    pub tmpfs: Vec<String>,
    pub limits: LimitsConfig,
    pub process: ProcessConfig,
    /// The image's layer folders, bottom first.
    pub lowerdirs: Vec<PathBuf>,
}

/// The command: explicit COMMAND replaces cmd (entrypoint kept, as Docker does).
pub fn command_line(img: &Image, command: &[String]) -> Result<Vec<String>> {
    let mut args = img.entrypoint.clone();
    if command.is_empty() {
        args.extend(img.cmd.iter().cloned());
    } else {
        args.extend(command.iter().cloned());
    }
    if args.is_empty() {
        return Err(user("no command given and the image has no entrypoint or cmd: add one after --image IMAGE --"));
    }
    Ok(args)
}

/// The environment: defaults, then the image's, then each `-e` (K alone copies rrun's value).
pub fn environment(img_env: &[String], cli_env: &[String], hostname: &str, tty: bool) -> Result<Vec<String>> {
    let mut env: Vec<String> = vec![DEFAULT_PATH.to_string(), format!("HOSTNAME={hostname}")];
    if tty {
        env.push("TERM=xterm".to_string());
    }
    let mut set = |kv: String| {
        let k = kv.split('=').next().unwrap_or("").to_string();
        env.retain(|e| e.split('=').next() != Some(k.as_str()));
        env.push(kv);
    };
    for e in img_env {
        set(e.clone());
    }
    for e in cli_env {
        match e.split_once('=') {
            Some((k, _)) if !k.is_empty() => set(e.clone()),
            None if !e.is_empty() => {
                if let Ok(v) = std::env::var(e) {
                    set(format!("{e}={v}"));
                }
            }
            _ => return Err(user(format!("bad -e {e:?}: use KEY=VALUE"))),
        }
    }
    Ok(env)
}

/// A user spec as `(uid, gid)` when fully numeric; names resolve inside the container.
pub fn numeric_user(u: &str) -> Option<(u32, Option<u32>)> {
    match u.split_once(':') {
        Some((a, b)) => Some((a.parse().ok()?, Some(b.parse().ok()?))),
        None => Some((u.parse().ok()?, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_env_overrides_image_env_and_defaults() {
        let env = environment(&["PATH=/x".into(), "A=1".into()], &["A=2".into(), "B=3".into()], "h", false).unwrap();
        assert!(env.contains(&"PATH=/x".to_string()));
        assert!(env.contains(&"A=2".to_string()) && !env.contains(&"A=1".to_string()));
        assert!(env.contains(&"B=3".to_string()));
        assert!(env.contains(&"HOSTNAME=h".to_string()));
        assert!(environment(&[], &["=x".into()], "h", false).is_err());
    }

    #[test]
    fn net_modes_parse() {
        assert_eq!(NetMode::parse("none").unwrap(), NetMode::None);
        assert_eq!(NetMode::parse("container:web").unwrap(), NetMode::Container("web".into()));
        assert_eq!(NetMode::parse("mynet").unwrap(), NetMode::Network("mynet".into()));
        assert!(NetMode::parse("a b").is_err());
    }

    #[test]
    fn container_paths_refuse_dotdot() {
        assert!(check_container_path("/mnt/x").is_ok());
        assert!(check_container_path("/mnt/../etc").is_err());
        assert!(check_container_path("relative").is_err());
    }

    #[test]
    fn numeric_users_parse() {
        assert_eq!(numeric_user("1000:1000"), Some((1000, Some(1000))));
        assert_eq!(numeric_user("0"), Some((0, None)));
        assert_eq!(numeric_user("nobody"), None);
    }
}
