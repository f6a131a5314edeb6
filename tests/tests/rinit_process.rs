//! rinit-only process behaviour: its name, its file descriptors, its command line, the static
//! binary and its size, stopping what is left when the command ends (only its own descendants
//! when it is not PID 1), and memory that stays flat while it reaps.

mod rinit_support;

use rbox_tests::{require_root, Scratch};
use rinit_support::*;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

const SEC: Duration = Duration::from_secs(1);

fn rinit() -> Command {
    rbox_tests::command(rbox_tests::bin("rinit"))
}

/// True while `pid` is a live (not zombie) process.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

#[test]
fn rinit_names_itself_rinit_whatever_its_file_is_called() {
    require_root();
    let probe = probe();
    let f = run(
        init_command(
            Init::Rinit,
            Mode::Pid1,
            false,
            &[probe.as_os_str(), "cat".as_ref(), "/proc/1/comm".as_ref()],
        ),
        20 * SEC,
    );
    assert_eq!(
        (f.code(), f.stdout.as_str()),
        (0, "rinit\n"),
        "{}",
        f.stderr
    );
    // Run from a file with another name (rrun runs it from a memfd): comm is still rinit.
    let scratch = Scratch::new("rinit-comm");
    let renamed = scratch.join("some-other-name");
    std::fs::copy(rbox_tests::bin("rinit"), &renamed).expect("copy rinit");
    let mut c = rbox_tests::command(&renamed);
    c.args(["--", "/bin/sh", "-c", "cat /proc/$PPID/comm"]);
    let f = run(c, 20 * SEC);
    assert_eq!(
        (f.code(), f.stdout.as_str()),
        (0, "rinit\n"),
        "{}",
        f.stderr
    );
}

#[test]
fn rinit_holds_and_passes_on_only_stdin_stdout_and_stderr() {
    require_root();
    let probe = probe();
    let script = format!(
        "echo \"init $(ls /proc/$PPID/fd | tr '\\n' ' ')\"; echo \"command $({} fds)\"",
        probe.display()
    );
    for mode in [Mode::Pid1, Mode::Subreaper] {
        let mut c = init_command(Init::Rinit, mode, false, &["/bin/sh", "-c", &script]);
        // Leak a descriptor into the init the way a careless parent would: fd 7, no CLOEXEC.
        let file = std::fs::File::open("/etc/hostname").expect("open a file to leak");
        let raw = std::os::fd::AsRawFd::as_raw_fd(&file);
        // SAFETY: in the forked child the closure only calls dup2 (async-signal-safe) and
        // allocates nothing; `raw` is open there (inherited), and the OwnedFd for 7 is
        // forgotten, never closed.
        unsafe {
            c.pre_exec(move || {
                use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};
                let mut seven = OwnedFd::from_raw_fd(7);
                let r = rustix::io::dup2(BorrowedFd::borrow_raw(raw), &mut seven);
                std::mem::forget(seven);
                Ok(r?)
            });
        }
        let f = run(c, 20 * SEC);
        drop(file);
        assert_eq!(f.code(), 0, "{mode:?}: {}", f.stderr);
        assert_eq!(f.stdout, "init 0 1 2 \ncommand 0 1 2\n", "{mode:?}");
    }
}

#[test]
fn rinit_explains_bad_usage_in_one_line_and_exits_125() {
    let f = run(
        {
            let mut c = rinit();
            c.arg("--help");
            c
        },
        10 * SEC,
    );
    assert_eq!(f.code(), 0);
    assert!(
        f.stdout
            .starts_with("usage: rinit [-g] [-s] [--] COMMAND [ARG...]\n"),
        "{}",
        f.stdout
    );
    let f = run(
        {
            let mut c = rinit();
            c.arg("-V");
            c
        },
        10 * SEC,
    );
    assert_eq!(
        (f.code(), f.stdout.trim()),
        (0, concat!("rinit ", env!("CARGO_PKG_VERSION")))
    );
    for (args, message) in [
        (
            &["-x", "true"][..],
            "rinit: unknown option -x (usage: rinit [-g] [-s] [--] COMMAND [ARG...])\n",
        ),
        (
            &["--frobnicate"][..],
            "rinit: unknown option --frobnicate (usage: rinit [-g] [-s] [--] COMMAND [ARG...])\n",
        ),
        (
            &[][..],
            "rinit: missing COMMAND (usage: rinit [-g] [-s] [--] COMMAND [ARG...])\n",
        ),
        (
            &["-g", "--"][..],
            "rinit: missing COMMAND (usage: rinit [-g] [-s] [--] COMMAND [ARG...])\n",
        ),
    ] {
        let mut c = rinit();
        c.args(args);
        let f = run(c, 10 * SEC);
        assert_eq!(
            (f.code(), f.stderr.as_str()),
            (125, message),
            "rinit {args:?}"
        );
    }
    // Not-UTF-8 bytes are just bytes: still one line, no panic.
    let mut c = rinit();
    c.arg(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"-\xff"));
    let f = run(c, 10 * SEC);
    assert_eq!(f.code(), 125);
    assert_eq!(f.stderr.lines().count(), 1, "{:?}", f.stderr);
}

#[test]
fn rinit_is_a_static_binary_smaller_than_tini_static_and_catatonit() {
    let path = rbox_tests::bin("rinit");
    let file = rbox_tests::command("file")
        .arg("-L")
        .arg(&path)
        .output()
        .expect("file(1) (apt-get install file)");
    let file = String::from_utf8_lossy(&file.stdout);
    assert!(
        file.contains("statically linked") || file.contains("static-pie linked"),
        "file says: {file}"
    );
    let ldd = rbox_tests::command("ldd").arg(&path).output().expect("ldd");
    let ldd = format!(
        "{}{}",
        String::from_utf8_lossy(&ldd.stdout),
        String::from_utf8_lossy(&ldd.stderr)
    );
    assert!(
        ldd.contains("not a dynamic executable") || ldd.contains("statically linked"),
        "ldd says: {ldd}"
    );
    let size = std::fs::metadata(&path).expect("stat rinit").len();
    // Debian 12's tini-static and catatonit; the files themselves when they are installed.
    for (other, known) in [
        ("/usr/bin/tini-static", 708_080),
        ("/usr/bin/catatonit", 699_160),
    ] {
        let theirs = std::fs::metadata(other).map_or(known, |m| m.len());
        assert!(size < theirs, "rinit is {size} bytes, {other} {theirs}");
    }
}

#[test]
fn rinit_as_pid1_sends_sigterm_to_the_rest_then_sigkill_after_a_grace() {
    require_root();
    let scratch = Scratch::new("rinit-stop");
    let flag = scratch.join("got-term");
    // One leftover ends on SIGTERM (and says so), one ignores it and needs SIGKILL.
    let script = format!(
        "(trap 'echo got-term > {}; exit 0' TERM; while :; do sleep 0.05; done) &
         (trap '' TERM; exec sleep 1000) &
         sleep 0.3; exit 5",
        flag.display()
    );
    let f = run(
        init_command(Init::Rinit, Mode::Pid1, false, &["/bin/sh", "-c", &script]),
        30 * SEC,
    );
    assert_eq!(f.code(), 5, "the command's status: {}", f.stderr);
    assert_eq!(
        std::fs::read_to_string(&flag).ok().as_deref(),
        Some("got-term\n"),
        "SIGTERM reached the leftover"
    );
    assert!(
        f.elapsed >= Duration::from_millis(1_900),
        "a grace before SIGKILL: {:?}",
        f.elapsed
    );
    assert!(
        f.elapsed < 8 * SEC,
        "SIGKILL after the grace: {:?}",
        f.elapsed
    );
}

#[test]
fn rinit_as_subreaper_stops_its_own_descendants_and_nothing_else() {
    require_root();
    // A process of the same user that is not rinit's descendant must survive.
    let mut bystander = rbox_tests::command("sleep")
        .arg("60")
        .stdin(Stdio::null())
        .spawn()
        .expect("sleep");
    let script = "sleep 1000 & echo $!; (trap '' TERM; exec sleep 1000) & echo $!; \
                  sh -c 'sleep 1000 & echo $!; wait' & sleep 0.3; exit 4";
    let f = run(
        {
            let mut c = rinit();
            c.args(["-s", "--", "/bin/sh", "-c", script]);
            c
        },
        30 * SEC,
    );
    let bystander_alive = alive(bystander.id() as i32);
    let _ = bystander.kill();
    let _ = bystander.wait();
    assert_eq!(f.code(), 4, "{}", f.stderr);
    assert!(
        bystander_alive,
        "rinit must not signal processes outside its own tree"
    );
    let pids: Vec<i32> = f
        .stdout
        .lines()
        .map(|l| l.parse().expect("a pid"))
        .collect();
    assert_eq!(pids.len(), 3, "{}", f.stdout);
    for pid in pids {
        assert!(!alive(pid), "descendant {pid} outlived rinit");
    }
    assert!(
        f.elapsed >= Duration::from_millis(1_900),
        "a grace before SIGKILL: {:?}",
        f.elapsed
    );
    assert!(f.elapsed < 8 * SEC, "{:?}", f.elapsed);
}

#[test]
fn rinit_exits_at_once_when_nothing_is_left() {
    require_root();
    for mode in [Mode::Pid1, Mode::Subreaper] {
        let f = run(
            init_command(
                Init::Rinit,
                mode,
                false,
                &["/bin/sh", "-c", "sleep 0.1 & wait; exit 3"],
            ),
            20 * SEC,
        );
        assert_eq!(f.code(), 3);
        // The grace is 2 s: well under it means rinit did not wait for nothing.
        assert!(
            f.elapsed < SEC * 3 / 2,
            "{mode:?}: no grace period when nothing is left: {:?}",
            f.elapsed
        );
    }
}

#[test]
fn rinit_memory_stays_flat_while_it_reaps_10000_orphans() {
    require_root();
    let probe = probe();
    let script = format!(
        "{p} storm 100 $PPID >/dev/null && grep VmHWM /proc/$PPID/status && \
         {p} storm 10000 $PPID && grep VmHWM /proc/$PPID/status",
        p = probe.display()
    );
    let f = run(
        {
            let mut c = rinit();
            c.args(["-s", "--", "/bin/sh", "-c", &script]);
            c
        },
        240 * SEC,
    );
    assert_eq!(f.code(), 0, "{}\n{}", f.stdout, f.stderr);
    let hwm: Vec<u64> = f
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("VmHWM:"))
        .map(|v| v.trim().trim_end_matches(" kB").trim().parse().expect("kB"))
        .collect();
    assert_eq!(hwm.len(), 2, "{}", f.stdout);
    assert!(
        hwm[1] <= hwm[0] + 4,
        "peak RSS grew from {} kB to {} kB over 10,000 reaps",
        hwm[0],
        hwm[1]
    );
    assert!(hwm[1] < 1024, "rinit's peak RSS is {} kB", hwm[1]);
}

#[test]
fn rinit_with_a_broken_stderr_still_exits_with_the_commands_status() {
    // stderr is a pipe nobody reads: writing the message raises SIGPIPE, which must neither
    // kill the child reporting the failed exec nor be forwarded later.
    for (args, want) in [
        (&["no-such-command-here"][..], 127),
        (&["-s", "--", "/bin/sh", "-c", "exit 3"][..], 3),
        (&["-x"][..], 125),
    ] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let mut c = rinit();
        c.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(writer);
        let mut child = c.spawn().expect("start rinit");
        drop(c);
        let status = wait_or_kill(&mut child, 10 * SEC, &args);
        assert_eq!(status.code(), Some(want), "rinit {args:?}");
    }
}
