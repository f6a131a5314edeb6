//! Shared helpers for the end-to-end tests in `tests/tests/`: where the binaries are, root checks,
//! unique names and scratch folders that clean up after themselves.
//!
//! Every test here drives the real binaries against the real kernel. Tests that need root call
//! [`require_root`], which fails the test loudly (never skips) when not run as root.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Folder holding `rbuild`, `rrun`, `rinit` and `netd`: `$RBOX_BIN` if set, else the cargo
/// profile folder this test executable was built into (`target/<profile>/`).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RBOX_BIN") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test-binary>
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// Path of one of the project's binaries; panics with the fix if it was not built.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.is_file(),
        "{} is missing: run `cargo build --release` first (or set RBOX_BIN)",
        p.display()
    );
    p
}

/// A `Command` for one of the project's binaries.
pub fn cmd(name: &str) -> Command {
    Command::new(bin(name))
}

/// Fails the calling test unless it runs as root. Root tests never skip silently.
pub fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test needs root (it drives namespaces, mounts and cgroups): run the suite as root"
    );
}

/// A name unique to this process and call: `<prefix><pid-base36><counter-base36>`.
/// Interface names must stay within 15 bytes (IFNAMSIZ - 1): keep prefixes short for those.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}{}", base36(std::process::id()), base36(n))
}

fn base36(mut v: u32) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(v % 36) as usize] as char);
        v /= 36;
        if v == 0 {
            break;
        }
    }
    out.iter().rev().collect()
}

/// A scratch folder under the system temp dir, removed (with everything in it) on drop.
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    pub fn new(prefix: &str) -> Scratch {
        let path = std::env::temp_dir().join(unique(&format!("rbox-{prefix}-")));
        std::fs::create_dir_all(&path).expect("create scratch dir");
        Scratch { path }
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path.join(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// One of the Alpine minirootfs fixtures shipped beside the project (never copied into it),
/// e.g. `alpine_fixture("3.15.11")`.
pub fn alpine_fixture(version: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/alpine")
        .join(format!("alpine-minirootfs-{version}-x86_64.tar.gz"));
    assert!(p.is_file(), "fixture {} is missing", p.display());
    p
}
