//! Hostile clients: malformed, oversized, truncated, slow, wrong-version requests and wrong
//! descriptors each get an error (and the connection is closed), and netd goes on serving
//! everyone else meanwhile.

mod netd_common;

use std::time::{Duration, Instant};

use netd_common::{container_id, first_reply, frame, raw_exchange, Host};

fn kind(v: &serde_json::Value) -> String {
    format!("{} {}", v["reply"]["kind"], v["reply"]["body"]["kind"])
}

#[test]
fn malformed_oversized_truncated_and_wrong_version_requests_get_an_error() {
    let mut h = Host::new("x");
    h.start_netd();
    let s = h.socket();
    let w = Duration::from_secs(5);
    let r = first_reply(&raw_exchange(&s, &frame("{not json"), false, w));
    assert!(kind(&r).contains("bad_request"), "{r}");
    assert!(r["reply"]["body"]["message"]
        .as_str()
        .unwrap()
        .contains("malformed request"));
    let r = first_reply(&raw_exchange(
        &s,
        &frame(r#"{"version":1,"request":{"op":"launch_missiles"}}"#),
        false,
        w,
    ));
    assert!(kind(&r).contains("bad_request"), "{r}");
    let r = first_reply(&raw_exchange(
        &s,
        &frame(r#"{"version":7,"request":{"op":"status"}}"#),
        false,
        w,
    ));
    assert!(kind(&r).contains("version"), "{r}");
    let mut big = (10u32 << 20).to_be_bytes().to_vec();
    big.extend_from_slice(&[b'x'; 1000]);
    let r = first_reply(&raw_exchange(&s, &big, false, w));
    assert!(kind(&r).contains("bad_request"), "{r}");
    assert!(
        r["reply"]["body"]["message"]
            .as_str()
            .unwrap()
            .contains("larger than the limit"),
        "{r}"
    );
    // Truncated: the length promises more than comes before the client closes.
    let mut t = 100u32.to_be_bytes().to_vec();
    t.extend_from_slice(b"{\"version\":1");
    let raw = raw_exchange(&s, &t, true, w);
    if !raw.is_empty() {
        let r = first_reply(&raw);
        assert!(
            r["reply"]["body"]["message"]
                .as_str()
                .unwrap()
                .contains("truncated"),
            "{r}"
        );
    }
    // A descriptor where none belongs, and an attach without one.
    let o = h.client(&["attach", "/dev/null", "bridge", &container_id(), "x"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not a network namespace"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let attach = format!(
        r#"{{"version":1,"request":{{"op":"attach","network":"bridge","container_id":"{}","container_name":"x"}}}}"#,
        container_id()
    );
    let r = first_reply(&raw_exchange(&s, &frame(&attach), false, w));
    assert!(
        r["reply"]["body"]["message"]
            .as_str()
            .unwrap()
            .contains("exactly one descriptor"),
        "{r}"
    );
    // netd's own namespace is never attached.
    let o = h.client(&[
        "attach",
        &format!("/run/netns/{}", h.ns),
        "bridge",
        &container_id(),
        "x",
    ]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("netd's own"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Still serving.
    h.client_ok(&["status"]);
    assert!(h.lease_files().is_empty());
}

#[test]
fn a_slow_client_times_out_while_others_are_served() {
    let mut h = Host::new("s");
    h.start_netd();
    let s = h.socket();
    let slow = std::thread::spawn({
        let s = s.clone();
        move || {
            let t0 = Instant::now();
            let raw = raw_exchange(&s, &[0, 0], false, Duration::from_secs(10));
            (t0.elapsed(), raw)
        }
    });
    // Many idle connections at once do not stop the others either.
    let idle: Vec<_> = (0..20)
        .map(|_| std::os::unix::net::UnixStream::connect(&s).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    h.client_ok(&["status"]);
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "served at once: {:?}",
        t0.elapsed()
    );
    let (took, raw) = slow.join().unwrap();
    let r = first_reply(&raw);
    assert!(kind(&r).contains("timeout"), "{r}");
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(5),
        "{took:?}"
    );
    drop(idle);
    h.client_ok(&["status"]);
}
