//! The mounts rrun makes are locked against the container itself, even for a container root
//! holding every capability: a `:ro` volume, a `--read-only` root, the masked and read-only
//! /proc and /sys paths cannot be remounted read-write, unmounted, moved or replaced by a
//! fresh procfs, and the host files behind a volume stay as they were. Each probe prints
//! `ESCAPED:<what>` when the kernel let it through; the positive twin (`tmpfs-mounted`)
//! proves the shell really holds CAP_SYS_ADMIN, so a refusal is the lock, not a missing
//! capability.

mod rrun_common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use rbox_tests::{alpine_fixture, bin, require_root, Scratch};
use rrun_common::{output, Lab};

/// Flags that give the container root every capability rrun can give over its namespaces,
/// without lifting the masked and read-only paths (as `--privileged` would), so the probes
/// test the lock alone.
const EVERY_CAPABILITY: &[&str] = &["--cap-add", "ALL"];

/// Each line tries one way out; a success prints ESCAPED. `/h` is the `:ro` volume; /mnt a --tmpfs.
const PROBES: &str = r#"
mkdir -p /mnt/twin /mnt/x /mnt/y
mount -t tmpfs twin /mnt/twin 2>/dev/null && echo tmpfs-mounted && umount /mnt/twin
try() { name=$1; shift; "$@" >/dev/null 2>&1 && echo "ESCAPED:$name"; }
try volume-remount-rw mount -o remount,rw,bind /h
try volume-setattr-rw mount -o remount,bind,rw /h
try volume-umount umount /h
try volume-umount-lazy umount -l /h
try volume-move mount --move /h /mnt/x
try volume-bind-then-rw sh -c 'mount --bind /h /mnt/y && mount -o remount,rw,bind /mnt/y'
try volume-write sh -c 'echo pwned >> /h/shadow'
try volume-create sh -c 'cp /bin/busybox /h/sush && chmod 4755 /h/sush'
try root-remount-rw mount -o remount,rw /
try root-umount umount -l /
try proc-sys-remount-rw mount -o remount,rw,bind /proc/sys
try proc-sys-umount umount /proc/sys
try proc-sys-move mount --move /proc/sys /mnt/x
try proc-keys-umount umount /proc/keys
try proc-kcore-umount umount /proc/kcore
try proc-timer-list-umount umount -l /proc/timer_list
try sys-firmware-umount umount /sys/firmware
try sys-remount-rw mount -o remount,rw /sys
try fresh-procfs mount -t proc proc /mnt/x
try fresh-sysfs mount -t sysfs sysfs /mnt/y
try proc-umount umount -l /proc
echo probes-done
"#;

/// A host folder only root may enter, holding a root-only file: what an attacker wants.
fn host_secret(s: &Scratch) -> std::path::PathBuf {
    let dir = s.join("secret");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("shadow"), "root:original\n").unwrap();
    std::fs::set_permissions(dir.join("shadow"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// Asserts the probes ran as a root holding CAP_SYS_ADMIN and none of them escaped.
fn assert_all_refused(stdout: &str, stderr: &str, what: &str) {
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines.contains(&"tmpfs-mounted"),
        "{what}: the shell should hold CAP_SYS_ADMIN (mount a tmpfs): {stdout}\n{stderr}"
    );
    assert!(
        lines.contains(&"probes-done"),
        "{what}: probes did not finish: {stdout}\n{stderr}"
    );
    let escaped: Vec<&&str> = lines.iter().filter(|l| l.starts_with("ESCAPED")).collect();
    assert!(escaped.is_empty(), "{what}: {escaped:?}\n{stderr}");
}

/// The host folder holds exactly the original file, unchanged, owned by root, mode 0600.
fn assert_untouched(dir: &Path, what: &str) {
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["shadow"], "{what}: new files on the host");
    let f = dir.join("shadow");
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        "root:original\n",
        "{what}"
    );
    let m = std::fs::metadata(&f).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o7777), (0, 0o600), "{what}");
}

#[test]
fn container_root_with_every_capability_cannot_unlock_a_ro_volume_the_root_or_the_masks() {
    let lab = Lab::new("mlock");
    let s = Scratch::new("mlock-host");
    let dir = host_secret(&s);
    let vol = format!("{}:/h:ro", dir.display());
    let mut opts = vec!["-v", &vol, "--read-only", "--tmpfs", "/mnt"];
    opts.extend_from_slice(EVERY_CAPABILITY);
    let o = lab.run(&opts, &["sh", "-c", PROBES]);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_all_refused(&out, &err, "remap, --read-only");
    assert_untouched(&dir, "remap, --read-only");
    lab.assert_clean(&[]);
}

#[test]
fn exec_into_a_running_container_meets_the_same_locks() {
    let lab = Lab::new("mlockx");
    let s = Scratch::new("mlockx-host");
    let dir = host_secret(&s);
    let vol = format!("{}:/h:ro", dir.display());
    let name = rbox_tests::unique("mlockx");
    let mut c = lab.rrun();
    c.args([
        "-d",
        "--name",
        &name,
        "--net",
        "none",
        "-v",
        &vol,
        "--read-only",
    ])
    .args(["--tmpfs", "/mnt"])
    .args(EVERY_CAPABILITY)
    .args(["--image", &lab.image, "--", "sleep", "1000"]);
    let o = output(c, 60);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut c = lab.rrun();
    c.args(["exec", &name, "sh", "-c", PROBES]);
    let o = output(c, 60);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    let mut rm = lab.rrun();
    rm.args(["rm", "-f", &name]);
    let rmo = output(rm, 60);
    assert_all_refused(&out, &err, "exec");
    assert_untouched(&dir, "exec");
    assert!(rmo.status.success());
    lab.assert_clean(&[]);
}

#[test]
fn rootless_container_root_cannot_unlock_a_ro_volume_or_the_masks() {
    require_root();
    const NOBODY: u32 = 65534;
    let s = Scratch::new("mlockrl");
    std::os::unix::fs::chown(s.path(), Some(NOBODY), Some(NOBODY)).unwrap();
    let store = s.join("store");
    std::fs::create_dir(&store).unwrap();
    std::os::unix::fs::chown(&store, Some(NOBODY), Some(NOBODY)).unwrap();
    // The secret is the caller's own here: rootless root is the caller.
    let dir = s.join("secret");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("shadow"), "root:original\n").unwrap();
    for p in [&dir, &dir.join("shadow")] {
        std::os::unix::fs::chown(p, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let fixture = s.join("alpine.tar.gz");
    std::fs::copy(alpine_fixture("3.15.11"), &fixture).unwrap();
    let as_nobody = |program: &str, args: &[&str]| {
        let mut c = rbox_tests::command("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(bin(program))
            .args(args)
            .env("RBOX_ROOT", &store)
            .current_dir("/");
        output(c, 60)
    };
    let layer = as_nobody("rbuild", &["layer", "add", fixture.to_str().unwrap()]);
    let layer = String::from_utf8_lossy(&layer.stdout).trim().to_string();
    let image = as_nobody("rbuild", &["image", "create", &layer]);
    let image = String::from_utf8_lossy(&image.stdout).trim().to_string();
    assert!(
        image.starts_with("sha256:"),
        "rootless image create: {image:?}"
    );
    let vol = format!("{}:/h:ro", dir.display());
    let mut args = vec![
        "--net",
        "none",
        "-v",
        &vol,
        "--read-only",
        "--tmpfs",
        "/mnt",
    ];
    args.extend_from_slice(EVERY_CAPABILITY);
    args.extend_from_slice(&["--image", &image, "--", "sh", "-c", PROBES]);
    let o = as_nobody("rrun", &args);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_all_refused(&out, &err, "rootless");
    let f = dir.join("shadow");
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "root:original\n");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "new files");
}
