use crate::helpers::Reply;
use crate::helpers::spawn_app;

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = spawn_app().await;
    app.get("/healthcheck").await;
    app.get("/healthcheck").await;
    app.get("/does-not-exist/123").await;
    let reply = app.get_as_system("/metrics").await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = reply.text;
    assert!(
        text.contains(
            r#"vrooli_http_requests_total{method="GET",route="/healthcheck",status="200"} 2"#
        ),
        "{text}"
    );
    // Unmatched paths share one label so a scanner cannot blow up the series count.
    assert!(
        text.contains(
            r#"vrooli_http_requests_total{method="GET",route="unmatched",status="404"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"vrooli_http_request_duration_seconds_count{method="GET",route="/healthcheck",status="200"} 2"#), "{text}");
    // config.toml's 0: the pool is sized from the CPUs.
    let max = app.settings.database.pool_size();
    assert!(
        text.contains(&format!("vrooli_db_pool_max_connections {max}")),
        "{text}"
    );
    let rss_line = text
        .lines()
        .find(|l| l.starts_with("vrooli_process_resident_memory_bytes "))
        .expect(&text);
    let rss: u64 = rss_line.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(rss > 1_000_000, "{rss_line}");
}

#[tokio::test]
async fn job_metrics_follow_the_scheduled_maintenance_jobs() {
    // At start-up the scheduler enqueues this hour's maintenance jobs (the three of
    // `maintenance::schedules`, the orphan files' sweep and the exports' expiry; billing is off
    // here) and a pool runs them.
    let app = spawn_app().await;
    let text = || async { app.metrics().await };
    crate::helpers::wait_until(
        std::time::Duration::from_secs(20),
        "the five maintenance jobs completed",
        || async {
            text()
                .await
                .contains(r#"vrooli_jobs_completed_total{queue="maintenance"} 5"#)
        },
    )
    .await;
    let text = text().await;
    assert!(
        text.contains(r#"vrooli_jobs_enqueued_total{queue="maintenance"} 5"#),
        "{text}"
    );
    assert!(
        text.contains(r#"vrooli_job_run_seconds_count{queue="maintenance"} 5"#),
        "{text}"
    );
    assert!(
        text.contains(r#"vrooli_job_wait_seconds_count{queue="maintenance"} 5"#),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_and_health_details_are_for_operators_only() {
    let app = spawn_app().await;
    let anonymous = app.get("/metrics").await;
    assert_eq!(anonymous.status, 401);
    let wrong = Reply::of(
        app.client
            .get(app.url("/metrics"))
            .bearer_auth("not-the-key"),
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert!(app.metrics().await.contains("vrooli_http_requests_total"));

    let public = app.get("/healthcheck").await.body;
    for (name, service) in public["services"].as_object().unwrap() {
        assert!(service.get("details").is_none(), "{name}: {service}");
        assert!(service["status"].is_string(), "{name}");
    }
    let Reply { body: full, .. } = app.healthcheck().await;
    assert!(
        full["services"]["database"]["details"].is_object(),
        "{full}"
    );
}
