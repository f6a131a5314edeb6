//! `update` of a running container's cgroup limits, rrun-oci against runc (Debian's) on the
//! same bundle: the memory and pids limits read back from the container's cgroup files and
//! what they do inside (a fork refused at pids.max, a memory hog killed at the new limit),
//! runc's flags and `--resources FILE` / `-` (stdin), a field rrun-oci cannot set refused in
//! one line, and a refused write half-way leaving every limit as it was. runc's size flags
//! (`--memory 64m`, `-1` for no limit) and its refusals (`-r -` with JSON that is not an
//! object, a memory value below -1) step by step beside runc. The bundle names
//! linux.cgroupsPath, so the test finds the cgroup under each v1 hierarchy (this machine's
//! hybrid layout) or the unified one.

mod ocirt_common;

use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;

use ocirt_common::{id, Bundle, Out, Runtime};
use rbox_tests::{command, require_root, unique};
use serde_json::json;

/// The container's cgroup file `file` of `controller` (v1 hierarchy if mounted, else v2).
fn cg_file(cgpath: &str, controller: &str, file: &str) -> PathBuf {
    let v1 = PathBuf::from(format!("/sys/fs/cgroup/{controller}{cgpath}"));
    match v1.is_dir() {
        true => v1.join(file),
        false => PathBuf::from(format!("/sys/fs/cgroup{cgpath}")).join(file),
    }
}

fn read(p: &PathBuf) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// A running `sleep` container with a 32 MiB memory limit (no swap) and 100 pids, in
/// cgroup `cgpath`; returns its id.
fn running(rt: &Runtime, b: &Bundle, cgpath: &str) -> String {
    b.args(&["sleep", "1000"]);
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = cgpath.into();
        c["linux"]["resources"]["memory"] = json!({"limit": 32 << 20, "swap": 32 << 20});
        c["linux"]["resources"]["pids"] = json!({"limit": 100});
    });
    let c = id("upd");
    let o = rt.run(&["create", "--bundle", b.path().to_str().unwrap(), &c]);
    assert_eq!(o.code, 0, "{} create: {}", rt.name, o.stderr);
    let o = rt.run(&["start", &c]);
    assert_eq!(o.code, 0, "{} start: {}", rt.name, o.stderr);
    c
}

/// `RUNTIME update -r - ID` with `json` on stdin.
fn update_stdin(rt: &Runtime, c: &str, json: &str) -> Out {
    let mut child = command(&rt.exe)
        .arg("--root")
        .arg(rt.root.join("state"))
        .args(["update", "-r", "-", c])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {} update: {e}", rt.name));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    Out {
        code: o.status.code().unwrap_or(128),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// One `update`: runc's flags, or JSON on stdin to `-r -`.
enum Step {
    Flags(&'static [&'static str]),
    Stdin(&'static str),
}

/// Runs `steps` in turn on a new container (32 MiB, no swap) and records after each what a
/// user sees: the exit code and the memory files. Also gives each step's stderr.
fn memory_after_each(rt: &Runtime, b: &Bundle, steps: &[Step]) -> (Vec<String>, Vec<String>) {
    let cgpath = format!("/{}", unique("ocirt-updcg-"));
    let c = running(rt, b, &cgpath);
    let mem = |f: &str| read(&cg_file(&cgpath, "memory", f));
    let (mut seen, mut errs) = (Vec::new(), Vec::new());
    for s in steps {
        let (what, o) = match s {
            Step::Flags(a) => (
                format!("{a:?}"),
                rt.run(&[&["update"], *a, &[c.as_str()]].concat()),
            ),
            Step::Stdin(j) => (format!("-r - <<< {j}"), update_stdin(rt, &c, j)),
        };
        seen.push(format!(
            "{what} -> {} limit={} memsw={} soft={}",
            o.code,
            mem("memory.limit_in_bytes"),
            mem("memory.memsw.limit_in_bytes"),
            mem("memory.soft_limit_in_bytes")
        ));
        errs.push(o.stderr.trim().to_string());
    }
    rt.cleanup(&c);
    (seen, errs)
}

/// The kernel's "no limit" as v1 memory files show it (i64::MAX rounded down to a page).
const NO_LIMIT: &str = "9223372036854771712";

#[test]
fn update_takes_sizes_and_minus_one_like_runc() {
    require_root();
    let b = Bundle::new();
    let steps = [
        Step::Flags(&["--memory", "64m", "--memory-swap", "128m"]),
        Step::Flags(&["--memory-reservation", "16m"]),
        Step::Flags(&["--memory=48MiB", "--memory-swap", "1.5g"]),
        // No memory limit lifts the swap limit too.
        Step::Flags(&["--memory", "-1"]),
        Step::Flags(&["--memory-swap", "256m", "--memory", "128M"]),
        Step::Flags(&["--memory-swap=-1"]),
        Step::Flags(&["--memory-reservation", "-1"]),
        Step::Flags(&["--kernel-memory", "-1"]),
        Step::Flags(&["--memory", "64x"]),
        Step::Flags(&["--memory", "-2"]),
    ];
    let [runc, ours] = Runtime::both();
    let (want, _) = memory_after_each(&runc, &b, &steps);
    let (got, errs) = memory_after_each(&ours, &b, &steps);
    assert_eq!(got, want, "rrun-oci (left) against runc (right)");
    let ends = |i: usize, tail: String| assert!(want[i].ends_with(&tail), "{}", want[i]);
    ends(
        0,
        format!("0 limit=67108864 memsw=134217728 soft={NO_LIMIT}"),
    );
    ends(1, "0 limit=67108864 memsw=134217728 soft=16777216".into());
    ends(2, "0 limit=50331648 memsw=1610612736 soft=16777216".into());
    ends(
        3,
        format!("0 limit={NO_LIMIT} memsw={NO_LIMIT} soft=16777216"),
    );
    ends(
        6,
        format!("0 limit=134217728 memsw={NO_LIMIT} soft={NO_LIMIT}"),
    );
    ends(
        9,
        format!("1 limit=134217728 memsw={NO_LIMIT} soft={NO_LIMIT}"),
    );
    assert_eq!(
        errs[8],
        r#"rrun-oci: error: --memory: invalid size "64x": use a number with an optional k, m, g or t suffix, e.g. 32m, or -1 for no limit"#
    );
    assert_eq!(
        errs[9],
        r#"rrun-oci: error: --memory: invalid size "-2": use a number with an optional k, m, g or t suffix, e.g. 32m, or -1 for no limit"#
    );
}

#[test]
fn update_refuses_resources_that_are_not_an_object_like_runc() {
    require_root();
    let b = Bundle::new();
    let steps = [
        Step::Stdin("[]"),
        Step::Stdin("[1]"),
        Step::Stdin(r#""64m""#),
        Step::Stdin(r#"{"memory": {"limit": 67108864, "swap": 67108864}}"#),
    ];
    let [runc, ours] = Runtime::both();
    let (want, _) = memory_after_each(&runc, &b, &steps);
    let (got, errs) = memory_after_each(&ours, &b, &steps);
    assert_eq!(got, want, "rrun-oci (left) against runc (right)");
    assert!(want[0].ends_with(&format!("1 limit=33554432 memsw=33554432 soft={NO_LIMIT}")));
    assert!(want[3].ends_with(&format!("0 limit=67108864 memsw=67108864 soft={NO_LIMIT}")));
    assert_eq!(
        errs[0],
        r#"rrun-oci: error: --resources -: the JSON is an array, not an object; give linux.resources as an object, e.g. {"memory": {"limit": 67108864}}"#
    );
    assert!(
        errs[2].contains("the JSON is a string, not an object"),
        "{}",
        errs[2]
    );
}

#[test]
fn update_refuses_memory_values_below_minus_one_like_runc() {
    require_root();
    let b = Bundle::new();
    let steps = [
        // Unlimited swap: a -2 read as "no limit" would be accepted by the kernel.
        Step::Flags(&["--memory-swap", "-1"]),
        Step::Stdin(r#"{"memory": {"limit": -2}}"#),
        Step::Stdin(r#"{"memory": {"swap": -2}}"#),
        Step::Stdin(r#"{"memory": {"reservation": -2}}"#),
        Step::Stdin(r#"{"memory": {"limit": -1}}"#),
    ];
    let [runc, ours] = Runtime::both();
    let (want, _) = memory_after_each(&runc, &b, &steps);
    let (got, errs) = memory_after_each(&ours, &b, &steps);
    assert_eq!(got, want, "rrun-oci (left) against runc (right)");
    let kept = format!("1 limit=33554432 memsw={NO_LIMIT} soft={NO_LIMIT}");
    assert!(want[1].ends_with(&kept), "{}", want[1]);
    assert!(want[3].ends_with(&kept), "{}", want[3]);
    assert!(want[4].ends_with(&format!(
        "0 limit={NO_LIMIT} memsw={NO_LIMIT} soft={NO_LIMIT}"
    )));
    assert_eq!(
        errs[1],
        "rrun-oci: error: resources.memory.limit -2: only -1 means no limit; give a number of bytes or -1"
    );
    assert_eq!(
        errs[2],
        "rrun-oci: error: resources.memory.swap -2: only -1 means no limit; give a number of bytes or -1"
    );
}

/// Runs runc's cpu flags `steps` in turn on a new container and records the exit code and
/// cpu.cfs_quota_us / cpu.cfs_period_us after each.
fn cpu_after_each(rt: &Runtime, b: &Bundle, steps: &[&[&str]]) -> (Vec<String>, Vec<String>) {
    let cgpath = format!("/{}", unique("ocirt-updcg-"));
    let c = running(rt, b, &cgpath);
    let cpu = |f: &str| read(&cg_file(&cgpath, "cpu", f));
    let (mut seen, mut errs) = (Vec::new(), Vec::new());
    for a in steps {
        let o = rt.run(&[&["update"], *a, &[c.as_str()]].concat());
        seen.push(format!(
            "{a:?} -> {} quota={} period={}",
            o.code,
            cpu("cpu.cfs_quota_us"),
            cpu("cpu.cfs_period_us")
        ));
        errs.push(o.stderr.trim().to_string());
    }
    rt.cleanup(&c);
    (seen, errs)
}

/// runc reads --cpu-quota as a signed number: -1 lifts the CPU limit (the kernel's "no
/// quota"), as `"cpu": {"quota": -1}` does in --resources; rrun-oci refused "-1" as a usage
/// error.
#[test]
fn update_takes_cpu_quota_minus_one_like_runc() {
    require_root();
    let b = Bundle::new();
    let steps: [&[&str]; 5] = [
        &["--cpu-quota", "50000", "--cpu-period", "100000"],
        &["--cpu-quota", "-1"],
        &["--cpu-quota=20000"],
        &["--cpu-quota=-1"],
        &["--cpu-quota", "-5"],
    ];
    let [runc, ours] = Runtime::both();
    let (want, _) = cpu_after_each(&runc, &b, &steps);
    let (got, errs) = cpu_after_each(&ours, &b, &steps);
    assert_eq!(got, want, "rrun-oci (left) against runc (right); {errs:?}");
    assert!(want[0].ends_with("0 quota=50000 period=100000"), "{want:?}");
    assert!(want[1].ends_with("0 quota=-1 period=100000"), "{want:?}");
    assert!(want[3].ends_with("0 quota=-1 period=100000"), "{want:?}");
    // Below -1 too: the kernel takes any negative quota as none.
    assert!(want[4].ends_with("0 quota=-1 period=100000"), "{want:?}");
}

/// Updates the limits and records what a user sees: the files and their effect.
fn update_and_see(rt: &Runtime, b: &Bundle) -> Vec<String> {
    let cgpath = format!("/{}", unique("ocirt-updcg-"));
    let c = running(rt, b, &cgpath);
    let mem = |f: &str| read(&cg_file(&cgpath, "memory", f));
    let pids = || read(&cg_file(&cgpath, "pids", "pids.max"));
    let mut seen = vec![format!(
        "before memory={} pids={}",
        mem("memory.limit_in_bytes"),
        pids()
    )];
    let o = rt.run(&[
        "update",
        "--memory",
        "67108864",
        "--memory-swap",
        "67108864",
        "--pids-limit",
        "16",
        &c,
    ]);
    seen.push(format!("update flags {} {:?}", o.code, o.stderr));
    seen.push(format!(
        "memory={} pids={}",
        mem("memory.limit_in_bytes"),
        pids()
    ));
    // Sixteen tasks at most: the init, sh and fourteen sleeps fill it, the next fork is
    // refused. (Not fewer: runc's exec starts `runc init`, a Go program whose threads count
    // as tasks in the container's cgroup before it execs; at 5 it sometimes could not start.)
    let o = rt.run(&[
        "exec",
        &c,
        "sh",
        "-c",
        "i=0; while [ $i -lt 20 ]; do sleep 3 & i=$((i+1)); done 2>&1; wait; echo done",
    ]);
    seen.push(format!(
        "fork at the limit: code {} refused={}",
        o.code,
        (o.stdout.clone() + &o.stderr).contains("can't fork")
    ));
    let res = rt.root.join(format!("{c}.json"));
    std::fs::write(
        &res,
        json!({"memory": {"limit": 40 << 20, "swap": 40 << 20}, "pids": {"limit": -1}}).to_string(),
    )
    .unwrap();
    let o = rt.run(&["update", "--resources", res.to_str().unwrap(), &c]);
    seen.push(format!("update --resources {} {:?}", o.code, o.stderr));
    seen.push(format!(
        "memory={} pids={}",
        mem("memory.limit_in_bytes"),
        pids()
    ));
    // A hog past 40 MiB is killed by the OOM killer (137: SIGKILL), and the init lives on.
    // (40, not less: runc's `runc init`, in Go, joins the cgroup before the exec.)
    let o = rt.run(&["exec", &c, "sh", "-c", "x=a; while true; do x=$x$x; done"]);
    seen.push(format!("hog {}", o.code));
    seen.push(format!("status {}", rt.status(&c)));
    rt.cleanup(&c);
    seen
}

#[test]
fn update_memory_and_pids_limits_bind_like_runc() {
    require_root();
    let b = Bundle::new();
    let [runc, ours] = Runtime::both();
    let want = update_and_see(&runc, &b);
    let got = update_and_see(&ours, &b);
    assert_eq!(got, want, "rrun-oci (left) against runc (right)");
    assert_eq!(want[2], "memory=67108864 pids=16", "{want:?}");
    assert_eq!(
        want[3], "fork at the limit: code 2 refused=true",
        "{want:?}"
    );
    assert_eq!(want[6], "hog 137", "{want:?}");
}

#[test]
fn update_reads_stdin_refuses_what_it_cannot_set_and_undoes_a_refused_write() {
    require_root();
    let b = Bundle::new();
    let rt = Runtime::rrun_oci();
    let cgpath = format!("/{}", unique("ocirt-updcg-"));
    let c = running(&rt, &b, &cgpath);
    let (mem, pids) = (
        cg_file(&cgpath, "memory", "memory.limit_in_bytes"),
        cg_file(&cgpath, "pids", "pids.max"),
    );
    // `-r -`: the JSON on stdin.
    let o = update_stdin(
        &rt,
        &c,
        r#"{"memory": {"limit": 50331648, "swap": 50331648}, "pids": {"limit": 42}}"#,
    );
    assert_eq!(o.code, 0, "update -r -: {}", o.stderr);
    assert_eq!((read(&mem), read(&pids)), ("50331648".into(), "42".into()));

    // An endless file is refused, not read to the end.
    let o = rt.run(&["update", "--resources", "/dev/zero", &c]);
    assert_eq!(o.code, 1);
    assert_eq!(
        o.stderr.trim(),
        "rrun-oci: error: --resources /dev/zero: more than 1048576 bytes, not runtime-spec linux.resources JSON"
    );

    let res = rt.root.join("blkio.json");
    std::fs::write(&res, r#"{"blockIO": {"weight": 300}}"#).unwrap();
    let o = rt.run(&["update", "--resources", res.to_str().unwrap(), &c]);
    assert_eq!(o.code, 1);
    assert_eq!(
        o.stderr.trim(),
        "rrun-oci: error: resources.blockIO is not supported by rrun-oci"
    );
    let o = rt.run(&["update", "--blkio-weight", "300", &c]);
    assert_eq!(
        o.stderr.trim(),
        "rrun-oci: error: --blkio-weight is not supported by rrun-oci"
    );

    // Checked before anything is written: a swap limit below the memory limit.
    let o = rt.run(&[
        "update",
        "--memory",
        "67108864",
        "--memory-swap",
        "33554432",
        &c,
    ]);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr
            .contains("memory+swap limit 33554432 is below the memory limit 67108864"),
        "{}",
        o.stderr
    );
    // Refused by the kernel after the memory and pids writes (node 77 does not exist): both
    // are written back.
    let o = rt.run(&[
        "update",
        "--memory",
        "67108864",
        "--memory-swap",
        "67108864",
        "--pids-limit",
        "7",
        "--cpuset-mems",
        "77",
        &c,
    ]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("cpuset.mems"), "{}", o.stderr);
    assert_eq!(o.stderr.trim().lines().count(), 1, "{}", o.stderr);
    assert_eq!((read(&mem), read(&pids)), ("50331648".into(), "42".into()));
    // -1 is a value, as runc takes it: unlimited swap, no pids limit.
    let o = rt.run(&["update", "--memory-swap", "-1", "--pids-limit", "-1", &c]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let memsw = cg_file(&cgpath, "memory", "memory.memsw.limit_in_bytes");
    let unlimited = read(&memsw).parse::<u64>().unwrap() >= (i64::MAX as u64) & !0xfff;
    assert!(unlimited, "memory+swap {}", read(&memsw));
    assert_eq!(read(&pids), "max");
    rt.cleanup(&c);
    let o = rt.run(&["update", "--pids-limit", "3", &c]);
    assert_eq!(o.code, 1, "update of a deleted container");
}
