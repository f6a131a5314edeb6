//! The resolved description of a container: what rrun decided from the command line and the
//! image config (command, env, user, mounts, limits, id maps). Stored in state.json so `exec`
//! follows the same rules. Checks of user input that need no kernel (hostnames, mount targets)
//! live here too. No kernel interface but open(2) of a volume's source.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{user, Result};
use crate::idmap::IdMaps;
use crate::image::Image;

/// The `PATH=...` entry a container gets when neither its image nor `-e` sets PATH (the image
/// config's default, Docker's).
pub use store::DEFAULT_PATH;

use crate::rlimits::Ulimit;
use crate::security::Security;

/// A command-line argument or environment entry: any bytes but NUL, as execve(2) takes them.
/// Stored as a JSON string when it is UTF-8 (always so far), else as an array of byte values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsArg(pub OsString);

impl OsArg {
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
    /// For messages: invalid UTF-8 shown as U+FFFD.
    pub fn to_string_lossy(&self) -> std::borrow::Cow<'_, str> {
        self.0.to_string_lossy()
    }
    /// The `KEY` of a `KEY=VALUE` entry (all of it without '=').
    pub fn key(&self) -> &[u8] {
        let b = self.as_bytes();
        b.iter().position(|&c| c == b'=').map_or(b, |i| &b[..i])
    }
}

impl From<&str> for OsArg {
    fn from(s: &str) -> OsArg {
        OsArg(s.into())
    }
}
impl From<String> for OsArg {
    fn from(s: String) -> OsArg {
        OsArg(s.into())
    }
}
impl From<OsString> for OsArg {
    fn from(s: OsString) -> OsArg {
        OsArg(s)
    }
}

impl Serialize for OsArg {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self.0.to_str() {
            Some(text) => s.serialize_str(text),
            None => s.collect_seq(self.as_bytes()),
        }
    }
}

impl<'de> Deserialize<'de> for OsArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<OsArg, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Bytes(Vec<u8>),
        }
        Ok(match Repr::deserialize(d)? {
            Repr::Text(t) => OsArg(t.into()),
            Repr::Bytes(b) => OsArg(OsString::from_vec(b)),
        })
    }
}

/// The command as one line for `rrun ps` (lossy for non-UTF-8 bytes).
pub fn display_command(args: &[OsArg]) -> String {
    args.iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A `-v HOSTDIR:DIR[:ro]` volume.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Volume {
    pub source: PathBuf,
    pub target: String,
    pub readonly: bool,
    /// The source opened once (O_PATH) when the command line was read: the mount is cloned
    /// from this descriptor, so the host path is resolved exactly once (a symbolic link in
    /// it is followed then, as the user asked). None in a state read back from disk.
    #[serde(skip)]
    pub source_fd: Option<Arc<OwnedFd>>,
}

impl PartialEq for Volume {
    fn eq(&self, o: &Volume) -> bool {
        (&self.source, &self.target, self.readonly) == (&o.source, &o.target, o.readonly)
    }
}
impl Eq for Volume {}

impl Volume {
    /// Parses `HOSTDIR:DIR[:ro|:rw]` (HOSTDIR may be a file too); the source must exist and
    /// both paths must be absolute. The source is opened here, once.
    pub fn parse(s: &str) -> Result<Volume> {
        let parts: Vec<&str> = s.split(':').collect();
        let (src, dst, ro) = match parts.as_slice() {
            [a, b] => (*a, *b, false),
            [a, b, "ro"] => (*a, *b, true),
            [a, b, "rw"] => (*a, *b, false),
            _ => {
                return Err(user(format!(
                    "bad volume {s:?}: use HOSTDIR:DIR or HOSTDIR:DIR:ro"
                )))
            }
        };
        if !src.starts_with('/') || !dst.starts_with('/') {
            return Err(user(format!(
                "bad volume {s:?}: both paths must be absolute"
            )));
        }
        let source = Path::new(src);
        check_container_path(dst)?;
        check_mount_target(dst, &format!("volume {s}"))?;
        let fd = rustix::fs::open(
            source,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| match e {
            rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR => user(format!(
                "volume source {src} does not exist: create it first"
            )),
            e => user(format!(
                "volume source {src} cannot be opened: {}",
                std::io::Error::from(e)
            )),
        })?;
        Ok(Volume {
            source: source.to_path_buf(),
            target: dst.to_string(),
            readonly: ro,
            source_fd: Some(Arc::new(fd)),
        })
    }
}

/// Files under /proc that may be mount targets (what lxcfs provides; runc's list): every other
/// path in /proc is the container's own proc, whose read-only and masked paths must stay.
pub const PROC_TARGETS_ALLOWED: [&str; 10] = [
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

/// `path` without empty and "." components, as "/a/b" ("/" for the root).
pub fn normalize(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

/// Refuses mount targets that cannot work (`what` names the option for the error line):
/// `/` (a mount over the root is never seen: the container's processes start below it),
/// `/proc` and paths in it but [`PROC_TARGETS_ALLOWED`] (the container's own proc, with its
/// read-only and masked paths, must stay visible; rinit needs it), and `/dev` (it holds the
/// device nodes rrun binds from the host, which the container cannot make itself).
/// `/sys` stays allowed: rinit keeps whatever is mounted there, so a host folder (or the
/// host's /sys, as Docker allows) simply replaces the container's read-only sysfs.
/// Symbolic links in the image are checked again once resolved (rootfs.rs).
pub fn check_mount_target(path: &str, what: &str) -> Result<()> {
    let p = normalize(path);
    if p == "/" {
        return Err(user(format!(
            "{what}: / cannot be a mount target: choose a directory below it (or --read-only)"
        )));
    }
    if p == "/dev" {
        return Err(user(format!("{what}: /dev cannot be a mount target: it holds the container's device nodes; mount below it")));
    }
    if (p == "/proc" || p.starts_with("/proc/")) && !PROC_TARGETS_ALLOWED.contains(&p.as_str()) {
        return Err(user(format!(
            "{what}: {p} cannot be a mount target: /proc is the container's own (only {} may be replaced)",
            PROC_TARGETS_ALLOWED.join(", ")
        )));
    }
    Ok(())
}

/// Checks a `--hostname` like Podman (RFC 1123 plus '_'): labels of letters, digits, '-' (not
/// at either end) and '_', at most 63 characters each, joined by '.'; at most 64 characters in
/// all (the kernel's limit for a UTS hostname, stricter than RFC 1123's 253). Nothing else
/// (no space, control character or '#') can reach /etc/hosts or /etc/hostname.
pub fn check_hostname(h: &str) -> Result<()> {
    let bad = |why: &str| user(format!("bad --hostname {h:?}: {why}"));
    if h.is_empty() || h.len() > 64 {
        return Err(bad("use 1 to 64 characters"));
    }
    for label in h.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(bad("each dot-separated part needs 1 to 63 characters"));
        }
        if !label
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        {
            return Err(bad("use only letters, digits, '-', '_' and '.'"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad("a part cannot start or end with '-'"));
        }
    }
    Ok(())
}

/// Refuses container paths with `..` or NUL, which have no meaning for a mount point.
pub fn check_container_path(p: &str) -> Result<()> {
    if !p.starts_with('/') || p.split('/').any(|c| c == "..") || p.contains('\0') {
        return Err(user(format!(
            "bad path {p:?} inside the container: use an absolute path without '..'"
        )));
    }
    Ok(())
}

/// The process rinit starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessConfig {
    pub args: Vec<OsArg>,
    pub env: Vec<OsArg>,
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
        self.memory.is_none()
            && self.cpus.is_none()
            && self.cpuset_cpus.is_none()
            && self.pids.is_none()
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
    /// User-mode networking by pasta (Debian's passt package): the container gets the host's
    /// addresses and routes, rootless (see net/pasta.rs).
    Pasta,
    /// User-mode networking by slirp4netns: 10.0.2.100/24 behind a NAT, rootless (see
    /// net/slirp.rs).
    Slirp4netns,
}

impl NetMode {
    pub fn parse(s: &str) -> Result<NetMode> {
        Ok(match s {
            "none" => NetMode::None,
            "host" => NetMode::Host,
            "bridge" | "" => NetMode::Bridge,
            "pasta" => NetMode::Pasta,
            "slirp4netns" => NetMode::Slirp4netns,
            _ if s.starts_with("container:") => {
                NetMode::Container(s["container:".len()..].to_string())
            }
            _ if s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
            {
                NetMode::Network(s.to_string())
            }
            _ => {
                return Err(user(format!(
                    "bad --net {s:?}: use none, host, bridge, pasta, slirp4netns, NETWORK or container:NAME"
                )))
            }
        })
    }

    pub fn name(&self) -> String {
        match self {
            NetMode::None => "none".into(),
            NetMode::Host => "host".into(),
            NetMode::Bridge => "bridge".into(),
            NetMode::Network(n) => n.clone(),
            NetMode::Container(n) => format!("container:{n}"),
            NetMode::Pasta => "pasta".into(),
            NetMode::Slirp4netns => "slirp4netns".into(),
        }
    }

    /// True for the modes whose network a user-mode helper process (pasta, slirp4netns) runs.
    pub fn user_mode(&self) -> bool {
        matches!(self, NetMode::Pasta | NetMode::Slirp4netns)
    }
}

/// Everything needed to create (and later exec into) a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerConfig {
    pub hostname: String,
    pub net: NetMode,
    /// `-p`, `--network-alias`, `--dns`, `--add-host` (see net/options.rs).
    #[serde(default)]
    pub net_opts: crate::netopts::NetOptions,
    pub userns: String,
    pub idmaps: IdMaps,
    /// rrun runs unprivileged: the child builds the overlay (userxattr) and binds volumes itself.
    #[serde(default)]
    pub rootless: bool,
    pub read_only: bool,
    pub volumes: Vec<Volume>,
    pub tmpfs: Vec<crate::tmpfs::Tmpfs>,
    pub limits: LimitsConfig,
    pub process: ProcessConfig,
    /// Capabilities, no_new_privs, seccomp (also applied by `exec`).
    #[serde(default)]
    pub security: Security,
    /// `--ulimit`s, set on the container's first process.
    #[serde(default)]
    pub ulimits: Vec<Ulimit>,
    /// The image's layer folders, bottom first.
    pub lowerdirs: Vec<PathBuf>,
}

/// The command: explicit COMMAND replaces cmd (entrypoint kept, as Docker does).
pub fn command_line(img: &Image, command: &[OsString]) -> Result<Vec<OsArg>> {
    let mut args: Vec<OsArg> = img
        .entrypoint
        .iter()
        .map(|a| OsArg::from(a.as_str()))
        .collect();
    if command.is_empty() {
        args.extend(img.cmd.iter().map(|a| OsArg::from(a.as_str())));
    } else {
        args.extend(command.iter().cloned().map(OsArg));
    }
    if args.is_empty() {
        return Err(user("no command given and the image has no entrypoint or cmd: add one after --image IMAGE --"));
    }
    Ok(args)
}

/// The environment: defaults, then the image's, then each `-e` (K alone copies rrun's value).
pub fn environment(
    img_env: &[String],
    cli_env: &[OsString],
    hostname: &str,
    tty: bool,
) -> Result<Vec<OsArg>> {
    let mut env: Vec<OsArg> = vec![DEFAULT_PATH.into(), format!("HOSTNAME={hostname}").into()];
    if tty {
        env.push("TERM=xterm".into());
    }
    for e in img_env {
        set_env(&mut env, e.as_str().into());
    }
    merge_cli_env(env, cli_env)
}

/// Applies `-e` entries over `env` (used by run and exec alike): `K=V` sets, `K` alone copies
/// rrun's own value of K (nothing when rrun has none), an empty key is refused.
pub fn merge_cli_env(mut env: Vec<OsArg>, cli_env: &[OsString]) -> Result<Vec<OsArg>> {
    for e in cli_env {
        let b = e.as_bytes();
        match b.iter().position(|&c| c == b'=') {
            Some(i) if i > 0 => set_env(&mut env, OsArg(e.clone())),
            None if !b.is_empty() => {
                if let Some(v) = std::env::var_os(e) {
                    let mut kv = e.clone();
                    kv.push("=");
                    kv.push(v);
                    set_env(&mut env, OsArg(kv));
                }
            }
            _ => {
                return Err(user(format!(
                    "bad -e {:?}: use KEY=VALUE",
                    e.to_string_lossy()
                )))
            }
        }
    }
    Ok(env)
}

/// Sets `kv` in `env`, replacing an entry with the same key.
pub fn set_env(env: &mut Vec<OsArg>, kv: OsArg) {
    env.retain(|e| e.key() != kv.key());
    env.push(kv);
}

/// True when `env` has an entry for `key`.
pub fn has_env(env: &[OsArg], key: &str) -> bool {
    env.iter().any(|e| e.key() == key.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_env_overrides_image_env_and_defaults() {
        let env = environment(
            &["PATH=/x".into(), "A=1".into()],
            &["A=2".into(), "B=3".into()],
            "h",
            false,
        )
        .unwrap();
        let has = |s: &str| env.contains(&OsArg::from(s));
        assert!(has("PATH=/x"));
        assert!(has("A=2") && !has("A=1"));
        assert!(has("B=3"));
        assert!(has("HOSTNAME=h"));
        assert!(environment(&[], &["=x".into()], "h", false).is_err());
    }

    #[test]
    fn non_utf8_values_pass_through_and_serialize_as_bytes() {
        let v = OsString::from_vec(b"K=\xff\xfe".to_vec());
        let env = merge_cli_env(vec!["K=1".into()], std::slice::from_ref(&v)).unwrap();
        assert_eq!(env, vec![OsArg(v.clone())]);
        let json = serde_json::to_string(&env).unwrap();
        assert_eq!(json, "[[75,61,255,254]]");
        let back: Vec<OsArg> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, env);
        assert_eq!(
            serde_json::to_string(&OsArg::from("a b")).unwrap(),
            "\"a b\""
        );
    }

    #[test]
    fn hostnames_follow_rfc_1123() {
        for ok in ["lab1", "a", "web-1.example", "a_b", &"a".repeat(63)] {
            assert!(check_hostname(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a b",
            "x\n127.0.0.1 evil",
            "-a",
            "a-",
            "a..b",
            &"a".repeat(64),
            &format!("{}.{}", "a".repeat(40), "b".repeat(30)),
        ] {
            assert!(check_hostname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn root_proc_and_dev_are_no_mount_targets() {
        for bad in [
            "/",
            "//",
            "/.",
            "/proc",
            "/proc/sys",
            "/proc/1/root",
            "/dev",
            "/dev/",
        ] {
            assert!(check_mount_target(bad, "t").is_err(), "{bad}");
        }
        for ok in ["/mnt", "/proc/meminfo", "/dev/shm", "/sys", "/procfoo"] {
            assert!(check_mount_target(ok, "t").is_ok(), "{ok}");
        }
    }

    #[test]
    fn net_modes_parse() {
        assert_eq!(NetMode::parse("none").unwrap(), NetMode::None);
        assert_eq!(
            NetMode::parse("container:web").unwrap(),
            NetMode::Container("web".into())
        );
        assert_eq!(
            NetMode::parse("mynet").unwrap(),
            NetMode::Network("mynet".into())
        );
        assert!(NetMode::parse("a b").is_err());
        assert_eq!(NetMode::parse("pasta").unwrap(), NetMode::Pasta);
        assert_eq!(NetMode::parse("slirp4netns").unwrap(), NetMode::Slirp4netns);
        assert_eq!(NetMode::Slirp4netns.name(), "slirp4netns");
    }

    #[test]
    fn container_paths_refuse_dotdot() {
        assert!(check_container_path("/mnt/x").is_ok());
        assert!(check_container_path("/mnt/../etc").is_err());
        assert!(check_container_path("relative").is_err());
    }
}
