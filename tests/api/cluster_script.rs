//! `scripts/cluster.sh` refuses at once, naming what is in its way, when `./scripts/run.sh` (or
//! anything else) already holds its port or its first node's worker id.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::Command;

use crate::helpers::spawn_app_with;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn cluster(balancer: u16, base: u16) -> Command {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/cluster.sh");
    let mut command = Command::new("bash");
    let outbox = std::env::temp_dir().join("vrooli-test-cluster-script");
    command
        .arg(script)
        .arg("1")
        .env("CLUSTER_PORT", balancer.to_string())
        .env("CLUSTER_BASE_PORT", base.to_string())
        .env("VROOLI_BIN", env!("CARGO_BIN_EXE_vrooli"))
        .env("VROOLI__EMAIL__OUTBOX_DIR", outbox.join("email"))
        .env("VROOLI__SMS__OUTBOX_DIR", outbox.join("sms"))
        .env("VROOLI__AUTH__KEY_DIR", outbox.join("keys"))
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

#[tokio::test]
async fn the_cluster_script_refuses_a_port_in_use_at_once() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let started = Instant::now();
    let output = cluster(port, free_port()).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("port {port} is already in use")),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "at once, not after a wait"
    );
}

#[tokio::test]
async fn the_cluster_script_stops_at_once_when_its_worker_id_is_held() {
    // A running node with worker id 0, as ./scripts/run.sh is, on the database the cluster uses.
    let app = spawn_app_with(|s| s.node.worker_id = 0, None).await;
    let started = Instant::now();
    let output = cluster(free_port(), free_port())
        .env("VROOLI__DATABASE__URL", &app.db.url)
        .env("VROOLI__REDIS__URL", "")
        .output()
        .await
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(said.contains("node.worker_id 0 is held"), "{said}");
    assert!(said.contains("node 0 (worker id 0"), "{said}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "stopped when the node did, not after the health wait: {:?}",
        started.elapsed()
    );
}
