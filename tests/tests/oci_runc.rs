//! rrun-oci against runc (Debian's, the reference) on the same bundle from the Alpine fixture:
//! the lifecycle (create, start, state, kill, delete) and what the container's process sees
//! (user, cwd, env, rlimits, capabilities, hostname, masked and read-only paths, cgroup
//! limits). Each test runs the same steps with both runtimes and compares what they print.

mod ocirt_common;

use ocirt_common::{id, Bundle, Runtime};
use rbox_tests::require_root;
use serde_json::json;

/// The statuses a container goes through, and which steps succeed, as a user would see them.
fn lifecycle(rt: &Runtime, b: &Bundle) -> Vec<String> {
    let c = id("life");
    let mut seen = vec![];
    let bundle = b.path().to_str().unwrap();
    let o = rt.run(&["create", "--bundle", bundle, &c]);
    seen.push(format!("create {} out={:?}", o.code, o.stdout));
    let st = rt.state(&c);
    seen.push(format!(
        "state {} pid>0={}",
        st["status"],
        st["pid"].as_i64().unwrap_or(0) > 0
    ));
    seen.push(format!("bundle={}", st["bundle"] == json!(bundle)));
    seen.push(format!("id={}", st["id"] == json!(c)));
    let o = rt.run(&["delete", &c]);
    seen.push(format!("delete-created {}", o.code));
    let o = rt.run(&["create", "--bundle", bundle, &c]);
    seen.push(format!("create-again {}", o.code));
    let o = rt.run(&["start", &c]);
    seen.push(format!("start {} out={:?}", o.code, o.stdout));
    seen.push(format!("state {}", rt.wait_status(&c, "running")));
    let o = rt.run(&["start", &c]);
    seen.push(format!("start-twice {}", o.code));
    let o = rt.run(&["delete", &c]);
    seen.push(format!("delete-running {}", o.code));
    let o = rt.run(&["kill", &c, "KILL"]);
    seen.push(format!("kill {}", o.code));
    seen.push(format!("state {}", rt.wait_status(&c, "stopped")));
    let o = rt.run(&["delete", &c]);
    seen.push(format!("delete {}", o.code));
    let o = rt.run(&["state", &c]);
    seen.push(format!("state-missing {}", o.code != 0));
    let o = rt.run(&["delete", &c]);
    seen.push(format!("delete-missing {}", o.code != 0));
    let o = rt.run(&["delete", "--force", &c]);
    seen.push(format!("delete-force-missing {}", o.code));
    rt.cleanup(&c);
    seen
}

#[test]
fn lifecycle_matches_runc() {
    require_root();
    let b = Bundle::new();
    b.args(&["sleep", "1000"]);
    let [runc, ours] = Runtime::both();
    let want = lifecycle(&runc, &b);
    let got = lifecycle(&ours, &b);
    assert_eq!(got, want, "rrun-oci (left) against runc (right)");
    assert!(
        want.contains(&"state \"created\" pid>0=true".to_string()),
        "{want:?}"
    );
}

/// `run` of a command: its output and exit code.
fn run_output(rt: &Runtime, b: &Bundle) -> (i32, String) {
    let c = id("run");
    let o = rt.run(&["run", "--bundle", b.path().to_str().unwrap(), &c]);
    rt.cleanup(&c);
    (o.code, o.stdout)
}

#[test]
fn process_config_matches_runc() {
    require_root();
    let b = Bundle::new();
    b.edit(|c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [20, 30]});
        c["process"]["cwd"] = "/tmp".into();
        c["process"]["env"] = json!(["PATH=/usr/bin:/bin", "FOO=bar baz"]);
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]);
        c["hostname"] = "ocirt-host".into();
    });
    b.args(&[
        "sh",
        "-c",
        "id; pwd; echo \"$FOO\"; ulimit -n; ulimit -Hn; hostname; grep -E '^Cap(Eff|Bnd|Prm)' /proc/self/status; exit 7",
    ]);
    let [runc, ours] = Runtime::both();
    let want = run_output(&runc, &b);
    let got = run_output(&ours, &b);
    assert_eq!(got, want, "rrun-oci (left) against runc (right)");
    assert_eq!(want.0, 7);
    assert!(want.1.contains("uid=1000 gid=1001"), "{want:?}");
}

#[test]
fn masked_and_readonly_paths_match_runc() {
    require_root();
    let b = Bundle::new();
    b.args(&[
        "sh",
        "-c",
        "wc -c < /proc/kcore; ls /sys/firmware | wc -l; echo 1 > /proc/sys/kernel/domainname && echo wrote-sys; \
         touch /etc/x && echo wrote-root; touch /dev/shm/x && echo wrote-shm; \
         ls /dev | sort | tr '\\n' ' '; exit 0",
    ]);
    let [runc, ours] = Runtime::both();
    let want = run_output(&runc, &b);
    let got = run_output(&ours, &b);
    assert_eq!(got, want, "rrun-oci (left) against runc (right)");
    assert!(
        want.1.contains("wrote-shm") && !want.1.contains("wrote-root"),
        "{want:?}"
    );
}

#[test]
fn cgroup_limits_match_runc() {
    require_root();
    let b = Bundle::new();
    b.args(&["sleep", "1000"]);
    let [runc, ours] = Runtime::both();
    let mut seen = vec![];
    for rt in [&runc, &ours] {
        let c = id("cg");
        let cgpath = format!("/{c}");
        b.edit(|cfg| {
            cfg["linux"]["cgroupsPath"] = cgpath.clone().into();
            cfg["linux"]["resources"]["memory"] = json!({"limit": 33554432, "swappiness": 17});
            cfg["linux"]["resources"]["pids"] = json!({"limit": 20});
        });
        let o = rt.run(&["create", "--bundle", b.path().to_str().unwrap(), &c]);
        assert_eq!(o.code, 0, "{} create: {}", rt.name, o.stderr);
        let pid = rt.state(&c)["pid"].as_i64().unwrap();
        let mem = std::fs::read_to_string(format!(
            "/sys/fs/cgroup/memory{cgpath}/memory.limit_in_bytes"
        ));
        let swappiness =
            std::fs::read_to_string(format!("/sys/fs/cgroup/memory{cgpath}/memory.swappiness"));
        let pids = std::fs::read_to_string(format!("/sys/fs/cgroup/pids{cgpath}/pids.max"));
        let procs = std::fs::read_to_string(format!("/sys/fs/cgroup/memory{cgpath}/cgroup.procs"));
        seen.push((
            mem.unwrap_or_default(),
            swappiness.unwrap_or_default(),
            pids.unwrap_or_default(),
            procs.unwrap_or_default().trim() == pid.to_string(),
        ));
        rt.cleanup(&c);
        assert!(
            !std::path::Path::new(&format!("/sys/fs/cgroup/memory{cgpath}")).exists(),
            "{} delete leaves no cgroup",
            rt.name
        );
    }
    assert_eq!(seen[1], seen[0], "rrun-oci (left) against runc (right)");
    assert_eq!(
        seen[0],
        ("33554432\n".into(), "17\n".into(), "20\n".into(), true)
    );
}

#[test]
fn kill_all_pause_and_resume_match_runc() {
    require_root();
    let b = Bundle::new();
    b.args(&["sh", "-c", "sleep 1000 & sleep 1000"]);
    let [runc, ours] = Runtime::both();
    let mut seen = vec![];
    for rt in [&runc, &ours] {
        let c = id("pause");
        let bundle = b.path().to_str().unwrap();
        let mut s = vec![];
        let mut st = vec![];
        s.push(rt.run(&["create", "--bundle", bundle, &c]).code);
        s.push(rt.run(&["pause", &c]).code);
        st.push(rt.status(&c));
        s.push(rt.run(&["start", &c]).code);
        s.push(rt.run(&["resume", &c]).code);
        st.push(rt.status(&c));
        s.push(rt.run(&["start", &c]).code);
        st.push(rt.wait_status(&c, "running"));
        s.push(rt.run(&["pause", &c]).code);
        st.push(rt.status(&c));
        s.push(rt.run(&["resume", &c]).code);
        st.push(rt.status(&c));
        s.push(rt.run(&["kill", "--all", &c, "9"]).code);
        st.push(rt.wait_status(&c, "stopped"));
        s.push(rt.run(&["delete", &c]).code);
        seen.push(format!("{s:?} {}", st.join(" ")));
        rt.cleanup(&c);
    }
    assert_eq!(seen[1], seen[0], "rrun-oci (left) against runc (right)");
    assert_eq!(
        seen[0],
        "[0, 0, 1, 0, 0, 0, 0, 0, 0] paused created running paused running stopped"
    );
}

/// A nested linux.cgroupsPath whose parent does not exist yet: runc and rrun-oci make the
/// parents (on cgroup v1 the new cpuset parent gets its parent's cpus and mems, or no task
/// could join below it) and leave them, as runc does; the container runs with its limit.
#[test]
fn nested_cgroups_path_matches_runc() {
    require_root();
    let b = Bundle::new();
    b.args(&["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]);
    let [runc, ours] = Runtime::both();
    let mut seen = vec![];
    for rt in [&runc, &ours] {
        let parent = format!("/{}", id("cgp"));
        let c = id("cgn");
        b.edit(|cfg| {
            cfg["linux"]["cgroupsPath"] = format!("{parent}/{c}").into();
            cfg["linux"]["resources"]["memory"] = json!({"limit": 50593792, "swappiness": 10});
        });
        let o = rt.run(&["run", "--bundle", b.path().to_str().unwrap(), &c]);
        rt.cleanup(&c);
        seen.push((o.code, o.stdout.clone()));
        for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let _ = std::fs::remove_dir(h.path().join(&parent[1..]));
        }
    }
    assert_eq!(seen[1], seen[0], "rrun-oci (left) against runc (right)");
    assert_eq!(seen[0].0, 0, "{seen:?}");
}

/// `run --preserve-fds N`: the descriptors 3..3+N of the runtime's caller reach the container's
/// process, as with runc; without it the container has none above 2.
#[test]
fn preserve_fds_passes_descriptors_as_runc() {
    require_root();
    let b = Bundle::new();
    b.args(&[
        "sh",
        "-c",
        "echo through-fd3 >&3 && echo wrote || echo no-fd3",
    ]);
    let [runc, ours] = Runtime::both();
    let mut seen = vec![];
    for rt in [&runc, &ours] {
        for preserve in [true, false] {
            let c = id("pfd");
            let out = rt.root.join(format!("{c}.out"));
            let script = format!(
                "exec 3>\"$OUT\"; exec \"$RT\" --root \"$ROOT\" run {} --bundle \"$B\" {c}",
                if preserve { "--preserve-fds 1" } else { "" }
            );
            let o = rbox_tests::command("sh")
                .args(["-c", &script])
                .env("OUT", &out)
                .env("RT", &rt.exe)
                .env("ROOT", rt.root.join("state"))
                .env("B", b.path())
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap();
            rt.cleanup(&c);
            let file = std::fs::read_to_string(&out).unwrap_or_default();
            seen.push((
                preserve,
                String::from_utf8_lossy(&o.stdout).trim().to_string(),
                file,
            ));
        }
    }
    assert_eq!(seen[2..], seen[..2], "rrun-oci (left) against runc (right)");
    assert_eq!(
        seen[..2],
        [
            (true, "wrote".to_string(), "through-fd3\n".to_string()),
            (false, "no-fd3".to_string(), String::new()),
        ]
    );
}

/// linux.personality: LINUX runs as with runc; LINUX32 makes uname(2) report a 32-bit machine,
/// as the runtime spec says (Debian 12's runc 1.1 ignores the field; runc 1.2 sets it too);
/// flags are refused in one line (runc reads the domain alone).
#[test]
fn personality_matches_runc() {
    require_root();
    let [runc, ours] = Runtime::both();
    let bundle = |domain: &str| {
        let b = Bundle::new();
        b.edit(|c| c["linux"]["personality"] = json!({ "domain": domain }));
        b.args(&["uname", "-m"]);
        b
    };
    let b = bundle("LINUX");
    let want = run_output(&runc, &b);
    assert_eq!(
        run_output(&ours, &b),
        want,
        "rrun-oci (left) against runc (right)"
    );
    assert_eq!(want, (0, "x86_64\n".to_string()));
    assert_eq!(
        run_output(&ours, &bundle("LINUX32")),
        (0, "i686\n".to_string())
    );
    // exec'd processes get it too (as runc 1.2)
    let b = bundle("LINUX32");
    b.args(&["sleep", "100"]);
    let c = id("persx");
    let bp = b.path().to_str().unwrap();
    assert_eq!(ours.run(&["create", "--bundle", bp, &c]).code, 0);
    assert_eq!(ours.run(&["start", &c]).code, 0);
    let o = ours.run(&["exec", &c, "uname", "-m"]);
    ours.cleanup(&c);
    assert_eq!((o.code, o.stdout.as_str()), (0, "i686\n"), "{}", o.stderr);
    let b = Bundle::new();
    b.edit(|c| {
        c["linux"]["personality"] = json!({"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]})
    });
    let c = id("persona");
    let o = ours.run(&["create", "--bundle", b.path().to_str().unwrap(), &c]);
    assert_ne!(o.code, 0);
    assert_eq!(o.stderr.lines().count(), 1, "{}", o.stderr);
    assert!(o.stderr.contains("linux.personality.flags"), "{}", o.stderr);
    assert!(
        !ours.root.join("state").join(&c).exists(),
        "nothing is left"
    );
}

#[test]
fn unsupported_fields_are_refused_in_one_line_and_leave_nothing() {
    require_root();
    let b = Bundle::new();
    b.edit(|c| c["linux"]["intelRdt"] = json!({"closID": "x"}));
    let ours = Runtime::rrun_oci();
    let c = id("refuse");
    let o = ours.run(&["create", "--bundle", b.path().to_str().unwrap(), &c]);
    assert_ne!(o.code, 0);
    assert_eq!(o.stderr.lines().count(), 1, "{}", o.stderr);
    assert!(o.stderr.contains("linux.intelRdt"), "{}", o.stderr);
    assert!(
        !ours.root.join("state").join(&c).exists(),
        "nothing is left under --root"
    );
    let o = ours.run(&["--systemd-cgroup", "state", &c]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("--systemd-cgroup"), "{}", o.stderr);
    let log = ours.root.join("log.json");
    let o = ours.run(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        &c,
    ]);
    assert_ne!(o.code, 0);
    let line: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&log).unwrap().trim()).unwrap();
    assert_eq!(line["level"], "error");
    assert!(line["msg"].as_str().unwrap().contains(&c), "{line}");
    for refused in ["checkpoint", "restore", "events"] {
        let o = ours.run(&[refused, &c]);
        assert_ne!(o.code, 0);
        assert!(o.stderr.contains(refused), "{}", o.stderr);
    }
}

#[test]
fn features_document_and_list() {
    require_root();
    let ours = Runtime::rrun_oci();
    let o = ours.run(&["features"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let f: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert!(f["hooks"].as_array().unwrap().len() == 6);
    let b = Bundle::new();
    b.args(&["sleep", "1000"]);
    let c = id("list");
    assert_eq!(
        ours.run(&["create", "--bundle", b.path().to_str().unwrap(), &c])
            .code,
        0
    );
    let o = ours.run(&["list", "-q"]);
    assert_eq!(o.stdout.trim(), c);
    let o = ours.run(&["list", "--format", "json"]);
    let l: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(l[0]["status"], "created");
    ours.cleanup(&c);
    assert_eq!(ours.run(&["list", "-q"]).stdout, "");
}

#[test]
fn hooks_run_with_the_state_on_stdin() {
    require_root();
    let b = Bundle::new();
    b.args(&["true"]);
    let [runc, ours] = Runtime::both();
    let mut seen = vec![];
    for rt in [&runc, &ours] {
        let log = rt.root.join("hooks.log");
        let hook = |name: &str| {
            json!({"path": "/bin/sh", "args": ["sh", "-c",
                format!("read -r s; case \"$s\" in *'\"id\"'*) echo {name} >> {};; esac", log.display())]})
        };
        b.edit(|c| {
            c["hooks"] = json!({
                "createRuntime": [hook("createRuntime")],
                "poststart": [hook("poststart")],
                "poststop": [hook("poststop")],
            })
        });
        let c = id("hooks");
        let bundle = b.path().to_str().unwrap();
        assert_eq!(
            rt.run(&["create", "--bundle", bundle, &c]).code,
            0,
            "{}",
            rt.name
        );
        assert_eq!(rt.run(&["start", &c]).code, 0);
        rt.wait_status(&c, "stopped");
        assert_eq!(rt.run(&["delete", &c]).code, 0);
        seen.push(std::fs::read_to_string(&log).unwrap_or_default());
    }
    assert_eq!(seen[1], seen[0], "rrun-oci (left) against runc (right)");
    assert_eq!(seen[0], "createRuntime\npoststart\npoststop\n");
}

#[test]
fn user_namespace_with_id_maps_matches_runc() {
    require_root();
    let b = Bundle::new();
    let st = rbox_tests::command("chown")
        .args(["-R", "100000:100000"])
        .arg(b.path().join("rootfs"))
        .status()
        .unwrap();
    assert!(st.success());
    b.edit(|c| {
        c["root"]["readonly"] = false.into();
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["uidMappings"] = map.clone();
        c["linux"]["gidMappings"] = map;
    });
    b.args(&[
        "sh",
        "-c",
        "id; cat /proc/self/uid_map /proc/self/gid_map; touch /x && echo wrote; ls -ln /etc/passwd; \
         hostname; mount -t tmpfs t /mnt && echo mounted",
    ]);
    let [runc, ours] = Runtime::both();
    let want = run_output(&runc, &b);
    let got = run_output(&ours, &b);
    assert_eq!(got, want, "rrun-oci (left) against runc (right)");
    assert!(want.1.contains("0     100000      65536"), "{want:?}");
}

/// The mount points of the host's mount namespace at or below `dir`.
fn mounts_below(dir: &std::path::Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let d = dir.to_str().unwrap();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(d))
        .map(String::from)
        .collect()
}

#[test]
fn every_rootfs_propagation_runs_as_with_runc_and_leaves_no_mount_on_the_host() {
    require_root();
    // The bundle's folder is on a shared mount here (/ is shared): without making that mount
    // private first, a shared root propagation sent the rootfs bind and every mount below it
    // to the host, and pivot_root refused the shared parent (youki's
    // rootfs_propagation_shared_test left 29 mounts behind). unbindable fails as runc fails.
    let b = Bundle::new();
    b.args(&["echo", "ran"]);
    let props = [
        "shared",
        "rshared",
        "private",
        "rprivate",
        "slave",
        "rslave",
        "unbindable",
    ];
    for rt in Runtime::both() {
        let mut seen = vec![];
        for prop in props {
            b.edit(|c| c["linux"]["rootfsPropagation"] = prop.into());
            let c = id("prop");
            let o = rt.run(&["run", "--bundle", b.path().to_str().unwrap(), &c]);
            rt.cleanup(&c);
            seen.push(format!("{prop} ok={} out={:?}", o.code == 0, o.stdout));
            assert_eq!(
                mounts_below(b.path()),
                Vec::<String>::new(),
                "{} {prop}",
                rt.name
            );
        }
        let want: Vec<String> = props
            .iter()
            .map(|p| match *p {
                "unbindable" => format!("{p} ok=false out=\"\""),
                _ => format!("{p} ok=true out=\"ran\\n\""),
            })
            .collect();
        assert_eq!(seen, want, "{}", rt.name);
    }
}

/// The container's umask is runc's 0022 whatever the caller's (077 here), or config.json's
/// process.user.umask; and a missing process.cwd is made as runc makes it (compared under
/// umask 022: under 077 runc makes it 0700, with its caller's umask, and rrun-oci 0755).
#[test]
fn umask_and_a_missing_cwd_match_runc() {
    require_root();
    let cases: [(u32, Option<u32>); 3] = [(0o022, None), (0o077, None), (0o077, Some(0o027))];
    for (caller, in_config) in cases {
        let mut seen = vec![];
        for rt in Runtime::both() {
            let b = Bundle::new();
            b.edit(|c| {
                c["root"]["readonly"] = false.into();
                c["process"]["cwd"] = "/new/work".into();
                c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
                if let Some(m) = in_config {
                    c["process"]["user"]["umask"] = m.into();
                }
            });
            let script = match caller {
                0o022 => "umask; pwd; stat -c '%a %U %n' /new /new/work",
                _ => "umask; pwd",
            };
            b.args(&["sh", "-c", script]);
            let c = id("umask");
            let o = rt.run_with_umask(&["run", "--bundle", b.path().to_str().unwrap(), &c], caller);
            rt.cleanup(&c);
            seen.push((o.code, o.stdout, rt.name));
        }
        assert_eq!(
            (seen[1].0, &seen[1].1),
            (seen[0].0, &seen[0].1),
            "rrun-oci (left) against runc (right), caller's umask {caller:03o}, config's {in_config:?}"
        );
        let want = format!("{:04o}\n/new/work", in_config.unwrap_or(0o022));
        assert!(seen[0].1.starts_with(&want), "{:?}", seen[0]);
    }
}
