//! The init behaviour suite, run against rinit and against Debian's tini-static (module names
//! say which), each as PID 1 of a fresh pid+mount namespace and as a plain subreaper: exit
//! codes, deaths by signal, 126/127, an orphan storm, signal forwarding (to the child, and with
//! -g to its process group) and an interactive shell on a pseudo-terminal. tini passing the
//! same tests shows they test something real; rinit must pass everything tini passes.

mod rinit_support;

use rinit_support::*;
use std::process::Stdio;
use std::time::Duration;

const SEC: Duration = Duration::from_secs(1);

fn exit_codes_pass_through(init: Init, mode: Mode) {
    rbox_tests::require_root();
    let probe = probe();
    for code in 0..=255 {
        let code_s = code.to_string();
        let f = run(
            init_command(
                init,
                mode,
                false,
                &[probe.as_os_str(), "exit".as_ref(), code_s.as_ref()],
            ),
            20 * SEC,
        );
        assert_eq!(
            f.code(),
            code,
            "{init:?} {mode:?}: `exit {code}` came back as {}; stderr: {}",
            f.code(),
            f.stderr
        );
    }
}

fn signal_deaths_exit_128_plus_n(init: Init, mode: Mode) {
    rbox_tests::require_root();
    let probe = probe();
    // HUP INT QUIT ABRT KILL USR1 SEGV USR2 PIPE ALRM TERM
    for sig in [1, 2, 3, 6, 9, 10, 11, 12, 13, 14, 15] {
        let sig_s = sig.to_string();
        let f = run(
            init_command(
                init,
                mode,
                false,
                &[probe.as_os_str(), "raise".as_ref(), sig_s.as_ref()],
            ),
            20 * SEC,
        );
        assert_eq!(
            f.code(),
            128 + sig,
            "{init:?} {mode:?}: a command killed by signal {sig}; stderr: {}",
            f.stderr
        );
    }
}

fn missing_commands_exit_127(init: Init, mode: Mode) {
    rbox_tests::require_root();
    let name = rbox_tests::unique("no-such-command-");
    let f = run(init_command(init, mode, false, &[&name]), 20 * SEC);
    assert_eq!(f.code(), 127, "{init:?} {mode:?}: stderr: {}", f.stderr);
    assert!(
        f.stderr.contains(&name),
        "the message names the command: {:?}",
        f.stderr
    );
    let path = format!("/nonexistent/{name}");
    let f = run(init_command(init, mode, false, &[&path]), 20 * SEC);
    assert_eq!(f.code(), 127, "{init:?} {mode:?}: stderr: {}", f.stderr);
    assert!(
        f.stderr.contains(&path),
        "the message names the path: {:?}",
        f.stderr
    );
}

fn unexecutable_commands_exit_126(init: Init, mode: Mode) {
    rbox_tests::require_root();
    for path in ["/etc/passwd", "/"] {
        let f = run(init_command(init, mode, false, &[path]), 20 * SEC);
        assert_eq!(
            f.code(),
            126,
            "{init:?} {mode:?}: exec {path}; stderr: {}",
            f.stderr
        );
        assert!(
            f.stderr.contains(path),
            "the message names {path}: {:?}",
            f.stderr
        );
    }
}

fn orphan_storm_leaves_no_zombie(init: Init, mode: Mode) {
    rbox_tests::require_root();
    let probe = probe();
    let f = run(
        init_command(
            init,
            mode,
            false,
            &[probe.as_os_str(), "storm".as_ref(), "10000".as_ref()],
        ),
        240 * SEC,
    );
    assert!(
        f.stdout.contains("orphans=10000 reparented=10000 elsewhere=0 zombies=0"),
        "{init:?} {mode:?}: every orphan must come to the init and be reaped; got {:?} (stderr {:?})",
        f.stdout,
        f.stderr
    );
    assert_eq!(f.code(), 0);
}

fn zombies_of_a_process_that_joined_later_are_reaped(init: Init) {
    rbox_tests::require_root();
    let probe = probe();
    // The init's command just waits; a process then joins the namespaces from outside (as
    // `rrun exec` does) and makes orphans, which must come to PID 1 and be reaped.
    let mut c = init_command(
        init,
        Mode::Pid1,
        false,
        &["/bin/sh", "-c", "echo up; sleep 60"],
    );
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the init");
    let mut lines = Lines::of(child.stdout.take().expect("stdout"));
    lines.expect("up", 10 * SEC);
    let pid = init_pid(&child, Mode::Pid1).to_string();
    let mut join = rbox_tests::command("nsenter");
    join.args(["--target", &pid, "--pid", "--mount", "--"])
        .arg(&probe)
        .args(["storm", "1000", "1"]);
    let f = run(join, 60 * SEC);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        f.stdout
            .contains("orphans=1000 reparented=1000 elsewhere=0 zombies=0"),
        "{init:?}: orphans of a joined process; got {:?} (stderr {:?})",
        f.stdout,
        f.stderr
    );
}

fn the_command_starts_with_the_signal_mask_and_dispositions_the_init_got(init: Init, mode: Mode) {
    rbox_tests::require_root();
    let probe = probe();
    let status = [
        probe.as_os_str(),
        "cat".as_ref(),
        "/proc/self/status".as_ref(),
    ];
    let fields = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("SigBlk:") || l.starts_with("SigIgn:"))
            .map(String::from)
            .collect()
    };
    // What the probe sees when the test starts it directly, with no init in between.
    let mut direct = rbox_tests::command(status[0]);
    direct.args(&status[1..]);
    let baseline = fields(&run(direct, 20 * SEC).stdout);
    assert_eq!(baseline.len(), 2, "SigBlk and SigIgn in /proc/self/status");
    assert!(
        baseline.contains(&"SigBlk:\t0000000000000000".to_string()),
        "{baseline:?}"
    );
    let f = run(init_command(init, mode, false, &status), 20 * SEC);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert_eq!(
        fields(&f.stdout),
        baseline,
        "{init:?} {mode:?}: the init must not leave signals blocked or ignored"
    );
}

/// A shell script that reports every signal it catches; TERM ends it with 42.
const TRAPS: &str = r#"
for s in HUP INT QUIT USR1 USR2 WINCH CONT; do trap "echo got-$s" $s; done
trap 'echo got-TERM; exit 42' TERM
echo ready
i=0; while [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
"#;

fn forwards_each_signal_to_the_child(init: Init, mode: Mode) {
    rbox_tests::require_root();
    let mut c = init_command(init, mode, false, &["/bin/sh", "-c", TRAPS]);
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the init");
    let mut lines = Lines::of(child.stdout.take().expect("stdout"));
    lines.expect("ready", 10 * SEC);
    let pid = init_pid(&child, mode);
    for (sig, name) in [
        (1, "HUP"),
        (2, "INT"),
        (3, "QUIT"),
        (10, "USR1"),
        (12, "USR2"),
        (28, "WINCH"),
        (18, "CONT"),
    ] {
        send(pid, sig);
        lines.expect(&format!("got-{name}"), 5 * SEC);
    }
    send(pid, 15);
    lines.expect("got-TERM", 5 * SEC);
    let status = wait_or_kill(&mut child, 10 * SEC, &"the init after SIGTERM");
    assert_eq!(
        status.code(),
        Some(42),
        "{init:?} {mode:?}: the child's exit code after TERM"
    );
}

/// A shell with a grandchild in its process group; both report USR1.
const FAMILY: &str = r#"
sh -c 'trap "echo gc-got-USR1; exit 0" USR1; echo gc-ready; i=0; while [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done' &
echo "gc-pid $!"
trap 'echo parent-got-USR1' USR1
echo parent-ready
i=0; while [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
"#;

fn group_signals(init: Init, mode: Mode, group: bool) {
    rbox_tests::require_root();
    let mut c = init_command(init, mode, group, &["/bin/sh", "-c", FAMILY]);
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the init");
    let mut lines = Lines::of(child.stdout.take().expect("stdout"));
    lines.expect("parent-ready", 10 * SEC);
    lines.expect("gc-ready", 10 * SEC);
    let pid = init_pid(&child, mode);
    send(pid, 10);
    lines.expect("parent-got-USR1", 5 * SEC);
    if group {
        lines.expect("gc-got-USR1", 5 * SEC);
    } else {
        lines.gather(SEC);
        assert!(
            !lines.seen.iter().any(|l| l == "gc-got-USR1"),
            "without -g the grandchild must not get USR1"
        );
    }
    send(pid, 15); // the parent has no TERM trap: it dies, and the init exits 143
    let status = wait_or_kill(&mut child, 10 * SEC, &"the init after SIGTERM");
    assert_eq!(status.code(), Some(143), "{init:?} {mode:?}");
    if mode == Mode::Subreaper && !group {
        // tini leaves the grandchild running: end it (its pid is a host pid here).
        if let Some(gc) = lines.seen.iter().find_map(|l| l.strip_prefix("gc-pid ")) {
            let _ = rbox_tests::command("kill")
                .arg(gc)
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn interactive_shell_on_a_pty(init: Init, mode: Mode) {
    rbox_tests::require_root();
    let mut c = init_command(init, mode, false, &["/bin/sh", "-i"]);
    c.env("PS1", "$ ");
    let mut pty = Pty::spawn(c);
    std::thread::sleep(SEC / 2);
    pty.type_in("echo hi-$((40+2))\n");
    pty.expect("hi-42", 10 * SEC);
    // The terminal's foreground process group (tpgid) is not the init's own group, so
    // what the terminal sends (Ctrl-C, Ctrl-Z) reaches the job and not the init.
    pty.type_in("set -- $(cut -d' ' -f5,8 /proc/$PPID/stat); [ $1 != $2 ] && echo init-in-background-$((5+5))\n");
    pty.expect("init-in-background-10", 5 * SEC);
    // Ctrl-C ends the foreground sleep, not the shell, not the init.
    pty.type_in("sleep 30\n");
    pty.wait_for_foreground("sleep", 10 * SEC);
    pty.type_in("\x03");
    std::thread::sleep(SEC / 5);
    pty.type_in("echo alive-$((1+1))\n");
    pty.expect("alive-2", 5 * SEC);
    // Ctrl-Z stops the foreground job and gives the terminal back to the shell.
    pty.type_in("sleep 30\n");
    pty.wait_for_foreground("sleep", 10 * SEC);
    pty.type_in("\x1a");
    std::thread::sleep(SEC / 5);
    pty.type_in("echo back-$((2+3))\n");
    pty.expect("back-5", 5 * SEC);
    pty.type_in("kill -9 %1; wait; echo killed-$((3+4))\n");
    pty.expect("killed-7", 5 * SEC);
    // dash refuses the first `exit` while it still lists the (killed) stopped job.
    pty.type_in("exit 3\n");
    if pty.wait_briefly(2 * SEC).is_none() {
        pty.type_in("exit 3\n");
    }
    let status = pty.wait(10 * SEC);
    assert_eq!(
        status.code(),
        Some(3),
        "{init:?} {mode:?}: the shell's exit status"
    );
}

fn the_command_gets_its_own_process_group_and_the_terminal(init: Init, mode: Mode) {
    rbox_tests::require_root();
    // A non-interactive shell never touches the terminal itself: what it reports is what the
    // init set up. Fields 5 and 8 of /proc/PID/stat are pgrp and the terminal's tpgid.
    let script = "set -- $(cut -d' ' -f5,8 /proc/$$/stat) $(cut -d' ' -f5 /proc/$PPID/stat); \
                  [ $1 = $2 ] && echo child-owns-terminal-$((1+1)); \
                  [ $1 != $3 ] && echo child-has-own-group-$((2+2)); exit 7";
    let mut pty = Pty::spawn(init_command(init, mode, false, &["/bin/sh", "-c", script]));
    let status = pty.wait(10 * SEC);
    pty.expect("child-owns-terminal-2", 5 * SEC);
    pty.expect("child-has-own-group-4", 5 * SEC);
    assert_eq!(status.code(), Some(7), "{init:?} {mode:?}");
}

macro_rules! behaviour_suite {
    ($name:ident, $init:expr) => {
        mod $name {
            use super::*;
            const INIT: Init = $init;

            #[test]
            fn exit_codes_0_to_255_pass_through_as_pid1() {
                exit_codes_pass_through(INIT, Mode::Pid1)
            }
            #[test]
            fn exit_codes_0_to_255_pass_through_as_subreaper() {
                exit_codes_pass_through(INIT, Mode::Subreaper)
            }
            #[test]
            fn a_command_killed_by_signal_n_exits_128_plus_n_as_pid1() {
                signal_deaths_exit_128_plus_n(INIT, Mode::Pid1)
            }
            #[test]
            fn a_command_killed_by_signal_n_exits_128_plus_n_as_subreaper() {
                signal_deaths_exit_128_plus_n(INIT, Mode::Subreaper)
            }
            #[test]
            fn a_missing_command_exits_127_with_a_message_as_pid1() {
                missing_commands_exit_127(INIT, Mode::Pid1)
            }
            #[test]
            fn a_missing_command_exits_127_with_a_message_as_subreaper() {
                missing_commands_exit_127(INIT, Mode::Subreaper)
            }
            #[test]
            fn an_unexecutable_command_exits_126_with_a_message_as_pid1() {
                unexecutable_commands_exit_126(INIT, Mode::Pid1)
            }
            #[test]
            fn an_unexecutable_command_exits_126_with_a_message_as_subreaper() {
                unexecutable_commands_exit_126(INIT, Mode::Subreaper)
            }
            #[test]
            fn an_orphan_storm_of_10000_leaves_no_zombie_as_pid1() {
                orphan_storm_leaves_no_zombie(INIT, Mode::Pid1)
            }
            #[test]
            fn an_orphan_storm_of_10000_leaves_no_zombie_as_subreaper() {
                orphan_storm_leaves_no_zombie(INIT, Mode::Subreaper)
            }
            #[test]
            fn zombies_of_a_process_that_joined_later_are_reaped_as_pid1() {
                zombies_of_a_process_that_joined_later_are_reaped(INIT)
            }
            #[test]
            fn the_command_starts_with_the_signal_mask_and_dispositions_the_init_got_as_pid1() {
                the_command_starts_with_the_signal_mask_and_dispositions_the_init_got(
                    INIT,
                    Mode::Pid1,
                )
            }
            #[test]
            fn the_command_starts_with_the_signal_mask_and_dispositions_the_init_got_as_subreaper()
            {
                the_command_starts_with_the_signal_mask_and_dispositions_the_init_got(
                    INIT,
                    Mode::Subreaper,
                )
            }
            #[test]
            fn each_signal_is_forwarded_to_the_child_as_pid1() {
                forwards_each_signal_to_the_child(INIT, Mode::Pid1)
            }
            #[test]
            fn each_signal_is_forwarded_to_the_child_as_subreaper() {
                forwards_each_signal_to_the_child(INIT, Mode::Subreaper)
            }
            #[test]
            fn with_g_a_signal_reaches_a_grandchild_as_pid1() {
                group_signals(INIT, Mode::Pid1, true)
            }
            #[test]
            fn with_g_a_signal_reaches_a_grandchild_as_subreaper() {
                group_signals(INIT, Mode::Subreaper, true)
            }
            #[test]
            fn without_g_a_signal_reaches_only_the_child_as_pid1() {
                group_signals(INIT, Mode::Pid1, false)
            }
            #[test]
            fn without_g_a_signal_reaches_only_the_child_as_subreaper() {
                group_signals(INIT, Mode::Subreaper, false)
            }
            #[test]
            fn the_command_gets_its_own_process_group_and_the_terminal_as_pid1() {
                the_command_gets_its_own_process_group_and_the_terminal(INIT, Mode::Pid1)
            }
            #[test]
            fn the_command_gets_its_own_process_group_and_the_terminal_as_subreaper() {
                the_command_gets_its_own_process_group_and_the_terminal(INIT, Mode::Subreaper)
            }
            #[test]
            fn an_interactive_shell_answers_and_ctrl_c_ctrl_z_reach_the_job_as_pid1() {
                interactive_shell_on_a_pty(INIT, Mode::Pid1)
            }
            #[test]
            fn an_interactive_shell_answers_and_ctrl_c_ctrl_z_reach_the_job_as_subreaper() {
                interactive_shell_on_a_pty(INIT, Mode::Subreaper)
            }
        }
    };
}

behaviour_suite!(rinit, Init::Rinit);
behaviour_suite!(tini, Init::Tini);
