//! Rate limits behind the balancer: counted per client across nodes, by the address HAProxy
//! puts in `X-Forwarded-For`, whatever the client claims there or in `Forwarded`.

use serde_json::json;

use super::{Balancer, port};
use crate::helpers::{SecondNode, SendReply, spawn_app_with};

#[tokio::test]
async fn rate_limits_hold_across_nodes_behind_the_balancer_whatever_the_client_claims() {
    const LOGIN: &str = "/api/v2/auth/email/login";
    let limited = |s: &mut vrooli::config::Settings| {
        s.server.behind_proxy = true;
        s.rate_limit.enabled = true;
        s.rate_limit
            .routes
            .insert(LOGIN.to_string(), vrooli::config::RouteLimit::PerDay(4));
    };
    let a = spawn_app_with(limited, None).await;
    let b = SecondNode::start_with(&a, 1, limited).await;
    let c = SecondNode::start_with(&a, 2, limited).await;
    let lb = Balancer::start(&[a.port, port(&b.address), port(&c.address)]).await;
    let mut statuses = Vec::new();
    for n in 0..8 {
        // Each request claims another address; the balancer replaces the claim with the real
        // one, so every request counts against the same client, on whichever node it lands.
        let reply = a
            .client
            .post(format!("{}{LOGIN}", lb.base))
            .header("x-forwarded-for", format!("203.0.113.{n}"))
            .header("forwarded", format!("for=198.51.100.{n}"))
            .json(&json!({"email": "nobody@example.org", "password": "whatever it is"}))
            .reply()
            .await;
        statuses.push(reply.status);
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 401, 429, 429, 429, 429],
        "four per day for this client across the three nodes"
    );
    b.stop().await;
    c.stop().await;
}
