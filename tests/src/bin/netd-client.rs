//! A small client of netd for the tests: one request per run, the reply printed as JSON on
//! stdout (exit 0), a refusal as `refused KIND: MESSAGE` on stderr (exit 1), anything else
//! exit 2. Run it as another user (setpriv) to test authorisation.
//!
//! ```text
//! netd-client SOCKET attach NETNS_PATH NETWORK ID NAME [alias=A]... [port=PROTO/HOSTPORT/PORT[/HOSTIP]]...
//! netd-client SOCKET detach ID [NETWORK]
//! netd-client SOCKET create NAME [subnet=CIDR] [ipv6] [subnet6=CIDR]
//! netd-client SOCKET ls | status | inspect NAME | rm NAME
//! ```

use std::path::Path;

use netd_proto::*;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: netd-client SOCKET OP ARGS...");
        std::process::exit(2);
    }
    let mut c = match Client::connect(Path::new(&args[0])) {
        Ok(c) => c,
        Err(e) => fail(e),
    };
    let rest = &args[2..];
    let kv = |k: &str| -> Vec<String> {
        rest.iter()
            .filter_map(|a| a.strip_prefix(&format!("{k}=")).map(String::from))
            .collect()
    };
    let r = match args[1].as_str() {
        "attach" => {
            let ns = std::fs::File::open(&rest[0]).expect("open the netns path");
            let ports = kv("port")
                .iter()
                .map(|p| {
                    let f: Vec<&str> = p.split('/').collect();
                    PortRequest {
                        proto: if f[0] == "udp" {
                            Proto::Udp
                        } else {
                            Proto::Tcp
                        },
                        host_port: f[1].parse().expect("host port"),
                        port: f[2].parse().expect("port"),
                        host_ip: f.get(3).map(|ip| ip.parse().expect("host ip")),
                    }
                })
                .collect();
            let req = AttachRequest {
                network: rest[1].clone(),
                container_id: rest[2].clone(),
                container_name: rest[3].clone(),
                aliases: kv("alias"),
                ports,
            };
            c.call(&Request::Attach(req), Some(std::os::fd::AsFd::as_fd(&ns)))
        }
        "detach" => c.call(
            &Request::Detach(DetachRequest {
                container_id: rest[0].clone(),
                network: rest.get(1).cloned(),
            }),
            None,
        ),
        "create" => c.call(
            &Request::NetworkCreate(NetworkCreateRequest {
                name: rest[0].clone(),
                subnet: kv("subnet").first().map(|s| s.parse().expect("subnet")),
                ipv6: rest.iter().any(|a| a == "ipv6"),
                subnet6: kv("subnet6").first().map(|s| s.parse().expect("subnet6")),
            }),
            None,
        ),
        "ls" => c.call(&Request::NetworkList {}, None),
        "status" => c.call(&Request::Status {}, None),
        "inspect" => c.call(
            &Request::NetworkInspect {
                name: rest[0].clone(),
            },
            None,
        ),
        "rm" => c.call(
            &Request::NetworkRemove {
                name: rest[0].clone(),
            },
            None,
        ),
        op => {
            eprintln!("netd-client: unknown op {op}");
            std::process::exit(2);
        }
    };
    match r {
        Ok(reply) => println!("{}", serde_json::to_string(&reply).expect("serialize")),
        Err(e) => fail(e),
    }
}

fn fail(e: ClientError) -> ! {
    match e.refusal() {
        Some(r) => {
            eprintln!(
                "refused {}: {}",
                serde_json::to_string(&r.kind)
                    .unwrap_or_default()
                    .trim_matches('"'),
                r.message
            );
            std::process::exit(1)
        }
        None => {
            eprintln!("netd-client: {e}");
            std::process::exit(2)
        }
    }
}
