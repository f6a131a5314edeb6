//! Whether netd's socket is open to the user running rrun, and if not, a refusal that says
//! why and how to fix it: the group and mode the socket has (netd sets them from
//! `socket_group` in its config: see netd/src/server.rs), with the group's and the user's
//! names. Kernel interfaces: stat(2) of the socket, connect(2) through netd-proto; names
//! from /etc/group and /etc/passwd (group(5), passwd(5)).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use netd_proto::{Client, ClientError};

/// The largest /etc/group rrun reads for a name: 1 MiB.
const MAX_GROUP_FILE: u64 = 1 << 20;

/// Whether this user may talk to netd: Ok, or the connection error (not running, no
/// permission, ...). Connects and closes at once; netd answers nothing to that.
pub fn probe() -> Result<(), ClientError> {
    Client::connect_default().map(drop)
}

/// The one-line refusal for a connect(2) to netd's socket `path` that failed with EACCES:
/// the socket's group and how root adds this user to it, or that it is open to root only.
pub fn no_permission(path: &Path) -> String {
    let head = format!("no permission to use netd's socket {}", path.display());
    let tail = "or run with --net none";
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            return format!(
                "{head}: cannot reach it ({e}): ask root to open its folder to you (or to the socket's group and add you to it), {tail}"
            )
        }
    };
    if meta.mode() & 0o060 != 0o060 || meta.gid() == 0 {
        return format!(
            "{head}: it is open to root only: ask root to set socket_group in netd's config (e.g. socket_group = \"rbox\"), restart netd and add you to that group, {tail}"
        );
    }
    let uid = rustix::process::getuid().as_raw();
    let me = store::subid::user_name(uid).unwrap_or_else(|| uid.to_string());
    let group = group_name(meta.gid()).unwrap_or_else(|| meta.gid().to_string());
    format!(
        "{head}: it is open to group {group} only, and user {me} is not in it (in this login session): ask root to add you (`usermod -aG {group} {me}`), then log in again, {tail}"
    )
}

/// The name of group `gid` in /etc/group, if it has one.
fn group_name(gid: u32) -> Option<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open("/etc/group")
        .ok()?
        .take(MAX_GROUP_FILE)
        .read_to_string(&mut text)
        .ok()?;
    name_of(&text, gid)
}

/// The first name whose third field is `gid` in an /etc/group text.
fn name_of(text: &str, gid: u32) -> Option<String> {
    let want = gid.to_string();
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)? == want && !name.is_empty()).then(|| name.to_string())
    })
}

/// A netd client error as one line for the user: a refused connect names the socket's group.
pub fn describe(e: &ClientError) -> String {
    match e {
        ClientError::NoPermission { path } => no_permission(path),
        e => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_come_from_the_third_field() {
        let t = "root:x:0:\n# rbox:x:5:\nrbox:x:998:alice,bob\n:x:7:\nshort:x\nnogroup:x:65534:\n";
        assert_eq!(name_of(t, 998).as_deref(), Some("rbox"));
        assert_eq!(name_of(t, 65534).as_deref(), Some("nogroup"));
        assert_eq!(name_of(t, 7), None);
        assert_eq!(name_of(t, 5), None);
        assert_eq!(name_of(t, 1), None);
    }
}
