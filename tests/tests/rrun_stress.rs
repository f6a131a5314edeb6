//! rrun under load: 200 containers back to back and 50 in parallel, with no failure and nothing
//! left behind (folders, upper dirs, cgroups in every hierarchy, processes: see
//! `Lab::assert_clean`, which compares them with what existed before the lab ran anything).

mod rrun_common;

use std::process::Stdio;

use rrun_common::Lab;

#[test]
fn two_hundred_containers_back_to_back_leave_nothing() {
    let lab = Lab::new("stress");
    for i in 0..200 {
        let o = lab.run(&[], &["echo", &i.to_string()]);
        assert!(
            o.status.success(),
            "run {i}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), i.to_string());
    }
    lab.assert_clean(&[]);
}

#[test]
fn fifty_containers_in_parallel_leave_nothing() {
    let lab = Lab::new("stress");
    let mut kids = Vec::new();
    for i in 0..50 {
        let mut c = lab.rrun();
        c.args([
            "--net",
            "none",
            "--memory",
            "64m",
            "--image",
            &lab.image,
            "--",
            "sh",
            "-c",
            &format!("sleep 0.5; echo {i}"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        kids.push((i, c.spawn().expect("spawn rrun")));
    }
    for (i, k) in kids {
        let o = rrun_common::wait_output(k, 120);
        assert!(
            o.status.success(),
            "container {i}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), i.to_string());
    }
    lab.assert_clean(&[]);
}
