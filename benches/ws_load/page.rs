//! ws_load's `MODE=chat` ending: a page of messages read over and over, as a chat client
//! scrolling back would.

use std::time::{Duration, Instant};

use serde_json::Value;

/// `GET /api/v2/chatMessages?chatId=1&take=20` from 32 concurrent clients for 10 s, spread over
/// the nodes: requests per second and latency.
pub(crate) async fn throughput(client: &reqwest::Client, bases: &[String], token: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut tasks = Vec::new();
    for i in 0..32 {
        let client = client.clone();
        let url = format!(
            "{}/api/v2/chatMessages?chatId=1&take=20",
            bases[i % bases.len()]
        );
        let cookie = format!("session-v2={token}");
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let start = Instant::now();
                let response = client
                    .get(&url)
                    .header("cookie", &cookie)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["data"]["edges"].as_array().map(Vec::len), Some(20));
                latencies.push(start.elapsed().as_micros() as u64);
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)] as f64 / 1e3;
    println!(
        "GET 20-message page: {} requests in 10 s = {:.0}/s, p50 {:.2} ms, p99 {:.2} ms",
        all.len(),
        all.len() as f64 / 10.0,
        pct(0.5),
        pct(0.99)
    );
}
