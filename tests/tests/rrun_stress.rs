//! rrun under load: 200 containers back to back and 50 in parallel, with no failure and nothing
//! left behind (folders, mounts, cgroups, processes).

mod rrun_common;

use std::process::Stdio;

use rrun_common::Lab;

fn leftover_cgroups(ids: &[String]) -> Vec<String> {
    ids.iter().filter(|id| rrun_common::cgroup_exists(id)).cloned().collect()
}

#[test]
fn two_hundred_containers_back_to_back_leave_nothing() {
    let lab = Lab::new("stress");
    for i in 0..200 {
        let o = lab.run(&[], &["echo", &i.to_string()]);
        assert!(o.status.success(), "run {i}: {}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), i.to_string());
    }
    lab.assert_clean(&[]);
    let left = std::fs::read_to_string("/proc/self/mountinfo").unwrap().matches("overlay").count();
    assert!(left < 50, "overlay mounts piling up on the host: {left}");
}

#[test]
fn fifty_containers_in_parallel_leave_nothing() {
    let lab = Lab::new("stress");
    let mut kids = Vec::new();
    for i in 0..50 {
        let mut c = lab.rrun();
        c.args(["--net", "none", "--memory", "64m", "--image", &lab.image, "--", "sh", "-c", &format!("sleep 0.5; echo {i}")])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        kids.push((i, c.spawn().expect("spawn rrun")));
    }
    let mut seen_ids = Vec::new();
    for (i, k) in kids {
        let o = rrun_common::wait_output(k, 120);
        assert!(o.status.success(), "container {i}: {}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), i.to_string());
        seen_ids.extend(lab.container_ids());
    }
    lab.assert_clean(&[]);
    assert!(leftover_cgroups(&seen_ids).is_empty());
}
