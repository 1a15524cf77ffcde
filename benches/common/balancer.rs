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
    let addresses: Vec<&str> = nodes
        .iter()
        .map(|n| n.base.trim_start_matches("http://"))
        .collect();
    let (process, base) = crate::haproxy::spawn(&addresses, dir);
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
