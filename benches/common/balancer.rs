//! HAProxy in front of the bench's nodes, as `deploy/haproxy.cfg` has it (ws_load's
//! `BALANCER=1`).

use std::time::Duration;

use crate::common::Node;

/// HAProxy with the repository's `deploy/haproxy.cfg` in front of `nodes` (ADR 22), on a free
/// port; killed when dropped.
pub struct Balancer {
    pub base: String,
    pub process: tokio::process::Child,
}

pub async fn start_balancer(nodes: &[Node], dir: &std::path::Path) -> Balancer {
    let mut config = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/haproxy.cfg"),
    )
    .expect("deploy/haproxy.cfg");
    for (i, node) in nodes.iter().enumerate() {
        let address = node.base.trim_start_matches("http://");
        config.push_str(&format!("    server node{i} {address} check\n"));
    }
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Debian puts it in /usr/sbin, which a user's PATH may not have.
    let bin = if std::path::Path::new("/usr/sbin/haproxy").exists() {
        "/usr/sbin/haproxy"
    } else {
        "haproxy"
    };
    let process = tokio::process::Command::new(bin)
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .env("CLUSTER_BIND", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("haproxy (scripts/setup.sh installs it)");
    let base = format!("http://127.0.0.1:{port}");
    // Up once its health checks (1 s apart, two to rise) found every node.
    for _ in 0..100 {
        if reqwest::get(format!("{base}/healthcheck"))
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            tokio::time::sleep(Duration::from_secs(3)).await;
            return Balancer { base, process };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the balancer did not start");
}
