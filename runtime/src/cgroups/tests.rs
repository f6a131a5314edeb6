//! Owns: the cgroup module's tests against the real kernel (root only; they fail, never skip,
//! without root). Each test uses a unique name and cleans up through a Drop guard.
//! Kernel interface: the same cgroupfs files the module drives, read back independently.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rustix::fs::{self as rfs, FileType};

use super::detect::{self, Hierarchy, Version};
use super::*;

fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test needs root (it creates cgroups): run the suite as root"
    );
}

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Kills the processes a test spawned and removes whatever is left of its cgroup and any extra
/// directories, even when the test failed half-way.
struct Guard {
    name: String,
    children: Vec<Child>,
    dirs: Vec<PathBuf>,
}

impl Guard {
    fn new(prefix: &str) -> Guard {
        require_root();
        Guard {
            name: unique(prefix),
            children: Vec::new(),
            dirs: Vec::new(),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Ok(cg) = Cgroup::open(&self.name) {
            let _ = cg.kill_all();
            let _ = cg.remove();
        }
        for d in self.dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// `sh -c SCRIPT` that waits for a line on stdin first, so the test can put it into a cgroup
/// before it does anything.
fn spawn_waiting(g: &mut Guard, script: &str) -> i32 {
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!("read _; {script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sh");
    let pid = child.id() as i32;
    g.children.push(child);
    pid
}

fn release(g: &mut Guard, pid: i32) {
    let c = g
        .children
        .iter_mut()
        .find(|c| c.id() as i32 == pid)
        .expect("child");
    c.stdin
        .take()
        .expect("stdin")
        .write_all(b"go\n")
        .expect("release child");
}

/// Waits for a spawned child up to `secs`; returns its status and stdout.
fn finish(g: &mut Guard, pid: i32, secs: u64) -> (std::process::ExitStatus, String) {
    let i = g
        .children
        .iter()
        .position(|c| c.id() as i32 == pid)
        .expect("child");
    let mut c = g.children.remove(i);
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(st) = c.try_wait().expect("try_wait") {
            let mut out = String::new();
            if let Some(mut o) = c.stdout.take() {
                let _ = o.read_to_string(&mut out);
            }
            return (st, out);
        }
        if Instant::now() > until {
            let _ = c.kill();
            let _ = c.wait();
            panic!("child {pid} did not end within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal_of(st: &std::process::ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(st)
}

/// The path among `paths` that has interface file `file`.
fn with_file<'a>(paths: &'a [PathBuf], file: &str) -> Option<&'a PathBuf> {
    paths.iter().find(|p| p.join(file).exists())
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// Every `rbox-<name>` directory beneath this process's own cgroups, in any hierarchy.
fn leftovers(name: &str) -> Vec<PathBuf> {
    detect::detect()
        .unwrap()
        .iter()
        .map(|h| h.own.join(format!("rbox-{name}")))
        .filter(|p| p.exists())
        .collect()
}

fn all_limits() -> Limits {
    Limits {
        memory: Some(32 << 20),
        cpus: Some(0.5),
        cpuset_cpus: Some("0".into()),
        pids: Some(12),
        devices: true,
        every_controller: false,
    }
}

#[test]
fn create_writes_every_limit_into_its_controller_file() {
    let g = Guard::new("lim");
    let cg = Cgroup::create(&g.name, &all_limits()).unwrap();
    let p = cg.paths();
    let own: Vec<PathBuf> = detect::detect()
        .unwrap()
        .into_iter()
        .map(|h| h.own)
        .collect();
    for path in p {
        assert_eq!(
            path.file_name().unwrap().to_str().unwrap(),
            format!("rbox-{}", g.name)
        );
        assert!(
            own.iter().any(|o| Some(o.as_path()) == path.parent()),
            "{} is not beneath our own cgroup",
            path.display()
        );
    }
    if let Some(d) = with_file(p, "memory.limit_in_bytes") {
        assert_eq!(read(&d.join("memory.limit_in_bytes")), "33554432");
        if d.join("memory.memsw.limit_in_bytes").exists() {
            assert_eq!(
                read(&d.join("memory.memsw.limit_in_bytes")),
                "33554432",
                "swap must be off"
            );
        }
    } else {
        let d = with_file(p, "memory.max").expect("a memory cgroup");
        assert_eq!(read(&d.join("memory.max")), "33554432");
        assert_eq!(read(&d.join("memory.swap.max")), "0");
    }
    if let Some(d) = with_file(p, "cpu.cfs_quota_us") {
        assert_eq!(read(&d.join("cpu.cfs_quota_us")), "50000");
        assert_eq!(read(&d.join("cpu.cfs_period_us")), "100000");
    } else {
        assert_eq!(
            read(
                &with_file(p, "cpu.max")
                    .expect("a cpu cgroup")
                    .join("cpu.max")
            ),
            "50000 100000"
        );
    }
    let d = with_file(p, "cpuset.cpus").expect("a cpuset cgroup");
    assert_eq!(read(&d.join("cpuset.cpus")), "0");
    if d.join("cpuset.effective_mems").exists() {
        let parent_mems = read(&d.parent().unwrap().join("cpuset.mems"));
        assert_eq!(
            read(&d.join("cpuset.mems")),
            parent_mems,
            "v1 cpuset.mems copied from the parent"
        );
    }
    assert_eq!(
        read(
            &with_file(p, "pids.max")
                .expect("a pids cgroup")
                .join("pids.max")
        ),
        "12"
    );
}

#[test]
fn add_pid_puts_a_task_into_every_hierarchy_of_the_cgroup() {
    let mut g = Guard::new("join");
    let cg = Cgroup::create(&g.name, &all_limits()).unwrap();
    let pid = spawn_waiting(&mut g, "sleep 30");
    cg.add_pid(pid).unwrap();
    let lines = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let inside = lines
        .lines()
        .filter(|l| l.ends_with(&format!("/rbox-{}", g.name)))
        .count();
    assert_eq!(inside, cg.paths().len(), "/proc/{pid}/cgroup:\n{lines}");
    for p in cg.paths() {
        assert!(
            read(&p.join("cgroup.procs"))
                .lines()
                .any(|l| l == pid.to_string()),
            "{pid} not in {}",
            p.display()
        );
    }
    assert_eq!(cg.pids(), vec![pid]);
}

#[test]
fn oom_killed_sees_a_real_oom_kill_in_a_6m_cgroup() {
    let mut g = Guard::new("oom");
    let cg = Cgroup::create(
        &g.name,
        &Limits {
            memory: Some(6 << 20),
            ..Limits::default()
        },
    )
    .unwrap();
    // tail keeps the last lines of a stream without newlines: it grows until killed.
    let pid = spawn_waiting(&mut g, "exec tail /dev/zero");
    cg.add_pid(pid).unwrap();
    assert!(!cg.oom_killed(), "nothing was killed yet");
    release(&mut g, pid);
    let (st, _) = finish(&mut g, pid, 60);
    assert_eq!(
        signal_of(&st),
        Some(9),
        "the hog must die of SIGKILL, got {st:?}"
    );
    assert!(cg.oom_killed(), "oom_killed() must see the kill");
}

#[test]
fn a_shell_runs_in_a_6m_cgroup() {
    let mut g = Guard::new("small");
    let cg = Cgroup::create(
        &g.name,
        &Limits {
            memory: Some(6 << 20),
            ..Limits::default()
        },
    )
    .unwrap();
    let pid = spawn_waiting(
        &mut g,
        "for i in 1 2 3; do sh -c 'echo $i' >/dev/null; done; ls / >/dev/null && echo alive",
    );
    cg.add_pid(pid).unwrap();
    release(&mut g, pid);
    let (st, out) = finish(&mut g, pid, 30);
    assert!(st.success(), "{st:?}");
    assert_eq!(out.trim(), "alive");
    assert!(!cg.oom_killed());
}

fn fork_bomb(g: &mut Guard, cg: &Cgroup) -> i32 {
    // Sleepers plus a tree in which every process keeps forking (a shell would give up at the
    // first failed fork): it fills the pids limit and refills every gap.
    let bomb =
        "import os, time\nwhile True:\n    try: os.fork()\n    except OSError: time.sleep(0.005)\n";
    let pid = spawn_waiting(
        g,
        &format!("for i in 1 2 3 4 5; do sleep 1000 & done; exec python3 -c '{bomb}'"),
    );
    cg.add_pid(pid).unwrap();
    release(g, pid);
    let until = Instant::now() + Duration::from_secs(10);
    while cg.pids().len() < 20 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        cg.pids().len() >= 20,
        "the bomb did not grow: {:?}",
        cg.pids()
    );
    pid
}

#[test]
fn kill_all_empties_a_cgroup_holding_a_fork_bomb() {
    let mut g = Guard::new("bomb");
    let cg = Cgroup::create(
        &g.name,
        &Limits {
            pids: Some(64),
            ..Limits::default()
        },
    )
    .unwrap();
    let pid = fork_bomb(&mut g, &cg);
    let t = Instant::now();
    cg.kill_all().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "kill_all took {:?}",
        t.elapsed()
    );
    assert!(cg.pids().is_empty(), "left: {:?}", cg.pids());
    let (st, _) = finish(&mut g, pid, 5);
    assert_eq!(signal_of(&st), Some(9));
    cg.remove().unwrap();
    assert!(leftovers(&g.name).is_empty());
}

#[test]
fn kill_all_through_the_v1_freezer_empties_a_fork_bomb() {
    let mut g = Guard::new("frz1");
    let hs = detect::detect().unwrap();
    let Some(fz) = hs
        .iter()
        .find(|h| h.version == Version::V1 && h.has("freezer"))
    else {
        panic!("this machine has no v1 freezer; this test covers the v1 path and needs one")
    };
    let pids = hs
        .iter()
        .find(|h| h.version == Version::V1 && h.has("pids"))
        .expect("a v1 pids hierarchy");
    let dirs = [
        fz.own.join(format!("rbox-{}", g.name)),
        pids.own.join(format!("rbox-{}", g.name)),
    ];
    for d in &dirs {
        std::fs::create_dir(d).unwrap();
        g.dirs.push(d.clone());
    }
    std::fs::write(dirs[1].join("pids.max"), "64").unwrap();
    let cg = Cgroup::from_paths(&dirs).unwrap();
    let pid = fork_bomb(&mut g, &cg);
    freezer::kill_all(&cg.dirs, true).unwrap();
    assert!(cg.pids().is_empty(), "left: {:?}", cg.pids());
    assert_eq!(
        read(&dirs[0].join("freezer.state")),
        "THAWED",
        "never leaves the cgroup frozen"
    );
    let (st, _) = finish(&mut g, pid, 5);
    assert_eq!(signal_of(&st), Some(9));
    cg.remove().unwrap();
    assert!(!dirs[0].exists() && !dirs[1].exists());
}

#[test]
fn kill_all_through_the_v2_freezer_empties_a_fork_bomb() {
    let mut g = Guard::new("frz2");
    let cg = Cgroup::create(
        &g.name,
        &Limits {
            pids: Some(64),
            ..Limits::default()
        },
    )
    .unwrap();
    let v2 = cg
        .dirs
        .iter()
        .find(|d| d.version == Version::V2)
        .expect("a v2 hierarchy")
        .path
        .clone();
    assert!(
        v2.join("cgroup.freeze").exists(),
        "this kernel has cgroup.freeze"
    );
    let pid = fork_bomb(&mut g, &cg);
    freezer::kill_all(&cg.dirs, false).unwrap();
    assert!(cg.pids().is_empty(), "left: {:?}", cg.pids());
    assert_eq!(
        read(&v2.join("cgroup.freeze")),
        "0",
        "never leaves the cgroup frozen"
    );
    let (st, _) = finish(&mut g, pid, 5);
    assert_eq!(signal_of(&st), Some(9));
}

#[test]
fn remove_leaves_nothing_in_any_hierarchy_even_with_child_cgroups() {
    let mut g = Guard::new("rm");
    let cg = Cgroup::create(&g.name, &all_limits()).unwrap();
    let pid = spawn_waiting(&mut g, "sleep 30");
    cg.add_pid(pid).unwrap();
    // What a container with a cgroup namespace might do: make its own child cgroups.
    for p in cg.paths() {
        std::fs::create_dir(p.join("inner")).unwrap();
    }
    assert_eq!(leftovers(&g.name).len(), cg.paths().len());
    cg.kill_all().unwrap();
    let paths = cg.paths().to_vec();
    cg.remove().unwrap();
    for p in &paths {
        assert!(!p.exists(), "{} is left", p.display());
    }
    assert!(leftovers(&g.name).is_empty());
}

#[test]
fn remove_refuses_while_tasks_live_and_names_them() {
    let mut g = Guard::new("busy");
    let cg = Cgroup::create(&g.name, &Limits::default()).unwrap();
    let pid = spawn_waiting(&mut g, "sleep 30");
    cg.add_pid(pid).unwrap();
    let e = cg.remove().unwrap_err();
    assert!(
        matches!(&e, CgroupError::StillBusy { pids, .. } if pids == &vec![pid]),
        "{e}"
    );
    assert!(e.to_string().contains("stop the container first"), "{e}");
    assert_eq!(
        leftovers(&g.name).len(),
        1,
        "the cgroup stays for a later rm -f"
    );
}

#[test]
fn create_refuses_an_existing_name_and_keeps_the_first() {
    let g = Guard::new("dup");
    let first = Cgroup::create(
        &g.name,
        &Limits {
            pids: Some(5),
            ..Limits::default()
        },
    )
    .unwrap();
    let e = Cgroup::create(
        &g.name,
        &Limits {
            pids: Some(5),
            ..Limits::default()
        },
    )
    .unwrap_err();
    assert!(matches!(e, CgroupError::Exists { .. }), "{e}");
    assert!(e.to_string().contains("already exists"), "{e}");
    for p in first.paths() {
        assert!(
            p.is_dir(),
            "the first cgroup's {} must survive",
            p.display()
        );
    }
    first.remove().unwrap();
}

#[test]
fn a_create_failing_half_way_removes_what_it_made() {
    let mut g = Guard::new("half");
    // A "pids hierarchy" that is a plain directory: its mkdir works, then writing pids.max fails,
    // after the real cgroups were made.
    let fake = std::env::temp_dir().join(unique("rbox-cgtest-"));
    std::fs::create_dir(&fake).unwrap();
    g.dirs.push(fake.clone());
    let mut hs = detect::detect().unwrap();
    hs.retain(|h| !h.has("pids"));
    hs.push(Hierarchy {
        version: Version::V1,
        controllers: vec!["pids".into()],
        mount: fake.clone(),
        own: fake.clone(),
        writable: true,
    });
    let limits = Limits {
        memory: Some(32 << 20),
        pids: Some(5),
        ..Limits::default()
    };
    let e = Cgroup::create_in(&hs, &g.name, &limits).unwrap_err();
    let want = fake.join(format!("rbox-{}", g.name)).join("pids.max");
    assert!(
        matches!(&e, CgroupError::Write { path, .. } if path == &want),
        "{e}"
    );
    assert!(
        leftovers(&g.name).is_empty(),
        "left: {:?}",
        leftovers(&g.name)
    );
    assert!(
        !want.parent().unwrap().exists(),
        "the half-made directory is removed too"
    );
}

#[test]
fn open_finds_the_cgroup_again_and_from_paths_refuses_foreign_directories() {
    let g = Guard::new("open");
    let cg = Cgroup::create(&g.name, &all_limits()).unwrap();
    let again = Cgroup::open(&g.name).unwrap();
    let mut a = cg.paths().to_vec();
    let mut b = again.paths().to_vec();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert_eq!(Cgroup::from_paths(cg.paths()).unwrap().paths(), cg.paths());
    assert!(matches!(
        Cgroup::open(&unique("nosuch")),
        Err(CgroupError::NotFound { .. })
    ));
    assert!(matches!(
        Cgroup::open("../x"),
        Err(CgroupError::InvalidName(_))
    ));
    let mem = detect::detect()
        .unwrap()
        .into_iter()
        .find(|h| h.has("memory") || h.version == Version::V2)
        .unwrap();
    for foreign in [
        PathBuf::from("/tmp/rbox-x"),
        mem.mount.clone(),
        mem.own.clone(),
        mem.mount.join("rbox-x/../y"),
    ] {
        let e = Cgroup::from_paths(std::slice::from_ref(&foreign)).unwrap_err();
        assert!(
            matches!(e, CgroupError::NotOurs { .. }),
            "{}: {e}",
            foreign.display()
        );
    }
    cg.remove().unwrap();
    // Recorded paths that are gone already are skipped, so a second rm is harmless.
    assert!(Cgroup::from_paths(&a).unwrap().paths().is_empty());
}

#[test]
fn cpuset_limits_the_cpus_a_task_may_run_on() {
    let mut g = Guard::new("cpuset");
    let cg = Cgroup::create(
        &g.name,
        &Limits {
            cpuset_cpus: Some("0".into()),
            ..Limits::default()
        },
    )
    .unwrap();
    let pid = spawn_waiting(&mut g, "grep Cpus_allowed_list /proc/self/status");
    cg.add_pid(pid).unwrap();
    release(&mut g, pid);
    let (st, out) = finish(&mut g, pid, 10);
    assert!(st.success());
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        vec!["Cpus_allowed_list:", "0"]
    );
}

#[test]
fn pids_limit_holds_against_many_forks() {
    let mut g = Guard::new("pids");
    let cg = Cgroup::create(
        &g.name,
        &Limits {
            pids: Some(6),
            ..Limits::default()
        },
    )
    .unwrap();
    let pid = spawn_waiting(
        &mut g,
        "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 30 & done 2>/dev/null; echo done; sleep 30",
    );
    cg.add_pid(pid).unwrap();
    release(&mut g, pid);
    std::thread::sleep(Duration::from_millis(500));
    let n = cg.pids().len();
    assert!((2..=6).contains(&n), "{n} tasks in a cgroup limited to 6");
    cg.kill_all().unwrap();
}

#[test]
fn cpus_limit_throttles_a_busy_loop() {
    let mut g = Guard::new("cpu");
    let cg = Cgroup::create(
        &g.name,
        &Limits {
            cpus: Some(0.5),
            ..Limits::default()
        },
    )
    .unwrap();
    let dir = cg
        .paths()
        .iter()
        .find(|p| p.join("cpu.cfs_quota_us").exists() || p.join("cpu.max").exists());
    let stat = dir.expect("a cpu cgroup").join("cpu.stat");
    let pid = spawn_waiting(&mut g, "while :; do :; done");
    cg.add_pid(pid).unwrap();
    release(&mut g, pid);
    let started = Instant::now();
    // Unloaded, half a CPU is cut short in every 100 ms period; on a machine busy with other
    // tests the loop may get less than its quota for a while, so give it up to 10 s to show it.
    let until = Instant::now() + Duration::from_secs(10);
    let mut throttled = 0;
    while throttled < 5 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(200));
        throttled = fs::keyed(&read(&stat), "nr_throttled").unwrap();
    }
    assert!(throttled >= 5, "nr_throttled {throttled} at 0.5 cpus");
    // And the loop never got more than its half: its utime + stime (USER_HZ 100) against the
    // wall time since it started, with one period of slack.
    let stat_of = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<u64> = stat_of
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|x| x.parse().unwrap())
        .collect();
    let used_ms = (f[0] + f[1]) * 10;
    let wall_ms = started.elapsed().as_millis() as u64;
    assert!(
        used_ms <= wall_ms / 2 + 100,
        "{used_ms} ms of cpu in {wall_ms} ms at 0.5 cpus"
    );
    cg.kill_all().unwrap();
}

#[test]
fn junk_limits_are_refused_with_clear_messages_and_leave_nothing() {
    let g = Guard::new("junk");
    let e = Cgroup::create(
        &g.name,
        &Limits {
            memory: Some(1024),
            ..Limits::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "invalid limit: memory limit of 1024 bytes is below the minimum of 6m"
    );
    let e = Cgroup::create(
        &g.name,
        &Limits {
            cpuset_cpus: Some("0-63".into()),
            ..Limits::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("cpuset 2-63 is not allowed here: the parent cgroup /"),
        "{e}"
    );
    let e = check_cpuset("1-0").unwrap_err().to_string();
    assert!(e.starts_with("invalid cpuset \"1-0\""), "{e}");
    assert_eq!(check_cpuset("1,0").unwrap(), "0-1");
    assert_eq!(
        parse_size("lots").unwrap_err().to_string(),
        "invalid size \"lots\": use a number with an optional k, m, g or t suffix, e.g. 32m"
    );
    assert!(parse_cpus("99999")
        .unwrap_err()
        .to_string()
        .contains("online cpus"));
    assert!(leftovers(&g.name).is_empty());
}

/// Environment variable that turns [`self_move_helper`] on inside a child test process.
const SELF_MOVE_ENV: &str = "RBOX_CGROUP_SELF_MOVE_DIR";
/// Environment variable that makes [`idle_helper`] wait (a second "rrun" in the same cgroup).
const IDLE_ENV: &str = "RBOX_CGROUP_IDLE";

#[test]
fn v2_controllers_are_enabled_when_only_rruns_live_there_and_refused_beside_other_processes() {
    // The unified hierarchy has no memory/cpu/pids here (they are bound to v1), but any v2
    // controller shows the rule; hugetlb is the one left on this hybrid machine.
    let mut g = Guard::new("v2en");
    let hs = detect::detect().unwrap();
    let v2 = hs
        .iter()
        .find(|h| h.version == Version::V2)
        .expect("a v2 hierarchy");
    let ctrl = read(&v2.mount.join("cgroup.controllers"));
    let Some(c) = ["hugetlb", "pids", "memory", "cpu", "misc"]
        .into_iter()
        .find(|c| ctrl.split_whitespace().any(|w| w == *c))
    else {
        panic!("the v2 hierarchy offers no controller to test with ({ctrl:?})")
    };
    let top_had = read(&v2.mount.join("cgroup.subtree_control"))
        .split_whitespace()
        .any(|w| w == c);
    let own = v2.own.join(format!("rbox-{}", g.name));
    std::fs::create_dir(&own).unwrap();
    g.dirs.push(own.clone());

    // Another process in `own`: the kernel refuses, and so do we, with the rule in the message.
    let pid = spawn_waiting(&mut g, "sleep 30");
    std::fs::write(own.join("cgroup.procs"), pid.to_string()).unwrap();
    let e = v2::enable(&v2.mount, &own, &[c]).unwrap_err();
    assert!(matches!(e, CgroupError::InternalProcesses { .. }), "{e}");
    assert!(e.to_string().contains("no internal processes"), "{e}");
    for ch in &mut g.children {
        let _ = ch.kill();
        let _ = ch.wait();
    }

    // Only "rruns" in `own` (copies of this test binary: an idle one, then the helper that asks
    // for the controller): they step into a leaf together.
    let leaf = own.join(v2::SELF_LEAF);
    g.dirs.insert(1, leaf.clone());
    let idle = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "cgroups::tests::idle_helper",
            "--ignored",
            "--test-threads=1",
        ])
        .env(IDLE_ENV, "1")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let idle_pid = idle.id();
    g.children.push(idle);
    std::fs::write(own.join("cgroup.procs"), idle_pid.to_string()).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "cgroups::tests::self_move_helper",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SELF_MOVE_ENV, &own)
        .env("RBOX_CGROUP_CONTROLLER", c)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "helper failed:\n{text}");
    assert!(text.contains("SELF-MOVE-OK"), "helper did not run:\n{text}");
    assert!(read(&own.join("cgroup.subtree_control"))
        .split_whitespace()
        .any(|w| w == c));
    assert!(leaf.is_dir(), "the helper stepped into {}", leaf.display());
    let idle_cg = std::fs::read_to_string(format!("/proc/{idle_pid}/cgroup")).unwrap();
    assert!(
        idle_cg
            .lines()
            .any(|l| l.starts_with("0::") && l.ends_with(v2::SELF_LEAF)),
        "the other rrun moved along: {idle_cg}"
    );
    for ch in &mut g.children {
        let _ = ch.kill();
        let _ = ch.wait();
    }
    std::fs::remove_dir(&leaf).unwrap();
    let _ = std::fs::write(own.join("cgroup.subtree_control"), format!("-{c}"));
    std::fs::remove_dir(&own).unwrap();
    if !top_had {
        let _ = std::fs::write(v2.mount.join("cgroup.subtree_control"), format!("-{c}"));
    }
}

/// Runs only inside the child process the test above starts: joins the given cgroup alone, then
/// asks for a controller there, which must move it into the leaf.
#[test]
#[ignore = "helper: run by v2_controllers_are_enabled_when_only_rruns_live_there_and_refused_beside_other_processes"]
fn self_move_helper() {
    let Some(own) = std::env::var_os(SELF_MOVE_ENV) else {
        return;
    };
    let own = PathBuf::from(own);
    let c: &'static str = Box::leak(
        std::env::var("RBOX_CGROUP_CONTROLLER")
            .unwrap()
            .into_boxed_str(),
    );
    let mount = detect::detect()
        .unwrap()
        .into_iter()
        .find(|h| h.version == Version::V2)
        .unwrap()
        .mount;
    let me = std::process::id();
    std::fs::write(own.join("cgroup.procs"), me.to_string()).unwrap();
    v2::enable(&mount, &own, &[c]).unwrap();
    let mine = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    assert!(
        mine.lines()
            .any(|l| l.starts_with("0::") && l.ends_with(v2::SELF_LEAF)),
        "{mine}"
    );
    println!("SELF-MOVE-OK");
}

/// Stands in for a second rrun in the cgroup of the test above: just waits to be killed.
#[test]
#[ignore = "helper: run by v2_controllers_are_enabled_when_only_rruns_live_there_and_refused_beside_other_processes"]
fn idle_helper() {
    if std::env::var_os(IDLE_ENV).is_some() {
        std::thread::sleep(Duration::from_secs(60));
    }
}

// ---- Device allowlist (devices.rs): the kernel's answers to a task inside the cgroup. ----

/// Environment variable that turns [`open_helper`] on: a comma-separated list of operations.
const OPEN_ENV: &str = "RBOX_CGROUP_OPEN";

/// A folder on the root filesystem (not nodev, so only a device cgroup can refuse its nodes)
/// holding device nodes made with mknod; removed on drop.
struct Nodes(PathBuf);

impl Nodes {
    /// Makes `name` as a node of kind `S_IFCHR`/`S_IFBLK` major:minor with mode 0666.
    fn new(nodes: &[(&str, FileType, u32, u32)]) -> Nodes {
        let dir = std::env::temp_dir().join(unique("rbox-devtest-"));
        std::fs::create_dir(&dir).unwrap();
        let n = Nodes(dir);
        for &(name, kind, major, minor) in nodes {
            let r = rfs::mknodat(
                rfs::CWD,
                n.0.join(name),
                kind,
                rfs::Mode::from_raw_mode(0o666),
                rfs::makedev(major, minor),
            );
            assert!(r.is_ok(), "mknod {name}: {r:?}");
            std::fs::set_permissions(
                n.0.join(name),
                std::os::unix::fs::PermissionsExt::from_mode(0o666),
            )
            .unwrap();
        }
        n
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts [`open_helper`] waiting on stdin, puts it into `cg`, lets it run `ops` and returns
/// "op=OK" / "op=E<errno>" per operation.
fn ops_in(g: &mut Guard, cg: &Cgroup, ops: &[String]) -> Vec<String> {
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "cgroups::tests::open_helper",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(OPEN_ENV, ops.join(","))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    g.children.push(child);
    cg.add_pid(pid).unwrap();
    release(g, pid);
    let (st, out) = finish(g, pid, 30);
    assert!(st.success(), "helper failed: {out}");
    // The harness prints "test ... " before the helper's first line, without a newline.
    out.lines()
        .filter_map(|l| l.find("RESULT ").map(|i| l[i + 7..].to_string()))
        .collect()
}

/// Runs only inside the child process [`ops_in`] starts: waits for a line on stdin (so the test
/// can place it into a cgroup first), then performs each operation of $RBOX_CGROUP_OPEN:
/// `r:PATH` open for reading, `w:PATH` open for writing, `mknod:PATH` make a char node 1:11.
/// Nothing is read from or written to any device.
#[test]
#[ignore = "helper: run by the device allowlist tests"]
fn open_helper() {
    let Ok(list) = std::env::var(OPEN_ENV) else {
        return;
    };
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    for op in list.split(',') {
        let (kind, path) = op.split_once(':').unwrap();
        let r = match kind {
            "r" => std::fs::File::open(path).map(drop),
            "w" => std::fs::OpenOptions::new().write(true).open(path).map(drop),
            "mknod" => {
                let mode = rfs::Mode::from_raw_mode(0o600);
                rfs::mknodat(
                    rfs::CWD,
                    path,
                    FileType::CharacterDevice,
                    mode,
                    rfs::makedev(1, 11),
                )
                .map_err(std::io::Error::from)
            }
            k => panic!("unknown operation {k}"),
        };
        match r {
            Ok(()) => println!("RESULT {op}=OK"),
            Err(e) => println!("RESULT {op}=E{}", e.raw_os_error().unwrap_or(0)),
        }
    }
}

const EPERM: &str = "E1";

/// kvm (c 10:232), kmsg (c 1:11) and loop0 (b 7:0) nodes and the operations that must be
/// refused, plus the standard devices and a mknod that must work: (operation, answer).
fn allowlist_checks(n: &Nodes) -> Vec<(String, &'static str)> {
    vec![
        (format!("r:{}", n.path("kvm")), EPERM),
        (format!("r:{}", n.path("kmsg")), EPERM),
        (format!("w:{}", n.path("kmsg")), EPERM),
        (format!("r:{}", n.path("loop0")), EPERM),
        ("r:/dev/null".into(), "OK"),
        ("w:/dev/null".into(), "OK"),
        ("r:/dev/zero".into(), "OK"),
        ("r:/dev/urandom".into(), "OK"),
        ("w:/dev/full".into(), "OK"),
        ("r:/dev/ptmx".into(), "OK"),
        (format!("mknod:{}", n.path("made")), "OK"),
    ]
}

fn scratch_nodes() -> Nodes {
    Nodes::new(&[
        ("kvm", FileType::CharacterDevice, 10, 232),
        ("kmsg", FileType::CharacterDevice, 1, 11),
        ("loop0", FileType::BlockDevice, 7, 0),
    ])
}

/// Runs [`allowlist_checks`] in `cg` and compares every answer.
fn assert_allowlist(g: &mut Guard, cg: &Cgroup, n: &Nodes) {
    let checks = allowlist_checks(n);
    let ops: Vec<String> = checks.iter().map(|c| c.0.clone()).collect();
    let got = ops_in(g, cg, &ops);
    let want: Vec<String> = checks.iter().map(|(op, r)| format!("{op}={r}")).collect();
    assert_eq!(got, want);
}

#[test]
fn outside_any_device_filter_the_scratch_nodes_open() {
    // The control for the tests below: without a device filter the same helper (root, all
    // capabilities) opens every node they use (nothing is read or written), so their EPERM
    // comes from the cgroup, not from the node or its driver.
    let mut g = Guard::new("devctl");
    let n = scratch_nodes();
    let cg = Cgroup::create(&g.name, &Limits::default()).unwrap();
    let ops: Vec<String> = allowlist_checks(&n).into_iter().map(|c| c.0).collect();
    let got = ops_in(&mut g, &cg, &ops);
    let want: Vec<String> = ops.iter().map(|op| format!("{op}=OK")).collect();
    assert_eq!(got, want);
}

#[test]
fn the_kernel_verifier_accepts_the_program_of_any_rule_set() {
    require_root();
    for rules in devices::unit::odd_rule_sets() {
        let p = devices::program(&rules);
        if let Err(e) = bpf::load_device_program(&p, "rbox_test") {
            panic!("{rules:?}: {} ({})", e.source, e.verifier);
        }
    }
}

#[test]
fn the_device_program_on_the_v2_cgroup_allows_only_the_default_devices() {
    let mut g = Guard::new("devbpf");
    let hs = detect::detect().unwrap();
    assert!(
        hs.iter().any(|h| h.version == Version::V2 && h.writable),
        "this machine mounts a cgroup v2 hierarchy (hybrid): the program goes there"
    );
    let n = scratch_nodes();
    let cg = Cgroup::create(
        &g.name,
        &Limits {
            devices: true,
            ..Limits::default()
        },
    )
    .unwrap();
    // Only the v2 directory: the program did the job, no v1 devices cgroup was needed.
    assert_eq!(cg.paths().len(), 1, "{:?}", cg.paths());
    let dir = &cg.paths()[0];
    assert_eq!(
        bpf::device_program_count(dir, 0).unwrap(),
        1,
        "one program attached"
    );
    assert_allowlist(&mut g, &cg, &n);
    // A child cgroup the container might make inherits the program.
    let sub = dir.join("inner");
    std::fs::create_dir(&sub).unwrap();
    assert_eq!(bpf::device_program_count(&sub, 0).unwrap(), 0);
    assert_eq!(
        bpf::device_program_count(&sub, bpf::BPF_F_QUERY_EFFECTIVE).unwrap(),
        1,
        "the child runs its parent's program"
    );
    std::fs::remove_dir(&sub).unwrap();
}

#[test]
fn the_v1_devices_cgroup_lists_and_enforces_only_the_default_devices() {
    let mut g = Guard::new("devv1");
    let n = scratch_nodes();
    // A pure v1 machine: the same hierarchies without the unified one.
    let mut hs = detect::detect().unwrap();
    hs.retain(|h| h.version == Version::V1);
    let cg = Cgroup::create_in(
        &hs,
        &g.name,
        &Limits {
            devices: true,
            ..Limits::default()
        },
    )
    .unwrap();
    let d = with_file(cg.paths(), "devices.list").expect("a v1 devices cgroup");
    assert_eq!(
        read(&d.join("devices.list")),
        devices::DEFAULT
            .iter()
            .map(devices::Rule::v1_line)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_allowlist(&mut g, &cg, &n);
}

#[test]
fn a_refused_device_program_falls_back_to_the_v1_devices_controller() {
    let mut g = Guard::new("devfb");
    // A "v2 hierarchy" that is a plain directory: the kernel refuses to attach a program there.
    let fake = std::env::temp_dir().join(unique("rbox-cgtest-"));
    std::fs::create_dir(&fake).unwrap();
    g.dirs.push(fake.clone());
    let mut hs = detect::detect().unwrap();
    hs.retain(|h| h.version == Version::V1);
    hs.push(Hierarchy {
        version: Version::V2,
        controllers: vec![],
        mount: fake.clone(),
        own: fake.clone(),
        writable: true,
    });
    let cg = Cgroup::create_in(
        &hs,
        &g.name,
        &Limits {
            devices: true,
            ..Limits::default()
        },
    )
    .unwrap();
    g.dirs.insert(1, fake.join(format!("rbox-{}", g.name)));
    let d = with_file(cg.paths(), "devices.list").expect("the v1 devices cgroup took over");
    assert!(read(&d.join("devices.list")).starts_with("c *:* m\nb *:* m\nc 1:3 rwm"));
}

#[test]
fn without_any_device_control_create_fails_with_one_line_and_leaves_nothing() {
    let mut g = Guard::new("devnone");
    let fake = std::env::temp_dir().join(unique("rbox-cgtest-"));
    std::fs::create_dir(&fake).unwrap();
    g.dirs.push(fake.clone());
    let mut hs = detect::detect().unwrap();
    hs.retain(|h| h.version == Version::V1 && !h.has("devices"));
    hs.push(Hierarchy {
        version: Version::V2,
        controllers: vec![],
        mount: fake.clone(),
        own: fake.clone(),
        writable: true,
    });
    let e = Cgroup::create_in(
        &hs,
        &g.name,
        &Limits {
            devices: true,
            pids: Some(10),
            ..Limits::default()
        },
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, CgroupError::NoDeviceControl { .. }), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
    assert!(
        msg.contains("cannot attach the container's device filter"),
        "{msg}"
    );
    assert!(
        msg.contains("no writable cgroup v1 devices hierarchy"),
        "{msg}"
    );
    assert!(
        leftovers(&g.name).is_empty(),
        "left: {:?}",
        leftovers(&g.name)
    );
    assert!(!fake.join(format!("rbox-{}", g.name)).exists());
}
