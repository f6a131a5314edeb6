//! rrun -it end to end: an interactive shell on a pseudo-terminal of the container's own devpts,
//! Ctrl-C reaching the foreground command, the window size following, the caller's terminal
//! restored. Driven through a pty made by python3's pty module (as seed-lab does).

mod rrun_common;

use std::process::Stdio;

use rrun_common::{wait_output, Lab};

/// Runs rrun -i -t on a pty of 30 rows x 100 columns; types `script` lines with pauses and
/// prints the transcript, then "exit=N" and the outer terminal's mode flags after rrun ended.
fn drive(lab: &Lab, lines: &[&str]) -> String {
    let driver = r#"
import os, pty, select, sys, time, termios, struct, fcntl, json
lines = json.loads(sys.argv[1]); argv = sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    os.execvp(argv[0], argv)
before = termios.tcgetattr(fd)
buf = b""
def pump(secs, until=None):
    global buf
    end = time.time() + secs
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                d = os.read(fd, 4096)
            except OSError:
                return
            if not d:
                return
            buf += d
            if until and until.encode() in buf:
                return
time.sleep(0.5)
for l in lines:
    if l == "^C":
        os.write(fd, b"\x03"); time.sleep(0.5)
    elif l.startswith("@"):
        os.write(fd, l[1:].encode() + b"\n"); time.sleep(1)
    else:
        os.write(fd, l.encode() + b"\n"); pump(5, "MARK")
pump(5)
_, st = os.waitpid(pid, 0)
after = termios.tcgetattr(fd)
print("exit=%d" % os.waitstatus_to_exitcode(st))
print("restored=%s" % (before[3] == after[3]))
print(buf.decode(errors="replace"))
"#;
    let mut c = rbox_tests::command("python3");
    c.arg("-c")
        .arg(driver)
        .arg(serde_json::to_string(lines).unwrap());
    c.arg(rbox_tests::bin("rrun")).args([
        "-i", "-t", "--net", "none", "--image", &lab.image, "--", "/bin/sh",
    ]);
    c.env("RBOX_ROOT", lab.store.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let o = wait_output(c.spawn().expect("python3"), 90);
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

#[test]
fn interactive_shell_answers_on_the_containers_own_pty_and_ctrl_c_reaches_the_command() {
    let lab = Lab::new("tty");
    let out = drive(
        &lab,
        &[
            "echo tty-$((40+2)); tty; stty size; echo MARK",
            "@sleep 30",
            "^C",
            "echo after-$((1+1)) MARK",
            "exit 3",
        ],
    );
    assert!(out.contains("tty-42"), "{out}");
    assert!(
        out.contains("/dev/pts/0"),
        "the pty comes from the container's devpts: {out}"
    );
    assert!(
        out.contains("30 100"),
        "window size follows the caller's: {out}"
    );
    assert!(
        out.contains("after-2"),
        "Ctrl-C stopped sleep and the shell lived on: {out}"
    );
    assert!(out.contains("exit=3"), "{out}");
    assert!(
        out.contains("restored=True"),
        "the caller's terminal modes are restored: {out}"
    );
    lab.assert_clean(&[]);
}

#[test]
fn interactive_tty_without_a_terminal_on_stdin_is_refused_and_tty_alone_works() {
    let lab = Lab::new("tty");
    // -i -t with a pipe or /dev/null as stdin would never end: refused like Docker, one line.
    let o = lab.run(&["-i", "-t"], &["sh"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert!(
        err.contains("the input device is not a TTY") && err.lines().count() == 1,
        "{err}"
    );
    // -t alone only gives the command a terminal: any stdin will do.
    let o = lab.run(&["-t"], &["sh", "-c", "tty; echo out"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("/dev/pts/0") && out.contains("out"), "{out}");
    // The same for exec.
    let name = rbox_tests::unique("tty");
    let mut c = lab.rrun();
    c.args([
        "-d", "--name", &name, "--net", "none", "--image", &lab.image, "--", "sleep", "1000",
    ]);
    assert!(rrun_common::output(c, 30).status.success());
    let exec = |opts: &[&str]| {
        let mut c = lab.rrun();
        c.arg("exec").args(opts).args([&name, "sh", "-c", "tty"]);
        rrun_common::output(c, 30)
    };
    let o = exec(&["-i", "-t"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert!(
        err.contains("the input device is not a TTY") && err.lines().count() == 1,
        "{err}"
    );
    let o = exec(&["-t"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("/dev/pts/"));
    let mut c = lab.rrun();
    c.args(["rm", "-f", &name]);
    assert!(rrun_common::output(c, 30).status.success());
    lab.assert_clean(&[]);
}
