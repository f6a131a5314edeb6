//! `--ulimit NAME=SOFT[:HARD]`: the container's processes (its command and `exec`) get the
//! limits asked for; a value above what rrun may set is one line and nothing is created.

mod rrun_common;

use std::process::Output;

use rbox_tests::unique;
use rrun_common::user::User;
use rrun_common::{output, Lab};

/// A container started detached (`--net none`, `opts`, `sleep 1000`), `sh -c SCRIPT` run in
/// it through `rrun exec`, then the container removed: the start's output and exec's.
fn exec_in_detached(lab: &Lab, opts: &[&str], script: &str) -> (Output, Output) {
    let name = unique("ulimd");
    let mut c = lab.rrun();
    c.args(["-d", "--name", &name, "--net", "none"])
        .args(opts)
        .args(["--image", &lab.image, "--", "sleep", "1000"]);
    let started = output(c, 60);
    let mut c = lab.rrun();
    c.args(["exec", &name, "sh", "-c", script]);
    let exec = output(c, 60);
    let mut rm = lab.rrun();
    rm.args(["rm", "-f", &name]);
    let _ = output(rm, 60);
    (started, exec)
}

/// Exit code and trimmed stdout, what a user reads.
fn said(o: &Output) -> (Option<i32>, String) {
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).trim().to_string(),
    )
}

#[test]
fn ulimits_reach_the_command_and_exec() {
    let lab = Lab::new("ulim");
    let got = lab.ok(
        &["--ulimit", "nofile=100:200", "--ulimit", "core=0"],
        &["sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c"],
    );
    assert_eq!(got, "100\n200\n0");
    let (started, o) = exec_in_detached(&lab, &["--ulimit", "nofile=64"], "ulimit -n; ulimit -Hn");
    assert!(started.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "64\n64");
}

#[test]
fn a_limit_above_what_rrun_may_set_is_one_line_and_leaves_nothing() {
    let lab = Lab::new("ulim");
    let before = lab.container_ids();
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    for (arg, says) in [
        (format!("nofile={}", nr_open + 1), "hard limit"),
        ("nofile=10:5".to_string(), "soft limit is above"),
        ("nofiles=10".to_string(), "unknown limit"),
        ("nofile".to_string(), "NAME=SOFT[:HARD]"),
    ] {
        let o = lab.run(&["--ulimit", &arg], &["true"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(125), "{arg}: {err}");
        assert_eq!(err.lines().count(), 1, "{arg}: {err}");
        assert!(err.contains(says), "{arg}: {err}");
    }
    lab.assert_clean(&before);
}

/// A small program runs under an address-space or data limit far below rrun's own size: the
/// container's command does, and so must an exec into it (the process takes the container's
/// limits last, but rrun's own work before must not run under them either).
#[test]
fn exec_works_under_an_address_space_or_data_limit_smaller_than_rrun() {
    let lab = Lab::new("ulim");
    for (limit, show) in [("as=3000000", "ulimit -v"), ("data=300000", "ulimit -d")] {
        let (started, o) = exec_in_detached(&lab, &["--ulimit", limit], show);
        let err = String::from_utf8_lossy(&started.stderr);
        assert!(started.status.success(), "{err}");
        let kib = limit.split_once('=').unwrap().1.parse::<u64>().unwrap() / 1024;
        assert_eq!(
            said(&o),
            (Some(0), kib.to_string()),
            "exec under --ulimit {limit}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    lab.assert_clean(&[]);
}

/// A `nofile` limit far below what rrun's setup opens (the root's mounts, /dev's nodes, the
/// /etc files: ~30 descriptors) binds the command and exec, never the setup, as in Docker
/// (runc sets the limits once its setup is done): as root and rootless, for root and another
/// user of the image, in the foreground, detached and through exec.
#[test]
fn a_low_nofile_binds_the_command_and_exec_never_the_setup() {
    for lab in [
        Lab::new("ulimn"),
        Lab::rootless("ulimnr", User::with_range()),
    ] {
        let who = match lab.user {
            Some(_) => "rootless",
            None => "root",
        };
        for user in ["0", "405"] {
            let got = lab.run(
                &["--ulimit", "nofile=4", "-u", user],
                &["sh", "-c", "ulimit -n; ulimit -Hn"],
            );
            assert_eq!(
                said(&got),
                (Some(0), "4\n4".to_string()),
                "{who}, -u {user}, in the foreground: {}",
                String::from_utf8_lossy(&got.stderr)
            );
            let (started, exec) = exec_in_detached(
                &lab,
                &["-u", user, "--ulimit", "nofile=4"],
                "ulimit -n; ulimit -Hn",
            );
            assert!(
                started.status.success(),
                "{who}, -u {user}, detached: {}",
                String::from_utf8_lossy(&started.stderr)
            );
            assert_eq!(
                said(&exec),
                (Some(0), "4\n4".to_string()),
                "{who}, -u {user}, exec: {}",
                String::from_utf8_lossy(&exec.stderr)
            );
        }
        lab.assert_clean(&[]);
    }
}

/// `nproc` binds the container's user from its first process on (rrun sets the limits before
/// the switch to that user, which setuid(2) checks): with none left, its command cannot start.
#[test]
fn nproc_binds_the_containers_user_from_the_start() {
    let lab = Lab::new("ulimp");
    let o = lab.run(&["--ulimit", "nproc=0", "-u", "405"], &["true"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert!(err.contains("resource temporarily unavailable"), "{err}");
    let got = lab.ok(
        &["--ulimit", "nproc=5", "-u", "405"],
        &["sh", "-c", "ulimit -u"],
    );
    assert_eq!(got, "5");
    lab.assert_clean(&[]);
}
