//! netd's authorisation, each refusal with a non-root client (uid 65534 through setpriv):
//! the socket's group, namespaces not owned by the caller's user namespaces, host ports below
//! 1024, someone else's attachment, the per-user limit, and networks (root only).

mod netd_common;

use std::process::Output;

use netd_common::{container_id, Host};
use rbox_tests::bin;

const UID: u32 = 65534;
/// The socket's group in these tests (the client is given it or not).
const GID: u32 = 65534;

/// netd-client as uid 65534 with group `groups` (real and supplementary), optionally inside a new user and network
/// namespace of its own (`unshare -Urn`, the namespace passed as /proc/self/ns/net).
fn as_user(h: &Host, own_ns: bool, groups: &str, script: &str) -> Output {
    let client = bin("netd-client");
    let sock = h.socket();
    let body = script.replace(
        "CLIENT",
        &format!("{} {}", client.display(), sock.display()),
    );
    let inner = if own_ns {
        format!("unshare -Urn sh -c '{body}'")
    } else {
        format!("sh -c '{body}'")
    };
    std::process::Command::new("setpriv")
        .args([
            &format!("--reuid={UID}"),
            &format!("--regid={groups}"),
            &format!("--groups={groups}"),
            "--",
            "sh",
            "-c",
            &inner,
        ])
        .output()
        .expect("setpriv")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn host() -> Host {
    let mut h = Host::new("u");
    h.write_config(&format!(
        "socket_group = \"{GID}\"\nmax_attachments_per_user = 1\n"
    ));
    h.start_netd();
    h
}

#[test]
fn a_user_outside_the_socket_group_cannot_connect() {
    let h = host();
    let o = as_user(&h, false, "12345", "CLIENT status");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no permission to use netd's socket"),
        "{}",
        stderr(&o)
    );
    let o = as_user(&h, false, &GID.to_string(), "CLIENT status");
    assert!(o.status.success(), "in the group: {}", stderr(&o));
}

#[test]
fn a_user_attaches_only_namespaces_of_its_own_user_namespaces_and_ports_from_1024() {
    let mut h = host();
    let c = h.container_ns();
    let g = GID.to_string();
    let o = as_user(
        &h,
        false,
        &g,
        &format!("CLIENT attach /run/netns/{c} bridge {} u1", container_id()),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("refused denied")
            && stderr(&o)
                .contains("may attach only network namespaces owned by its own user namespaces"),
        "{}",
        stderr(&o)
    );
    let o = as_user(
        &h,
        true,
        &g,
        &format!(
            "CLIENT attach /proc/self/ns/net bridge {} u2 port=tcp/80/80",
            container_id()
        ),
    );
    assert!(
        stderr(&o).contains("only host ports >= 1024"),
        "{}",
        stderr(&o)
    );
    let o = as_user(
        &h,
        true,
        &g,
        &format!(
            "CLIENT attach /proc/self/ns/net bridge {} u3 port=tcp/8080/80",
            container_id()
        ),
    );
    assert!(
        o.status.success(),
        "its own namespace, port 8080: {}",
        stderr(&o)
    );
    // The namespace ended with the client: the lease goes too.
    for _ in 0..100 {
        if h.lease_files().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        h.lease_files().is_empty(),
        "released when its namespace ended"
    );
}

#[test]
fn a_user_detaches_only_its_own_and_stays_within_its_limit() {
    let mut h = host();
    let c = h.container_ns();
    let root_id = container_id();
    h.client_ok(&[
        "attach",
        &format!("/run/netns/{c}"),
        "bridge",
        &root_id,
        "rootc",
    ]);
    let g = GID.to_string();
    let o = as_user(&h, false, &g, &format!("CLIENT detach {root_id}"));
    assert!(stderr(&o).contains("belongs to uid 0"), "{}", stderr(&o));
    assert_eq!(h.lease_files().len(), 1, "still attached");
    let (a, b) = (container_id(), container_id());
    let o = as_user(
        &h,
        true,
        &g,
        &format!("CLIENT attach /proc/self/ns/net bridge {a} ua >/dev/null && CLIENT attach /proc/self/ns/net bridge {b} ub"),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("refused limit") && stderr(&o).contains("limit per user"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn networks_are_created_and_removed_by_root_only() {
    let h = host();
    let g = GID.to_string();
    let o = as_user(&h, false, &g, "CLIENT create mine subnet=10.78.40.0/24");
    assert!(
        stderr(&o).contains("network create needs root"),
        "{}",
        stderr(&o)
    );
    let o = as_user(&h, false, &g, "CLIENT rm bridge");
    assert!(
        stderr(&o).contains("network rm needs root"),
        "{}",
        stderr(&o)
    );
    let o = as_user(&h, false, &g, "CLIENT ls");
    assert!(
        o.status.success(),
        "listing is for everyone: {}",
        stderr(&o)
    );
}
