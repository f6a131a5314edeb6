//! rrun-oci's `linux.seccomp` (runtime-spec config-linux.md "Seccomp") against runc (Debian's,
//! the reference) on the same bundle from the Alpine fixture: an errno rule with its errnoRet,
//! an argument comparison, kill, trace and log actions, filter flags (rrun-oci alone: runc
//! 1.1.5 refuses them), defaultAction
//! SCMP_ACT_ERRNO with defaultErrnoRet and an allow list (with and without no_new_privs, as
//! another user), the container's filter on exec'd processes, what rrun-oci refuses (seccomp
//! user notification, an unknown action) in one line, and the features document. Each
//! scenario runs with both runtimes and compares what the container prints (busybox's error
//! messages carry the errno the filter returned).

mod ocirt_common;

use ocirt_common::{id, Bundle, Runtime};
use rbox_tests::require_root;
use serde_json::{json, Value};

/// The rrun library's built-in profile (Docker's), for its list of allowed calls.
const DEFAULT_PROFILE: &str = include_str!("../../runtime/src/seccomp/default.json");

/// EDQUOT: "Quota exceeded" in musl, an errno no file operation here returns by itself.
const EDQUOT: u32 = 122;
/// ENOSYS: "Function not implemented".
const ENOSYS: u32 = 38;

/// `run` of the bundle: (exit code, stdout) of the container's command.
fn run_output(rt: &Runtime, b: &Bundle) -> (i32, String) {
    let c = id("sc");
    let o = rt.run(&["run", "--bundle", b.path().to_str().unwrap(), &c]);
    rt.cleanup(&c);
    (o.code, o.stdout)
}

/// Runs the bundle with runc then rrun-oci; asserts they print the same and returns it.
fn same_as_runc(b: &Bundle) -> (i32, String) {
    let [runc, ours] = Runtime::both();
    let want = run_output(&runc, b);
    let got = run_output(&ours, b);
    assert_eq!(got, want, "rrun-oci (left) against runc (right)");
    want
}

/// What the container's process reports about its filter (proc(5) /proc/PID/status).
const STATUS: &str = "grep -E '^(NoNewPrivs|Seccomp|Seccomp_filters):' /proc/self/status";

#[test]
fn errno_argument_kill_and_trace_rules_match_runc() {
    require_root();
    let b = Bundle::new();
    // A world-writable mode bit (mask 0o002 equal to 0o002) is refused, the rest allowed.
    let world_writable = |index: u32| json!([{"index": index, "value": 2, "valueTwo": 2, "op": "SCMP_CMP_MASKED_EQ"}]);
    b.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat", "no_such_syscall_rbox"], "action": "SCMP_ACT_ERRNO", "errnoRet": EDQUOT},
                {"names": ["chmod", "fchmod"], "action": "SCMP_ACT_ERRNO", "args": world_writable(1)},
                {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO", "args": world_writable(2)},
                {"names": ["sethostname"], "action": "SCMP_ACT_KILL_PROCESS"},
                {"names": ["rmdir"], "action": "SCMP_ACT_TRACE"},
                {"names": ["uname"], "action": "SCMP_ACT_LOG"}
            ]
        })
    });
    b.args(&[
        "sh",
        "-c",
        &format!(
            "exec 2>&1; {STATUS}; mkdir /dev/shm/d; echo mkdir=$?; touch /dev/shm/f; \
             chmod 755 /dev/shm/f && echo chmod-755-ok; chmod 777 /dev/shm/f; echo chmod-777=$?; \
             ls -l /dev/shm/f | cut -c1-10; rmdir /dev/shm/none; uname -s; \
             sh -c 'hostname x'; echo hostname=$?"
        ),
    ]);
    let (code, out) = same_as_runc(&b);
    assert_eq!(code, 0, "{out}");
    for want in [
        "NoNewPrivs:\t1",
        "Seccomp:\t2",
        "Seccomp_filters:\t1",
        "can't create directory '/dev/shm/d': Quota exceeded",
        "mkdir=1",
        "chmod-755-ok",
        "Operation not permitted",
        "chmod-777=1",
        "-rwxr-xr-x",
        "Function not implemented",
        "Linux",
        // SIGSYS (31) ended the process that called sethostname.
        "hostname=159",
    ] {
        assert!(out.contains(want), "{want:?} in {out}");
    }
}

#[test]
fn filter_flags_go_to_the_kernel() {
    require_root();
    // Debian's runc 1.1.5 refuses any flag ("seccomp flags are not yet supported by runc"), so
    // rrun-oci runs alone: seccomp(2) fails with EINVAL for a flag it does not know, so a
    // container that runs under its filter had its flags taken.
    let b = Bundle::new();
    b.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": EDQUOT}]
        })
    });
    b.args(&[
        "sh",
        "-c",
        &format!("exec 2>&1; {STATUS}; mkdir /dev/shm/d; echo mkdir=$?"),
    ]);
    let (code, out) = run_output(&Runtime::rrun_oci(), &b);
    assert_eq!(code, 0, "{out}");
    for want in [
        "Seccomp:\t2",
        "Seccomp_filters:\t1",
        "Quota exceeded",
        "mkdir=1",
    ] {
        assert!(out.contains(want), "{want:?} in {out}");
    }
}

/// The names Docker's profile allows (whatever their conditions), without mkdir and mkdirat.
fn allow_list() -> Vec<String> {
    let p: Value = serde_json::from_str(DEFAULT_PROFILE).unwrap();
    let mut names: Vec<String> = p["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "SCMP_ACT_ALLOW")
        .flat_map(|r| r["names"].as_array().unwrap().iter())
        .map(|n| n.as_str().unwrap().to_string())
        .filter(|n| n != "mkdir" && n != "mkdirat")
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn default_errno_with_an_allow_list_matches_runc_with_and_without_no_new_privs() {
    require_root();
    let b = Bundle::new();
    b.args(&[
        "sh",
        "-c",
        &format!("exec 2>&1; {STATUS}; id -u; mkdir /dev/shm/d; echo mkdir=$?; echo done"),
    ]);
    for nnp in [true, false] {
        b.edit(|c| {
            c["process"]["noNewPrivileges"] = nnp.into();
            c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "defaultErrnoRet": ENOSYS,
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "syscalls": [{"names": allow_list(), "action": "SCMP_ACT_ALLOW"}]
            })
        });
        let (code, out) = same_as_runc(&b);
        assert_eq!(code, 0, "no_new_privs {nnp}: {out}");
        for want in [
            &format!("NoNewPrivs:\t{}", u8::from(nnp)) as &str,
            "Seccomp:\t2",
            "1000",
            "can't create directory '/dev/shm/d': Function not implemented",
            "mkdir=1",
            "done",
        ] {
            assert!(out.contains(want), "no_new_privs {nnp}: {want:?} in {out}");
        }
    }
}

#[test]
fn exec_gets_the_containers_filter_like_runc() {
    require_root();
    let b = Bundle::new();
    b.args(&["sleep", "1000"]);
    b.edit(|c| {
        // without no_new_privs: the exec'd process installs the filter while still privileged
        c["process"]["noNewPrivileges"] = false.into();
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": EDQUOT}]
        })
    });
    let [runc, ours] = Runtime::both();
    let mut seen = vec![];
    for rt in [&runc, &ours] {
        let c = id("scexec");
        let o = rt.run(&["create", "--bundle", b.path().to_str().unwrap(), &c]);
        assert_eq!(o.code, 0, "{} create: {}", rt.name, o.stderr);
        assert_eq!(rt.run(&["start", &c]).code, 0, "{} start", rt.name);
        rt.wait_status(&c, "running");
        let script = format!("exec 2>&1; {STATUS}; mkdir /dev/shm/e; echo mkdir=$?");
        let o = rt.run(&["exec", &c, "sh", "-c", &script]);
        seen.push((o.code, o.stdout));
        rt.cleanup(&c);
    }
    assert_eq!(seen[1], seen[0], "rrun-oci (left) against runc (right)");
    let out = &seen[0].1;
    for want in [
        "NoNewPrivs:\t0",
        "Seccomp:\t2",
        "can't create directory '/dev/shm/e': Quota exceeded",
        "mkdir=1",
    ] {
        assert!(out.contains(want), "{want:?} in {out}");
    }
}

#[test]
fn notify_and_unknown_actions_are_refused_in_one_line_and_leave_nothing() {
    require_root();
    let ours = Runtime::rrun_oci();
    let notify_rule = json!([{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]);
    let cases = [
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock", "syscalls": notify_rule}),
            "linux.seccomp.listenerPath",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": notify_rule}),
            "linux.seccomp.syscalls[0].action SCMP_ACT_NOTIFY",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOPE"}]}),
            "SCMP_ACT_NOPE",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_NOPE"}]}]}),
            "SCMP_CMP_NOPE",
        ),
    ];
    let b = Bundle::new();
    b.args(&["true"]);
    for (seccomp, field) in cases {
        b.edit(|c| c["linux"]["seccomp"] = seccomp);
        let c = id("screfuse");
        let o = ours.run(&["run", "--bundle", b.path().to_str().unwrap(), &c]);
        assert_ne!(o.code, 0, "{field}");
        assert_eq!(o.stderr.lines().count(), 1, "{}", o.stderr);
        assert!(o.stderr.contains(field), "{field} in {}", o.stderr);
        assert!(
            !ours.root.join("state").join(&c).exists(),
            "nothing is left under --root"
        );
        ours.cleanup(&c);
    }
}

#[test]
fn features_report_seccomp() {
    require_root();
    let o = Runtime::rrun_oci().run(&["features"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let f: Value = serde_json::from_str(&o.stdout).unwrap();
    let s = &f["linux"]["seccomp"];
    assert_eq!(s["enabled"], true);
    let has = |key: &str, v: &str| s[key].as_array().unwrap().contains(&json!(v));
    for a in [
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_LOG",
    ] {
        assert!(has("actions", a), "{a}: {s}");
    }
    assert!(!has("actions", "SCMP_ACT_NOTIFY"), "{s}");
    assert!(has("operators", "SCMP_CMP_MASKED_EQ"), "{s}");
    assert!(
        has("archs", "SCMP_ARCH_X86_64") && has("archs", "SCMP_ARCH_X32"),
        "{s}"
    );
    assert!(
        has("supportedFlags", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"),
        "{s}"
    );
    assert!(
        f["annotations"]["io.github.seccomp.libseccomp.version"].is_string(),
        "{f}"
    );
}
