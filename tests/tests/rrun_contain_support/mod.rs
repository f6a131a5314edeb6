//! Shared by the rrun containment tests: static C helpers built in the test (gcc -static), an
//! extra descriptor handed to a spawned rrun, a pseudo-terminal that is the spawned rrun's
//! controlling terminal, and layers with hostile /etc entries built as tar files.
#![allow(dead_code)]

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rbox_tests::Scratch;

/// Compiles C source `src` with `gcc -static` into `dir/name` and returns the path.
pub fn static_c(dir: &Path, name: &str, src: &str) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, src).unwrap();
    let out = dir.join(name);
    let o = rbox_tests::command("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(&out)
        .arg(&c)
        .stdin(Stdio::null())
        .output()
        .expect("gcc");
    assert!(
        o.status.success(),
        "gcc -static {name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// A C program that lists its own open descriptors (but the one it reads /proc/self/fd with),
/// space-separated on one line, and what each points to on the next lines.
pub const LIST_FDS_C: &str = r#"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) { perror("opendir /proc/self/fd"); return 3; }
    int own = dirfd(d);
    struct dirent *e;
    char targets[8192] = "";
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        int n = atoi(e->d_name);
        if (n == own) continue;
        printf("%d ", n);
        char p[64], t[512];
        snprintf(p, sizeof p, "/proc/self/fd/%d", n);
        ssize_t l = readlink(p, t, sizeof t - 1);
        t[l < 0 ? 0 : l] = 0;
        snprintf(targets + strlen(targets), sizeof targets - strlen(targets), "%d -> %s\n", n, t);
    }
    printf("\n%s", targets);
    return 0;
}
"#;

/// Makes `cmd` start with `file` open as descriptor `fd` (not close-on-exec): what a careless
/// caller (a shell with `7<dir`) would hand to rrun.
pub fn with_extra_fd(cmd: &mut Command, file: File, fd: RawFd) {
    let raw = file.as_raw_fd();
    // Kept open in the parent until spawn (moved into the closure).
    let keep = file;
    // SAFETY: the closure only calls dup2 (async-signal-safe) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let _ = &keep;
            if libc::dup2(raw, fd) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// A pty pair (master, slave), both close-on-exec.
pub fn pty() -> (OwnedFd, OwnedFd) {
    // SAFETY: plain libc calls; the descriptors returned are new and owned here.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(m >= 0, "posix_openpt");
        assert_eq!(libc::grantpt(m), 0);
        assert_eq!(libc::unlockpt(m), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0);
        let s = libc::open(
            name.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        assert!(s >= 0, "open the pty slave");
        (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s))
    }
}

/// Makes `cmd` start in a new session whose controlling terminal is `slave`, with the slave as
/// stdin and stderr (stdout stays a pipe the test reads).
pub fn on_controlling_pty(cmd: &mut Command, slave: &OwnedFd) {
    let s = slave.as_raw_fd();
    cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::piped());
    // SAFETY: setsid and ioctl are async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 || libc::ioctl(s, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Bytes waiting to be read on `fd` (non-blocking read of whatever is there).
pub fn drain(fd: &OwnedFd) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; read into a buffer of the size passed.
        let n = unsafe {
            if libc::poll(&mut p, 1, 200) <= 0 {
                break;
            }
            libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len())
        };
        if n <= 0 {
            break;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
    out
}

/// One member of a hostile layer.
pub enum Entry<'a> {
    Dir(&'a str),
    File(&'a str, Vec<u8>),
    Fifo(&'a str),
    Symlink(&'a str, &'a str),
}

/// Writes a tar file holding `entries` in `dir` and returns its path.
pub fn layer_tar(dir: &Scratch, name: &str, entries: &[Entry<'_>]) -> PathBuf {
    let path = dir.join(format!("{name}.tar"));
    let mut b = tar::Builder::new(File::create(&path).unwrap());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        let (p, data): (&str, Vec<u8>) = match e {
            Entry::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                (p, vec![])
            }
            Entry::File(p, d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                (p, d.clone())
            }
            Entry::Fifo(p) => {
                h.set_entry_type(tar::EntryType::Fifo);
                h.set_mode(0o644);
                (p, vec![])
            }
            Entry::Symlink(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_link_name(target).unwrap();
                (p, vec![])
            }
        };
        h.set_path(p).unwrap();
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data.as_slice()).unwrap();
    }
    b.finish().unwrap();
    path
}
