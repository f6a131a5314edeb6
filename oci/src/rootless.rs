//! Whether rrun-oci runs rootless, decided as runc decides it: an effective uid other than 0,
//! or a user namespace other than the initial one (as under rootless podman, which runs its
//! runtime as root of the user's namespace); and runc's default state directory then
//! (`$XDG_RUNTIME_DIR/rrun-oci`). Kernel interface: /proc/self/uid_map (user_namespaces(7)),
//! geteuid(2).

use std::path::PathBuf;

/// runc's default state directory is /run/runc; ours is /run/rrun-oci.
const DEFAULT_ROOT: &str = "/run/rrun-oci";

/// Not euid 0, or inside a user namespace.
pub fn rootless() -> bool {
    !rustix::process::geteuid().is_root() || in_user_namespace()
}

/// /proc/self/uid_map maps fewer than all 2^32 ids: this is not the initial user namespace.
fn in_user_namespace() -> bool {
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    map.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"]
}

/// The state directory without --root: `$XDG_RUNTIME_DIR/rrun-oci` for a user other than
/// root (also root of a user namespace whose $USER is not root, as runc has it), else
/// /run/rrun-oci.
pub fn default_root() -> PathBuf {
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").filter(|x| !x.is_empty());
    let honour = match &xdg {
        None => false,
        Some(_) if !rustix::process::geteuid().is_root() => true,
        Some(_) => in_user_namespace() && std::env::var("USER").map_or(true, |u| u != "root"),
    };
    match xdg {
        Some(x) if honour => PathBuf::from(x).join("rrun-oci"),
        _ => PathBuf::from(DEFAULT_ROOT),
    }
}
