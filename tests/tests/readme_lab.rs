//! tools/readme-lab, the runner of README.md's guided lab, on a small lab of its own: a step
//! whose output differs from what is written fails, naming it; a step that exits non-zero
//! fails; `…` matches any text in a line and any lines alone; steps share one shell; the steps
//! that need netd are reported as skipped, never as passed, while there is no netd binary.
//! (CI runs the README's own lab with the same script: .ci/run.)

use std::fs;
use std::path::Path;
use std::process::Command;

use rbox_tests::{bin, require_root, Scratch};

const LAB: &str = r#"# a README

## Before

```console
$ echo not a step of the lab
```

## The guided lab

### 1. first

```console
$ export PATH=$PWD/target/release:$PATH
$ echo hello
hello
$ WORD=carried; echo "$WORD over"
carried over
$ echo written; echo differently
written
and wrong
$ printf 'a 1 b\nc\nd\n'
a … b
…
$ echo fails; false
fails
$ for i in 1 2; do
>   echo "line $i"
> done
line 1
line 2
$ rbuild --version
rbuild …
```

```console needs-netd
$ echo networked
networked
```

## After

```console
$ echo not a step either
```
"#;

#[test]
fn readme_lab_fails_on_drift_and_skips_netd_steps_without_netd() {
    require_root();
    let s = Scratch::new("rlab");
    let readme = s.join("README.md");
    fs::write(&readme, LAB).unwrap();
    // the binaries without netd, whatever this build holds
    let bins = s.join("bin");
    fs::create_dir_all(&bins).unwrap();
    for b in ["rbuild", "rrun", "rinit"] {
        fs::copy(bin(b), bins.join(b)).unwrap();
    }
    let o = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/readme-lab"))
        .env("README_LAB_FILE", &readme)
        .env("RBOX_BIN", &bins)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| {
            l.starts_with("ok - ") || l.starts_with("not ok - ") || l.starts_with("skip - ")
        })
        .collect();
    let verdicts: Vec<String> = lines
        .iter()
        .map(|l| l.split(" (README").next().unwrap().to_string())
        .collect();
    assert_eq!(
        verdicts,
        [
            "ok - 1. first: $ export PATH=$PWD/target/release:$PATH",
            "ok - 1. first: $ echo hello",
            "ok - 1. first: $ WORD=carried; echo \"$WORD over\"",
            "not ok - 1. first: $ echo written; echo differently",
            "ok - 1. first: $ printf 'a 1 b\\nc\\nd\\n'",
            "not ok - 1. first: $ echo fails; false",
            "ok - 1. first: $ for i in 1 2; do …",
            "ok - 1. first: $ rbuild --version",
            "skip - 1. first: $ echo networked",
        ],
        "{out}"
    );
    assert!(
        lines[8].contains("not yet runnable: netd is not built"),
        "{out}"
    );
    assert!(
        out.contains("  got:\n    written\n    differently\n"),
        "{out}"
    );
    assert!(out.contains("exit status 1"), "{out}");
    assert_eq!(
        out.lines().last(),
        Some("6 passed, 2 failed, 1 skipped"),
        "{out}"
    );
}
