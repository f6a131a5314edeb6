//! Throwaway unprivileged host users for the rootless tests: made with useradd(8) (which adds
//! and, through userdel(8), removes their /etc/subuid and /etc/subgid lines under the shadow
//! lock), optionally given a subordinate range of the test's choosing with usermod(8)
//! `--add-subuids`/`--add-subgids`, removed on drop; and the project's binaries run as them
//! through setpriv(1). Kernel/tool docs: subuid(5), useradd(8), setpriv(1).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rbox_tests::bin;

/// A throwaway user; removed (with its /etc/subuid and /etc/subgid lines) on drop.
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// First id of the region [`User::with_range`] allocates from: far above useradd's
/// SUB_UID_MIN..(a few users) and root's default remap range 100000-165535.
const RANGE_REGION: u32 = 300_000_000;
/// Slots of 65536 ids in that region (up to 836_870_912).
const RANGE_SLOTS: u32 = 8192;

impl User {
    /// A user made by useradd; a `system` one gets no subordinate ranges, another gets
    /// useradd's own next free 65536 ids (which may be root's default remap range
    /// 100000-165535: see [`User::with_range`] for one clear of it).
    pub fn new(system: bool) -> User {
        let name = rbox_tests::unique("rbi");
        let mut args = vec!["-M", "-N", "-s", "/bin/false"];
        if system {
            args.push("-r");
        }
        args.push(&name);
        // Tests run in parallel: another useradd/usermod holding the shadow lock makes this one
        // fail at once ("cannot lock /etc/passwd; try again later").
        shadow_tool("useradd", &args);
        let id = |flag: &str| -> u32 {
            let o = rbox_tests::command("id")
                .args([flag, &name])
                .output()
                .expect("id");
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("id {flag} {name}: {o:?}"))
        };
        let (uid, gid) = (id("-u"), id("-g"));
        User { name, uid, gid }
    }

    /// A system user (no range from useradd) given 65536 subordinate uids and gids of its own,
    /// clear of every range already in /etc/subuid and /etc/subgid and of root's default remap
    /// range.
    pub fn with_range() -> User {
        static N: AtomicU32 = AtomicU32::new(0);
        let u = User::new(true);
        let taken = |start: u32| {
            ["/etc/subuid", "/etc/subgid"].iter().any(|f| {
                std::fs::read_to_string(f)
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| {
                        let f: Vec<&str> = l.split(':').collect();
                        Some((
                            f.get(1)?.parse::<u64>().ok()?,
                            f.get(2)?.parse::<u64>().ok()?,
                        ))
                    })
                    .any(|(s, c)| s < u64::from(start) + 65536 && u64::from(start) < s + c)
            })
        };
        let first = (std::process::id() % 512) * 16;
        let start = (0..RANGE_SLOTS)
            .map(|i| {
                let slot = (first + N.fetch_add(1, Ordering::Relaxed) + i) % RANGE_SLOTS;
                RANGE_REGION + slot * 65536
            })
            .find(|&s| !taken(s))
            .expect("no free subordinate range of 65536 ids above 300000000");
        let range = format!("{start}-{}", start + 65535);
        shadow_tool(
            "usermod",
            &["--add-subuids", &range, "--add-subgids", &range, &u.name],
        );
        assert_eq!(u.range("/etc/subuid"), Some((start, 65536)), "usermod");
        assert_eq!(u.range("/etc/subgid"), Some((start, 65536)), "usermod");
        // without them rrun maps the user alone (and says so in a note)
        for tool in ["newuidmap", "newgidmap"] {
            assert!(
                ["/usr/bin", "/bin", "/usr/sbin"]
                    .iter()
                    .any(|d| Path::new(d).join(tool).is_file()),
                "{tool} is missing: apt-get install uidmap (.ci/deps.sh)"
            );
        }
        u
    }

    /// This user's first range in `file` (START, COUNT), if any.
    pub fn range(&self, file: &str) -> Option<(u32, u32)> {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{}:", self.name)))?;
        let f: Vec<&str> = line.split(':').collect();
        Some((f[1].parse().ok()?, f[2].parse().ok()?))
    }

    /// `program` as a command (no argument yet) run as this user through setpriv: no
    /// supplementary groups, cwd /, HOME unusable, no RBOX_RINIT or RBUILD_SUBIDS from the
    /// test's environment, RBOX_ROOT the given store. Signals start at their defaults
    /// ([`rbox_tests::command`]), and the user's rrun resets them again.
    pub fn command(&self, store: &Path, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = rbox_tests::command("setpriv");
        c.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .args(["--clear-groups", "--"])
            .arg(program);
        c.env("RBOX_ROOT", store)
            .env("HOME", "/nonexistent")
            .env_remove("RBOX_RINIT")
            .env_remove("RBUILD_SUBIDS")
            .current_dir("/");
        c
    }

    /// The project's `program` with `args`, as this user, with a 120 s deadline.
    pub fn run(&self, store: &Path, program: &str, args: &[&str]) -> Output {
        let mut c = self.command(store, bin(program));
        c.args(args);
        super::output(c, 120)
    }

    /// Like run, but asserts success.
    pub fn ok(&self, store: &Path, program: &str, args: &[&str]) -> Output {
        let o = self.run(store, program, args);
        assert!(
            o.status.success(),
            "{program} {args:?} as {}: {}",
            self.name,
            String::from_utf8_lossy(&o.stderr)
        );
        o
    }

    /// Makes `p` this user's.
    pub fn own(&self, p: &Path) {
        std::os::unix::fs::chown(p, Some(self.uid), Some(self.gid))
            .unwrap_or_else(|e| panic!("chown {} to {}: {e}", p.display(), self.name));
    }

    /// A copy of the Alpine fixture in `dir` (as `alpine.tar.gz`), the user's: the fixture's
    /// own folder need not be reachable by the user, and the copy is readable whatever the
    /// test's umask.
    pub fn fixture_in(&self, dir: &Path) -> std::path::PathBuf {
        let f = dir.join("alpine.tar.gz");
        std::fs::copy(rbox_tests::alpine_fixture("3.15.11"), &f).expect("copy the fixture");
        self.own(&f);
        f
    }
}

/// Held (in this test binary) while useradd/usermod/userdel rewrite /etc/subuid and
/// /etc/subgid, and by a test that bind-mounts its own file over them in a private mount
/// namespace: the tools replace the files by rename(2), which detaches a mount on them in every
/// other mount namespace, so that test would read the host's files instead of its own.
pub fn subid_files_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs useradd/usermod/userdel with `args`, retrying for up to 30 s while another holds the
/// shadow lock (their exit status 1 or 10); panics with the tool's message otherwise.
fn shadow_tool(tool: &str, args: &[&str]) {
    let _files = subid_files_lock();
    let mut last = String::new();
    for _ in 0..300 {
        let o = rbox_tests::command(tool)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{tool} (Debian package passwd) cannot run: {e}"));
        if o.status.success() {
            return;
        }
        last = String::from_utf8_lossy(&o.stderr).trim().to_string();
        if !last.contains("lock") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{tool} {args:?} failed: {last}");
}

impl Drop for User {
    fn drop(&mut self) {
        rbox_tests::stop_processes_of(self.uid);
        let _files = subid_files_lock();
        let mut c = rbox_tests::command("userdel");
        c.arg(&self.name);
        for _ in 0..100 {
            match c.output() {
                Ok(o)
                    if !o.status.success()
                        && String::from_utf8_lossy(&o.stderr).contains("lock") =>
                {
                    std::thread::sleep(Duration::from_millis(100))
                }
                _ => break,
            }
        }
        for f in ["/etc/subuid", "/etc/subgid"] {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            if text
                .lines()
                .any(|l| l.starts_with(&format!("{}:", self.name)))
            {
                // userdel left the line (a shadow built without subid support): remove ours only
                let kept: String = text
                    .lines()
                    .filter(|l| !l.starts_with(&format!("{}:", self.name)))
                    .map(|l| format!("{l}\n"))
                    .collect();
                let _ = std::fs::write(f, kept);
            }
        }
    }
}
