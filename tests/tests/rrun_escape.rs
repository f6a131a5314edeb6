//! Escape attempts, each run as the container's root and named after what it tries, each
//! asserting that the host is untouched and, where a system call is involved, the errno the
//! seccomp filter itself gives (EPERM; ENOSYS for clone3), told apart from the kernel's by a
//! probe whose arguments the kernel alone would reject differently (tests/src/bin/sysprobe.rs,
//! bound into the container). Several of these calls are compiled out of this kernel (modules,
//! kexec, x32): there too the filter's errno is asserted, never just a failure. Then what
//! `--privileged`, `seccomp=unconfined` and `no-new-privileges=false` lift, and podman's
//! profile (`/usr/share/containers/seccomp.json`) given as `seccomp=FILE`.

mod rrun_common;

use std::os::unix::fs::MetadataExt;
use std::process::Stdio;

use rbox_tests::{bin, command, unique};
use rrun_common::{output, Lab};

const PROBE: &str = env!("CARGO_BIN_EXE_sysprobe");
const PODMAN_PROFILE: &str = "/usr/share/containers/seccomp.json";

/// `-v PROBE:/sysprobe:ro` plus `opts`.
fn with_probe<'a>(opts: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "-v",
        concat!(env!("CARGO_BIN_EXE_sysprobe"), ":/sysprobe:ro"),
    ];
    v.extend_from_slice(opts);
    v
}

/// Runs the probe for `calls` in a container with `opts`; returns `call -> result`.
fn probe(lab: &Lab, opts: &[&str], calls: &[&str]) -> Vec<(String, String)> {
    assert!(std::path::Path::new(PROBE).is_file(), "{PROBE} not built");
    let mut args = vec!["/sysprobe"];
    args.extend_from_slice(calls);
    lab.ok(&with_probe(opts), &args)
        .lines()
        .map(|l| {
            let (a, b) = l.split_once(' ').unwrap_or((l, ""));
            (a.to_string(), b.to_string())
        })
        .collect()
}

/// Asserts each `(call, result)` of `want` is what the probe printed.
fn assert_probe(lab: &Lab, opts: &[&str], want: &[(&str, &str)]) {
    let calls: Vec<&str> = want.iter().map(|w| w.0).collect();
    let got = probe(lab, opts, &calls);
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(got, want, "with {opts:?}");
}

/// `sh -c SCRIPT` in a container with `opts`; trimmed stdout.
fn sh(lab: &Lab, opts: &[&str], script: &str) -> String {
    lab.ok(opts, &["sh", "-c", script])
}

/// The `Cap*`, `NoNewPrivs` and `Seccomp` lines of the command's /proc/self/status.
const STATUS: &str =
    "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status | tr -s '\\t' ' '";

#[test]
fn the_command_runs_with_dockers_capabilities_no_new_privs_and_a_filter() {
    let lab = Lab::new("esc");
    let want = "CapInh: 0000000000000000\nCapPrm: 00000000a80425fb\nCapEff: 00000000a80425fb\n\
                CapBnd: 00000000a80425fb\nCapAmb: 0000000000000000\nNoNewPrivs: 1\nSeccomp: 2";
    assert_eq!(sh(&lab, &[], STATUS), want, "remap");
    assert_eq!(
        sh(&lab, &["--userns", "host"], STATUS),
        want,
        "--userns host"
    );
    let user = sh(&lab, &["-u", "1000"], STATUS);
    assert!(
        user.contains("CapEff: 0000000000000000")
            && user.contains("CapBnd: 00000000a80425fb")
            && user.contains("NoNewPrivs: 1")
            && user.contains("Seccomp: 2"),
        "{user}"
    );
}

#[test]
fn write_proc_sysrq_trigger() {
    let lab = Lab::new("esc");
    // This kernel may be built without magic SysRq; the writes must fail either way.
    let sysctl = "/proc/sys/kernel/sysrq";
    let before = std::fs::read_to_string(sysctl).ok();
    // 'h' only prints the help to the kernel log, were it ever let through.
    let got = sh(
        &lab,
        &[],
        "echo h > /proc/sysrq-trigger 2>/dev/null && echo WRITTEN || echo refused; \
         echo 1 > /proc/sys/kernel/sysrq 2>/dev/null && echo SYSCTL-WRITTEN || echo sysctl-refused",
    );
    assert_eq!(got, "refused\nsysctl-refused");
    assert_eq!(std::fs::read_to_string(sysctl).ok(), before);
}

#[test]
fn read_proc_kcore() {
    let lab = Lab::new("esc");
    let got = sh(
        &lab,
        &[],
        "head -c 64 /proc/kcore 2>/dev/null | wc -c; head -c 64 /proc/keys 2>/dev/null | wc -c",
    );
    assert_eq!(got, "0\n0", "kcore and keys read as empty (masked)");
}

#[test]
fn mount_anything() {
    let lab = Lab::new("esc");
    let got = sh(
        &lab,
        &[],
        "mkdir -p /mnt/t; mount -t tmpfs t /mnt/t 2>/dev/null && echo MOUNTED || echo refused; \
         mount --bind /etc /mnt/t 2>/dev/null && echo BOUND || echo bind-refused",
    );
    assert_eq!(got, "refused\nbind-refused");
    // The filter's own EPERM: unconfined, these arguments get the kernel's EFAULT.
    assert_probe(&lab, &[], &[("mount", "EPERM")]);
    assert_probe(
        &lab,
        &["--security-opt", "seccomp=unconfined"],
        &[("mount", "EFAULT")],
    );
}

#[test]
fn load_a_kernel_module() {
    let lab = Lab::new("esc");
    // Modules are compiled out of this kernel (unconfined: ENOSYS); the filter answers first.
    assert_probe(&lab, &[], &[("finit_module", "EPERM")]);
    assert_probe(&lab, &[], &[("kexec_load", "EPERM")]);
}

#[test]
fn unshare_user_namespace_inside() {
    let lab = Lab::new("esc");
    let got = sh(
        &lab,
        &[],
        "unshare -U true 2>&1; echo status=$?; unshare -m true 2>/dev/null; echo mnt=$?",
    );
    assert!(
        got.contains("Operation not permitted")
            && got.contains("status=1")
            && got.contains("mnt=1"),
        "{got}"
    );
    assert_probe(
        &lab,
        &[],
        &[
            ("unshare_user", "EPERM"),
            ("clone_newuser", "EPERM"),
            // clone3's flags are out of a filter's reach: ENOSYS sends libcs back to clone
            ("clone3", "ENOSYS"),
        ],
    );
}

#[test]
fn keyctl_and_add_key() {
    let lab = Lab::new("esc");
    assert_probe(&lab, &[], &[("keyctl", "EPERM"), ("add_key", "EPERM")]);
    assert_probe(
        &lab,
        &["--security-opt", "seccomp=unconfined"],
        &[("keyctl", "ok")],
    );
}

#[test]
fn bpf() {
    let lab = Lab::new("esc");
    assert_probe(&lab, &[], &[("bpf", "EPERM")]);
    assert_probe(
        &lab,
        &["--security-opt", "seccomp=unconfined"],
        &[("bpf", "EFAULT")],
    );
}

#[test]
fn perf_event_open() {
    let lab = Lab::new("esc");
    assert_probe(&lab, &[], &[("perf_event_open", "EPERM")]);
    assert_probe(
        &lab,
        &["--security-opt", "seccomp=unconfined"],
        &[("perf_event_open", "EFAULT")],
    );
}

#[test]
fn x32_system_call_fails_closed_and_i386_goes_through_the_same_rules() {
    let lab = Lab::new("esc");
    // x32 is not an architecture of the profile (and compiled out here: ENOSYS unconfined).
    assert_probe(
        &lab,
        &[],
        &[
            ("x32_getpid", "EPERM"),
            ("i386_getpid", "ok"),
            ("i386_keyctl", "EPERM"),
        ],
    );
    assert_probe(
        &lab,
        &["--security-opt", "seccomp=unconfined"],
        &[("x32_getpid", "ENOSYS"), ("i386_keyctl", "ok")],
    );
}

#[test]
fn open_by_handle_at() {
    let lab = Lab::new("esc");
    assert_probe(&lab, &[], &[("open_by_handle_at", "EPERM")]);
}

#[test]
fn mknod_a_block_device_for_the_host_disk() {
    let lab = Lab::new("esc");
    let dev = std::fs::metadata("/").unwrap().dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let script = format!(
        "mknod /tmp/disk b {major} {minor} 2>/dev/null && echo made || echo mknod-refused; \
         head -c 512 /tmp/disk 2>/dev/null | wc -c"
    );
    // Remapped root: mknod needs CAP_MKNOD over the host's user namespace.
    assert_eq!(sh(&lab, &[], &script), "mknod-refused\n0");
    // Host root keeps CAP_MKNOD (Docker's set), but every place it can write is nodev.
    let got = sh(&lab, &["--userns", "host"], &script);
    assert!(got.ends_with("\n0"), "the host disk was read: {got}");
    // --privileged lifts what is inside the user namespace; host devices stay out.
    assert_eq!(sh(&lab, &["--privileged"], &script), "mknod-refused\n0");
}

#[test]
fn change_the_hostname_or_the_clock() {
    let lab = Lab::new("esc");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    // busybox's date -s says "can't set date" but exits 0: its message tells.
    let got = sh(
        &lab,
        &[],
        "hostname escaped 2>/dev/null && echo HOSTNAME || echo hostname-refused; \
         date -s 2001-01-01 2>&1 >/dev/null",
    );
    assert_eq!(
        got,
        "hostname-refused\ndate: can't set date: Operation not permitted"
    );
    // The filter's EPERM (unconfined, a NULL time is the kernel's EFAULT).
    assert_probe(&lab, &[], &[("clock_settime", "EPERM")]);
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host
    );
    let year_2020 = 1_577_836_800;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now > year_2020, "the host clock moved");
    // With --cap-add SYS_ADMIN the container's own uts namespace changes, not the host's.
    assert_eq!(
        sh(
            &lab,
            &["--cap-add", "SYS_ADMIN"],
            "hostname inside && hostname"
        ),
        "inside"
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host
    );
}

#[test]
fn kill_a_host_process() {
    let lab = Lab::new("esc");
    let mut victim = command("sleep")
        .arg("120")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = victim.id();
    let got = sh(
        &lab,
        &[],
        &format!("kill -9 {pid} 2>/dev/null && echo KILLED || echo refused"),
    );
    let alive = victim.try_wait().unwrap().is_none();
    let _ = victim.kill();
    let _ = victim.wait();
    assert_eq!(got, "refused");
    assert!(
        alive,
        "the host's sleep {pid} was killed from the container"
    );
}

#[test]
fn ptrace_a_host_process() {
    let lab = Lab::new("esc");
    let mut victim = command("sleep")
        .arg("120")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = victim.id();
    let call = format!("ptrace_attach:{pid}");
    // The host's pid is no process of the container's pid namespace (or, by chance, one of
    // its own): never the host's; with SYS_PTRACE added, still not.
    let a = probe(&lab, &[], &[&call]);
    let b = probe(&lab, &["--cap-add", "SYS_PTRACE"], &[&call]);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let _ = victim.kill();
    let _ = victim.wait();
    assert_eq!(a[0].1, "ESRCH", "{a:?}");
    assert_eq!(b[0].1, "ESRCH", "{b:?}");
    assert!(status.contains("TracerPid:\t0\n"), "{status}");
}

#[test]
fn umount_masked_and_read_only_paths() {
    let lab = Lab::new("esc");
    let got = sh(
        &lab,
        &[],
        "for p in /proc/keys /proc/timer_list /proc/sys /sys/firmware /proc; do \
           umount -l $p 2>/dev/null && echo UNMOUNTED:$p; done; \
         awk '$2 ~ /^\\/(proc\\/(keys|timer_list|sys)|sys\\/firmware)$/ {print $2}' /proc/mounts | sort",
    );
    assert_eq!(
        got,
        "/proc/keys\n/proc/sys\n/proc/timer_list\n/sys/firmware"
    );
}

#[test]
fn chroot_escape() {
    let lab = Lab::new("esc");
    // CAP_SYS_CHROOT is in Docker's set: chroot works, and only ever reaches the container's
    // own root (pivot_root detached the host's).
    assert_probe(&lab, &[], &[("chroot_escape", "container-root")]);
    assert_probe(
        &lab,
        &["--privileged"],
        &[("chroot_escape", "container-root")],
    );
}

#[test]
fn reach_the_host_root_through_proc_1_root_or_an_open_descriptor() {
    let lab = Lab::new("esc");
    let got = sh(
        &lab,
        &[],
        "ls /proc/1/root/etc/debian_version 2>/dev/null && echo HOST; \
         cat /proc/1/root/etc/alpine-release >/dev/null && echo own-root; \
         ls /proc/self/fd | tr '\\n' ' '",
    );
    // ls holds 3 (the folder it lists); nothing else of rrun's reached the command.
    assert_eq!(got, "own-root\n0 1 2 3");
}

#[test]
fn overwrite_proc_self_exe_and_rinit() {
    let lab = Lab::new("esc");
    let rinit = bin("rinit");
    let before = std::fs::read(&rinit).unwrap();
    let got = sh(
        &lab,
        &[],
        "echo pwned > /proc/1/exe 2>/dev/null && echo RINIT || echo rinit-refused; \
         cp /bin/busybox /proc/self/exe 2>/dev/null && echo EXE || echo exe-refused",
    );
    assert_eq!(got, "rinit-refused\nexe-refused");
    assert_eq!(
        std::fs::read(&rinit).unwrap(),
        before,
        "the host's rinit changed"
    );
}

#[test]
fn privileged_lifts_the_capability_drop_the_filter_and_the_masks() {
    let lab = Lab::new("esc");
    let got = sh(&lab, &["--privileged"], STATUS);
    assert!(
        got.contains("CapEff: 000001ffffffffff")
            && got.contains("NoNewPrivs: 0")
            && got.contains("Seccomp: 0"),
        "{got}"
    );
    let got = sh(
        &lab,
        &["--privileged"],
        "awk '$2 == \"/proc/kcore\"' /proc/mounts | wc -l; \
         mkdir -p /mnt/t && mount -t tmpfs t /mnt/t && echo mounted; hostname p && hostname",
    );
    assert_eq!(got, "0\nmounted\np");
    assert_probe(
        &lab,
        &["--privileged"],
        &[("keyctl", "ok"), ("unshare_user", "ok"), ("bpf", "EFAULT")],
    );
}

#[test]
fn seccomp_unconfined_lifts_the_filter_only() {
    let lab = Lab::new("esc");
    let opts = ["--security-opt", "seccomp=unconfined"];
    let got = sh(&lab, &opts, STATUS);
    assert!(
        got.contains("CapEff: 00000000a80425fb")
            && got.contains("NoNewPrivs: 1")
            && got.contains("Seccomp: 0"),
        "{got}"
    );
    // The capability drop still refuses what needs CAP_SYS_ADMIN.
    assert_eq!(
        sh(
            &lab,
            &opts,
            "mount -t tmpfs t /mnt 2>/dev/null && echo MOUNTED || echo refused"
        ),
        "refused"
    );
    assert_probe(&lab, &opts, &[("unshare_user", "ok"), ("clone3", "EINVAL")]);
}

#[test]
fn no_new_privileges_false_keeps_the_filter() {
    let lab = Lab::new("esc");
    let opts = ["--security-opt", "no-new-privileges=false"];
    let got = sh(&lab, &opts, STATUS);
    assert!(
        got.contains("NoNewPrivs: 0") && got.contains("Seccomp: 2"),
        "{got}"
    );
    let mut o = with_probe(&opts);
    o.extend(["-u", "1000"]);
    let got = lab.ok(&o, &["sh", "-c", &format!("{STATUS}; /sysprobe keyctl")]);
    assert!(
        got.contains("NoNewPrivs: 0") && got.contains("Seccomp: 2") && got.contains("keyctl EPERM"),
        "{got}"
    );
}

#[test]
fn podmans_profile_as_file_refuses_the_same_kernel_interfaces() {
    let lab = Lab::new("esc");
    assert!(
        std::path::Path::new(PODMAN_PROFILE).is_file(),
        "{PODMAN_PROFILE} missing: apt-get install golang-github-containers-common (.ci/deps.sh)"
    );
    let opt = format!("seccomp={PODMAN_PROFILE}");
    let opts = ["--security-opt", opt.as_str()];
    assert!(sh(&lab, &opts, STATUS).contains("Seccomp: 2"));
    assert_probe(
        &lab,
        &opts,
        &[
            ("bpf", "EPERM"),
            ("perf_event_open", "EPERM"),
            ("kexec_load", "EPERM"),
            ("finit_module", "EPERM"),
            ("open_by_handle_at", "EPERM"),
            // podman's own choice: keyctl and unshare are allowed by that profile (its
            // containers rely on the capability drop there), so they are not asserted as
            // refused here.
        ],
    );
    let got = sh(
        &lab,
        &opts,
        "mount -t tmpfs t /mnt 2>/dev/null && echo MOUNTED || echo mount-refused; \
         hostname x 2>/dev/null && echo HOSTNAME || echo hostname-refused; \
         head -c 64 /proc/kcore | wc -c; echo h > /proc/sysrq-trigger 2>/dev/null || echo sysrq-refused",
    );
    assert_eq!(got, "mount-refused\nhostname-refused\n0\nsysrq-refused");
}

#[test]
fn exec_gets_the_containers_capabilities_filter_and_no_new_privs() {
    let lab = Lab::new("esc");
    for (opts, keyctl, seccomp) in [
        (vec![], "keyctl EPERM", "Seccomp: 2"),
        (
            vec!["--security-opt", "seccomp=unconfined"],
            "keyctl ok",
            "Seccomp: 0",
        ),
    ] {
        let name = unique("escx");
        let mut c = lab.rrun();
        c.args(["-d", "--name", &name, "--net", "none"])
            .args(with_probe(&opts))
            .args(["--image", &lab.image, "--", "sleep", "1000"]);
        let o = output(c, 60);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let mut c = lab.rrun();
        c.args([
            "exec",
            &name,
            "sh",
            "-c",
            &format!("{STATUS}; /sysprobe keyctl"),
        ]);
        let o = output(c, 60);
        let got = String::from_utf8_lossy(&o.stdout).to_string();
        let mut rm = lab.rrun();
        rm.args(["rm", "-f", &name]);
        let _ = output(rm, 60);
        assert!(
            got.contains("CapEff: 00000000a80425fb")
                && got.contains("NoNewPrivs: 1")
                && got.contains(seccomp)
                && got.contains(keyctl),
            "exec into a container started with {opts:?}: {got}{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn cap_add_and_cap_drop_take_dockers_names() {
    let lab = Lab::new("esc");
    let eff = "awk '$1 == \"CapEff:\" {print $2}' /proc/self/status";
    assert_eq!(
        sh(&lab, &["--cap-drop", "ALL", "--cap-add", "chown"], eff),
        "0000000000000001"
    );
    assert_eq!(
        sh(
            &lab,
            &["--cap-add", "CAP_NET_ADMIN", "--cap-drop", "KILL,MKNOD"],
            eff
        ),
        format!(
            "{:016x}",
            (0xa80425fbu64 | 1 << 12) & !(1 << 5) & !(1 << 27)
        )
    );
    let o = lab.run(&["--cap-add", "SYS_NOPE"], &["true"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("SYS_NOPE"), "{err}");
}

/// A one-layer image on top of the lab's Alpine: `links` (path in the image -> target), as a
/// plain tar made here.
fn image_with_links(lab: &Lab, dir: &std::path::Path, links: &[(&str, &str)]) -> String {
    let tar_path = dir.join(format!("{}.tar", unique("links")));
    let mut b = tar::Builder::new(std::fs::File::create(&tar_path).unwrap());
    for (name, target) in links {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_link(&mut h, name, target).unwrap();
    }
    b.into_inner().unwrap();
    let mut c = lab.rbuild();
    c.args(["layer", "add", tar_path.to_str().unwrap()]);
    let o = output(c, 60);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let layer = String::from_utf8(o.stdout).unwrap().trim().to_string();
    let mut c = lab.rbuild();
    c.args(["image", "create", &lab.layer, &layer]);
    let o = output(c, 60);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

#[test]
fn image_with_dev_proc_etc_hosts_and_volume_target_symlinks_to_host_paths() {
    let lab = Lab::new("esc");
    let host = rbox_tests::Scratch::new("esclinks");
    let p = |n: &str| host.join(n).to_str().unwrap().to_string();
    std::fs::write(host.join("hosts"), "host-original\n").unwrap();
    let vol = host.join("volsrc");
    std::fs::create_dir(&vol).unwrap();
    let run = |image: &str, opts: &[&str], script: &str| {
        let mut c = lab.rrun();
        c.args(["--net", "none"])
            .args(opts)
            .args(["--image", image, "--", "sh", "-c", script]);
        output(c, 60)
    };
    // /dev and /proc as links: refused in one line, nothing made where they point.
    for (name, target) in [("dev", p("devx")), ("proc", p("procx"))] {
        let img = image_with_links(&lab, host.path(), &[(name, &target)]);
        let o = run(&img, &[], "true");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(125), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!("/{name} is a symbolic link")),
            "{err}"
        );
        assert!(!std::path::Path::new(&target).exists(), "{target} was made");
    }
    // /etc/hosts as a link to a host file: the container's own hosts replaces the link.
    let img = image_with_links(&lab, host.path(), &[("etc/hosts", &p("hosts"))]);
    let o = run(
        &img,
        &[],
        "cat /etc/hosts; echo changed > /etc/hosts 2>/dev/null; true",
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("127.0.0.1\tlocalhost"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(host.join("hosts")).unwrap(),
        "host-original\n"
    );
    // A volume target below a link to a host folder that does not exist in the container:
    // refused in one line; below one that does: made inside the container only.
    let v = format!("{}:/mnt/v", vol.display());
    let img = image_with_links(&lab, host.path(), &[("mnt", &p("volx"))]);
    let o = run(&img, &["-v", &v], "true");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert!(err.contains("dangling symbolic link"), "{err}");
    assert!(!host.join("volx").exists());
    let leaf = unique("escvol");
    let img = image_with_links(&lab, host.path(), &[("mnt", "/var")]);
    let v = format!("{}:/mnt/{leaf}", vol.display());
    let o = run(
        &img,
        &["-v", &v],
        &format!("touch /var/{leaf}/inside && echo ok"),
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "ok",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        vol.join("inside").exists(),
        "the volume is where the link leads inside"
    );
    assert!(
        !std::path::Path::new("/var").join(&leaf).exists(),
        "host /var/{leaf} made"
    );
}

#[test]
fn fill_the_pid_space_past_pids_limit() {
    let lab = Lab::new("esc");
    let got = sh(
        &lab,
        &["--pids-limit", "16"],
        // The inner shell dies when fork fails; the outer one counts with builtins only.
        "sh -c 'i=0; while [ $i -lt 64 ]; do sleep 30 & i=$((i+1)); done' 2>/dev/null; \
         set -- /proc/[0-9]*; echo $#",
    );
    let n: u32 = got.lines().last().unwrap().trim().parse().unwrap();
    assert!((2..=16).contains(&n), "{n} processes under --pids-limit 16");
}
