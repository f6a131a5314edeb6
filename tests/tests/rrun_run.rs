//! rrun end to end, the run path: command, exit codes, image defaults and overrides, volumes,
//! tmpfs, read-only root, stdio, namespaces and id maps, network modes, overlay layers.

mod rrun_common;
mod rrun_contain_support;

use std::process::Stdio;

use rbox_tests::{unique, Scratch};
use rrun_common::{output, Lab};

#[test]
fn run_prints_output_and_returns_the_exit_status() {
    let lab = Lab::new("run");
    assert_eq!(lab.ok(&[], &["echo", "hello-world"]), "hello-world");
    assert_eq!(lab.run(&[], &["sh", "-c", "exit 7"]).status.code(), Some(7));
    assert_eq!(
        lab.run(&[], &["sh", "-c", "kill -9 $$"]).status.code(),
        Some(137)
    );
    lab.assert_clean(&[]);
}

#[test]
fn missing_command_exits_127_and_leaves_nothing() {
    let lab = Lab::new("run");
    let o = lab.run(&[], &["/nonexistent"]);
    assert_eq!(o.status.code(), Some(127));
    let o = lab.run(&[], &["/etc/passwd"]);
    assert_eq!(
        o.status.code(),
        Some(126),
        "a file that is not executable gives 126"
    );
    lab.assert_clean(&[]);
}

#[test]
fn image_by_tag_prefix_and_default_command() {
    let lab = Lab::new("run");
    let mut c = lab.rrun();
    c.args([
        "--net",
        "none",
        "--image",
        "alpine:3.15",
        "--",
        "echo",
        "tag",
    ]);
    assert_eq!(String::from_utf8_lossy(&output(c, 30).stdout).trim(), "tag");
    let mut c = lab.rrun();
    c.args([
        "--net",
        "none",
        "--image",
        &lab.image[7..19],
        "--",
        "echo",
        "prefix",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&output(c, 30).stdout).trim(),
        "prefix"
    );
    // The image's cmd is /bin/sh: it reads the script from stdin with -i.
    let mut c = lab.rrun();
    c.args(["-i", "--net", "none", "--image", &lab.image])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo from-default-cmd\n")
        .unwrap();
    let o = rrun_common::wait_output(child, 30);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "from-default-cmd"
    );
}

#[test]
fn image_config_sets_env_workdir_user_and_cli_overrides_them() {
    let lab = Lab::new("run");
    let img = rrun_common::line(lab.rbuild().args([
        "image",
        "create",
        &lab.layer,
        "--env",
        "FOO=image",
        "--workdir",
        "/srv/app",
        "--user",
        "405:100",
        "--cmd",
        "sh",
        "--cmd",
        "-c",
        "--cmd",
        "echo $FOO $(pwd) $(id -u):$(id -g)",
    ]));
    let mut c = lab.rrun();
    c.args(["--net", "none", "--image", &img]);
    let o = output(c, 30);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "image /srv/app 405:100",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let got = lab.ok(
        &["-e", "FOO=cli", "-w", "/etc", "-u", "1000:1000"],
        &["sh", "-c", "echo $FOO $(pwd) $(id -u):$(id -g) $HOME"],
    );
    assert_eq!(got, "cli /etc 1000:1000 /");
    assert_eq!(lab.ok(&["-u", "nobody"], &["id", "-un"]), "nobody");
    let o = lab.run(&["-u", "no-such-user"], &["true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no-such-user"));
    lab.assert_clean(&[]);
}

#[test]
fn volumes_bind_host_dirs_read_only_or_writable_with_host_owners() {
    let lab = Lab::new("run");
    let vol = Scratch::new("vol");
    std::fs::write(vol.join("data.txt"), "hostdata").unwrap();
    let spec_ro = format!("{}:/mnt/host:ro", vol.path().display());
    let spec_rw = format!("{}:/mnt/host", vol.path().display());
    assert_eq!(
        lab.ok(&["-v", &spec_ro], &["cat", "/mnt/host/data.txt"]),
        "hostdata"
    );
    let o = lab.run(&["-v", &spec_ro], &["sh", "-c", "echo x > /mnt/host/new"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(!vol.join("new").exists(), "a :ro volume was written");
    // Host root's files show as root inside, and what container root writes is host root's.
    assert_eq!(
        lab.ok(
            &["-v", &spec_rw],
            &[
                "sh",
                "-c",
                "stat -c %u /mnt/host/data.txt; echo rw > /mnt/host/rw.txt"
            ]
        ),
        "0"
    );
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(vol.join("rw.txt")).unwrap();
    assert_eq!(
        (
            m.uid(),
            std::fs::read_to_string(vol.join("rw.txt")).unwrap().trim()
        ),
        (0, "rw")
    );
    lab.assert_clean(&[]);
}

#[test]
fn bad_volume_or_image_fails_with_one_line_and_leaves_nothing() {
    let lab = Lab::new("run");
    for (opts, image) in [
        (vec!["-v", "/no/such/dir:/mnt"], lab.image.clone()),
        (vec!["-v", "relative:/mnt"], lab.image.clone()),
        (vec![], "no-such-image:1".to_string()),
        (vec!["--memory", "junk"], lab.image.clone()),
        // These fail inside the child, after the overlay, cgroup and namespaces exist.
        (vec!["-w", "/etc/passwd/x"], lab.image.clone()),
        (
            vec!["-u", "no-such-user", "--memory", "64m"],
            lab.image.clone(),
        ),
        (vec!["--tmpfs", "/etc/passwd"], lab.image.clone()),
    ] {
        let mut c = lab.rrun();
        c.args(["--net", "none"])
            .args(&opts)
            .args(["--image", &image, "--", "true"]);
        let o = output(c, 30);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(125), "{opts:?}: {err}");
        assert_eq!(err.lines().count(), 1, "one line for {opts:?}: {err}");
        assert!(
            err.starts_with("rrun: ") && !err.contains("panick"),
            "{err}"
        );
    }
    lab.assert_clean(&[]);
}

#[test]
fn tmpfs_and_read_only_root() {
    let lab = Lab::new("run");
    let got = lab.ok(&["--read-only", "--tmpfs", "/scratch"], &[
        "sh",
        "-c",
        "touch /x 2>/dev/null && echo wrote-root; echo t > /scratch/t && cat /scratch/t; echo h > /tmp/h && cat /tmp/h; awk '$2 == \"/scratch\" {print $3}' /proc/mounts",
    ]);
    assert_eq!(got, "t\nh\ntmpfs");
}

#[test]
fn stdout_and_stderr_stay_separate_and_stdin_is_null_without_i() {
    let lab = Lab::new("run");
    let o = lab.run(
        &[],
        &["sh", "-c", "echo out; echo err >&2; cat; echo after-cat"],
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out\nafter-cat\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");
}

#[test]
fn run_through_a_pipe_ends_when_the_command_ends() {
    let lab = Lab::new("run");
    // A background process keeping stdout open must not keep `rrun | cat` alive.
    let t = std::time::Instant::now();
    let o = lab.run(&[], &["sh", "-c", "sleep 100 & echo done"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "done");
    assert!(t.elapsed().as_secs() < 20, "took {:?}", t.elapsed());
}

#[test]
fn container_has_its_own_namespaces_hostname_and_unprivileged_root() {
    let lab = Lab::new("run");
    let script = "for n in uts pid mnt net ipc user cgroup; do readlink /proc/1/ns/$n; done";
    let inside = lab.ok(&[], &["sh", "-c", script]);
    for (l, n) in inside
        .lines()
        .zip(["uts", "pid", "mnt", "net", "ipc", "user", "cgroup"])
    {
        let host = std::fs::read_link(format!("/proc/self/ns/{n}")).unwrap();
        assert_ne!(l, host.to_string_lossy(), "{n} namespace is the host's");
    }
    assert_eq!(lab.ok(&["--hostname", "lab1"], &["hostname"]), "lab1");
    assert_eq!(lab.ok(&[], &["cat", "/proc/1/comm"]), "rinit");
    let map = lab.ok(&[], &["cat", "/proc/self/uid_map"]);
    let f: Vec<&str> = map.split_whitespace().collect();
    assert_eq!(f[0], "0");
    assert_ne!(
        f[1], "0",
        "container root must not be host root by default: {map}"
    );
    // Image files keep their image owners inside (idmapped layers).
    assert_eq!(
        lab.ok(&[], &["stat", "-c", "%U:%G", "/etc/passwd", "/bin/busybox"]),
        "root:root\nroot:root"
    );
    assert_eq!(
        lab.ok(&["--userns", "host"], &["cat", "/proc/self/uid_map"])
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["0", "0", "4294967295"]
    );
    assert_eq!(
        lab.ok(&["--userns", "host"], &["stat", "-c", "%U", "/etc/passwd"]),
        "root"
    );
}

#[test]
fn net_none_has_only_loopback_up_and_host_shares_the_host_network() {
    let lab = Lab::new("run");
    assert_eq!(
        lab.ok(&[], &["sh", "-c", "ip -o link | awk -F': ' '{print $2}'"]),
        "lo"
    );
    assert_eq!(
        lab.ok(
            &[],
            &["sh", "-c", "ping -c1 -W2 127.0.0.1 >/dev/null && echo up"]
        ),
        "up"
    );
    let mut c = lab.rrun();
    c.args([
        "--net",
        "host",
        "--image",
        &lab.image,
        "--",
        "readlink",
        "/proc/self/ns/net",
    ]);
    let o = output(c, 30);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        std::fs::read_link("/proc/self/ns/net")
            .unwrap()
            .to_string_lossy()
    );
}

#[test]
fn network_modes_without_netd_or_their_container_fail_in_one_line() {
    let lab = Lab::new("run");
    let no_netd = lab.store.join("no-netd.sock");
    for (net, want) in [
        (None, "netd is not running"),
        (Some("bridge"), "netd is not running"),
        (Some("mynet"), "netd is not running"),
        (Some("container:web"), "no such container: web"),
    ] {
        let mut c = lab.rrun();
        c.env("RBOX_NETD_SOCKET", &no_netd);
        if let Some(n) = net {
            c.args(["--net", n]);
        }
        c.args(["--image", &lab.image, "--", "true"]);
        let o = output(c, 30);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(125), "{net:?}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(want), "{net:?}: {err}");
    }
    lab.assert_clean(&[]);
}

#[test]
fn a_layer_listed_twice_and_over_a_hundred_layers_make_a_working_root() {
    let lab = Lab::new("run");
    let twice = rrun_common::line(
        lab.rbuild()
            .args(["image", "create", &lab.layer, &lab.layer]),
    );
    let mut c = lab.rrun();
    c.args([
        "--net",
        "none",
        "--image",
        &twice,
        "--",
        "cat",
        "/etc/alpine-release",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&output(c, 30).stdout).trim(),
        "3.15.11"
    );
    // 120 small layers on top of Alpine, each adding one file: every one is visible.
    let src = Scratch::new("layers");
    let mut layers = vec![lab.layer.clone()];
    for i in 0..120 {
        let d = src.join(format!("l{i}"));
        std::fs::create_dir_all(d.join("layers")).unwrap();
        std::fs::write(d.join("layers").join(format!("f{i}")), format!("{i}")).unwrap();
        layers.push(rrun_common::line(
            lab.rbuild().args(["layer", "add"]).arg(&d),
        ));
    }
    let many = rrun_common::line(lab.rbuild().args(["image", "create"]).args(&layers));
    let mut c = lab.rrun();
    c.args([
        "--net",
        "none",
        "--image",
        &many,
        "--",
        "sh",
        "-c",
        "ls /layers | wc -l; cat /layers/f0 /layers/f119",
    ]);
    let o = output(c, 60);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["120", "0119"],
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn overlay_writes_go_to_the_upper_dir_and_rm_removes_it() {
    let lab = Lab::new("run");
    let name = unique("ov");
    let o = lab.run(
        &["--name", &name],
        &["sh", "-c", "echo data > /newfile; rm /etc/motd"],
    );
    assert!(o.status.success());
    let v = lab.inspect(&name);
    let up = std::path::PathBuf::from(v["upper_dir"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(up.join("newfile")).unwrap(),
        "data\n"
    );
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::symlink_metadata(up.join("etc/motd"))
            .unwrap()
            .file_type()
            .is_char_device(),
        "whiteout"
    );
    assert_eq!(
        lab.ok(
            &[],
            &[
                "sh",
                "-c",
                "test ! -e /newfile && test -f /etc/motd && echo fresh"
            ]
        ),
        "fresh"
    );
    assert!(lab.rrun().args(["rm", &name]).status().unwrap().success());
    assert!(!up.exists());
    lab.assert_clean(&[]);
}

#[test]
fn no_stray_descriptors_reach_the_container() {
    let lab = Lab::new("run");
    // rrun is given an extra descriptor (7, on a host folder), as a careless caller would.
    let host = Scratch::new("fd7");
    let extra = || std::fs::File::open(host.path()).unwrap();
    let mut c = lab.rrun();
    c.args([
        "--net",
        "none",
        "--image",
        &lab.image,
        "--",
        "ls",
        "/proc/self/fd",
    ]);
    rrun_contain_support::with_extra_fd(&mut c, extra(), 7);
    let o = output(c, 30);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["0", "1", "2", "3"]
    );
    // rinit closes what it inherits, which would hide a leak of rrun's own: a stand-in init
    // (RBOX_RINIT, a static program listing its descriptors) shows what rrun passes.
    let bin = Scratch::new("fakeinit");
    let init =
        rrun_contain_support::static_c(bin.path(), "listfds", rrun_contain_support::LIST_FDS_C);
    let mut c = lab.rrun();
    c.env("RBOX_RINIT", &init)
        .args(["--net", "none", "--image", &lab.image, "--", "true"]);
    rrun_contain_support::with_extra_fd(&mut c, extra(), 7);
    let o = output(c, 30);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        out.lines().next().map(str::trim),
        Some("0 1 2"),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(lab.ok(&[], &["sh", "-c", "echo ok > /dev/stdout"]), "ok");
    lab.assert_clean(&[]);
}

#[test]
fn a_store_below_a_folder_only_root_may_enter_works_under_remap() {
    let lab = Lab::new("run");
    use std::os::unix::fs::PermissionsExt;
    // The scratch folder holding the store becomes 0700: the container's unprivileged root
    // cannot walk to its own folder by path, rrun must not need it to.
    std::fs::set_permissions(lab.store.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(lab.ok(&[], &["echo", "ok"]), "ok");
    let name = unique("p7");
    assert_eq!(lab.ok(&["--name", &name], &["echo", "kept"]), "kept");
    assert!(lab.rrun().args(["rm", &name]).status().unwrap().success());
    lab.assert_clean(&[]);
}
