//! Shared helpers for the end-to-end tests in `tests/tests/`: where the binaries are, processes
//! started with a clean signal state, root checks, unique names and scratch folders that clean
//! up after themselves.
//!
//! Every test here drives the real binaries against the real kernel. Tests that need root call
//! [`require_root`], which fails the test loudly (never skips) when not run as root.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// The project's binaries, which the rootless tests run as throwaway users.
const BINARIES: [&str; 6] = ["rbuild", "rrun", "rinit", "rrun-oci", "netd", "netd-client"];

/// Folder holding the project's binaries ([`BINARIES`]): `$RBOX_BIN` if set, else the cargo
/// profile folder this test executable was built into (`target/<profile>/`) when every user
/// may run what is there, else a copy any user may run ([`shared_copy`]): the rootless tests
/// run them as throwaway users, whom a checkout or a build made under umask 077 keeps out.
pub fn bin_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("RBOX_BIN") {
            return PathBuf::from(dir);
        }
        let exe = std::env::current_exe().expect("current_exe");
        // target/<profile>/deps/<test-binary>
        let built = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary lives in target/<profile>/deps")
            .to_path_buf();
        match others_may_run(&built) {
            true => built,
            false => shared_copy(&built),
        }
    })
    .clone()
}

/// Whether every user may reach `dir` (search permission on it and on each folder above it)
/// and run each of [`BINARIES`] built there.
fn others_may_run(dir: &Path) -> bool {
    let mode = |p: &Path| p.metadata().map(|m| m.permissions().mode()).ok();
    dir.ancestors()
        .all(|d| mode(d).is_some_and(|m| m & 0o001 != 0))
        && BINARIES
            .iter()
            .all(|b| mode(&dir.join(b)).is_none_or(|m| m & 0o005 == 0o005))
}

/// `rbox-bin-PID` in the temporary folder: a copy of [`BINARIES`] built in `built`, folder and
/// files 0755, made once by this test process and removed when it exits (atexit(3)).
fn shared_copy(built: &Path) -> PathBuf {
    let dir = shared_copy_dir();
    // one left by an earlier process that had this pid and was killed
    let _ = std::fs::remove_dir_all(&dir);
    let open = std::fs::Permissions::from_mode(0o755);
    std::fs::create_dir(&dir)
        .and_then(|()| std::fs::set_permissions(&dir, open.clone()))
        .unwrap_or_else(|e| panic!("make {}: {e}", dir.display()));
    // SAFETY: registers a function that takes nothing and touches only the file system; libc
    // runs it once, at exit(3), which is how the test harness ends.
    unsafe { libc::atexit(remove_shared_copy) };
    // By install(1), not in this process: a child another test thread forks meanwhile would
    // inherit the copy's writable descriptor until its exec, and an exec of the copy would
    // then fail with ETXTBSY.
    for b in BINARIES {
        let from = built.join(b);
        if from.is_file() {
            let st = Command::new("install")
                .args(["-m", "0755"])
                .arg(&from)
                .arg(dir.join(b))
                .status();
            assert!(
                st.as_ref().is_ok_and(|s| s.success()),
                "install {} into {}: {st:?}",
                from.display(),
                dir.display()
            );
        }
    }
    assert!(
        others_may_run(&dir),
        "{}: not every user may reach it (TMPDIR private?): set RBOX_BIN to a folder of the \
         built binaries any user may run",
        dir.display()
    );
    dir
}

fn shared_copy_dir() -> PathBuf {
    std::env::temp_dir().join(format!("rbox-bin-{}", std::process::id()))
}

extern "C" fn remove_shared_copy() {
    let _ = std::fs::remove_dir_all(shared_copy_dir());
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

/// A `Command` for one of the project's binaries, with clean signal state ([`command`]).
pub fn cmd(name: &str) -> Command {
    command(bin(name))
}

/// `Command::new(program)` whose process starts with every signal at its default disposition
/// and none blocked, whatever the test runner was started with: a shell ignores SIGINT and
/// SIGQUIT in what it starts in the background (`cargo test &`), a terminal's job control may
/// leave others ignored or blocked, and a process that inherits an ignored signal cannot catch
/// it (a non-interactive `sh` may not even trap it). Tests start every process through this
/// (or [`cmd`]), and set a signal's disposition themselves when they need another one.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    let mut c = Command::new(program);
    // SAFETY: between fork and exec the closure makes only rt_sigaction(2) and sigprocmask(2)
    // calls (async-signal-safe), on data of its own stack; it allocates nothing and takes no
    // lock, so it is safe in the child of a multithreaded test process.
    unsafe { c.pre_exec(default_signals) };
    c
}

/// `c` started with umask `mask` (umask(2)), whatever the test runner's: for tests that show
/// what a user with that umask sees.
pub fn with_umask(c: &mut Command, mask: u32) -> &mut Command {
    // SAFETY: between fork and exec the closure makes one umask(2) call, which cannot fail;
    // it allocates nothing and takes no lock.
    unsafe {
        c.pre_exec(move || {
            libc::umask(mask as libc::mode_t);
            Ok(())
        })
    }
}

/// In the child of [`command`]: every catchable signal to SIG_DFL, an empty signal mask. By
/// the raw rt_sigaction(2) system call, which also resets the two real-time signals glibc
/// keeps for itself (32 and 33: its sigaction(2) refuses them, yet a parent may have left
/// them ignored; cargo's test processes do).
fn default_signals() -> std::io::Result<()> {
    /// The kernel's struct sigaction on x86_64 (not libc's): handler, flags, restorer, mask.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let dfl = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: `dfl` is a kernel sigaction of the size passed (8-byte mask); the old
        // action is not asked for (NULL).
        let r = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            )
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    // SAFETY: sigprocmask gets an initialised, empty set of this frame.
    unsafe {
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        if libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Fails the calling test unless it runs as root. Root tests never skip silently.
pub fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test needs root (it drives namespaces, mounts and cgroups): run the suite as root"
    );
}

/// The pids whose real uid is `uid`, zombies included (userdel(8) counts them).
fn pids_of(uid: u32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let st = std::fs::read_to_string(e.path().join("status")).unwrap_or_default();
        let real = st
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next()?.parse::<u32>().ok());
        if real == Some(uid) {
            out.push(pid);
        }
    }
    out
}

/// Safety net before a throwaway user is deleted, after a test failed half-way: what still
/// runs as `uid` is the test's (a host process it started as the user, say), and userdel(8)
/// refuses a user in use, which would leave the user behind. SIGKILLs those processes and
/// reaps the ones that are this process's children (a dropped std Child is never waited
/// for), for up to 5 s.
pub fn stop_processes_of(uid: u32) {
    for _ in 0..50 {
        let pids = pids_of(uid);
        if pids.is_empty() {
            return;
        }
        for pid in pids.into_iter().filter_map(rustix::process::Pid::from_raw) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Removes the throwaway user `name` (userdel(8), which also drops its /etc/subuid and
/// /etc/subgid lines under the shadow lock) and any such line userdel left (a shadow built
/// without subid support): only this user's. What still runs as the user is stopped first
/// ([`stop_processes_of`]).
pub fn userdel(name: &str) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let uid = passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&name)).then(|| f.get(2)?.parse::<u32>().ok())?
    });
    if let Some(uid) = uid {
        stop_processes_of(uid);
    }
    let _ = command("userdel").arg(name).status();
    for f in ["/etc/subuid", "/etc/subgid"] {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        let mine = |l: &str| l.starts_with(&format!("{name}:"));
        if text.lines().any(mine) {
            let kept: String = text
                .lines()
                .filter(|l| !mine(l))
                .map(|l| format!("{l}\n"))
                .collect();
            let _ = std::fs::write(f, kept);
        }
    }
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
        // 0755 whatever the runner's umask, as under the usual 022: a container's remapped
        // root, a test's throwaway user or runc's container process may have to walk through
        // it (what a test puts inside is its own to restrict).
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("chmod scratch dir");
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
