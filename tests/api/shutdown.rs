use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use tokio::sync::Notify;

use crate::helpers::{routes, spawn_app_with, wait_until};

#[tokio::test]
async fn shutdown_finishes_in_flight_requests() {
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let (e, r) = (entered.clone(), release.clone());
    let mut app = spawn_app_with(
        |_| {},
        routes(move |cfg| {
            let (e, r) = (e.clone(), r.clone());
            cfg.route(
                "/probe/hold",
                web::get().to(move || {
                    let (e, r) = (e.clone(), r.clone());
                    async move {
                        e.notify_one();
                        r.notified().await;
                        HttpResponse::Ok().body("finished")
                    }
                }),
            );
        }),
    )
    .await;

    let request = tokio::spawn(app.client.get(app.url("/probe/hold")).send());
    tokio::time::timeout(Duration::from_secs(10), entered.notified())
        .await
        .expect("request reached the handler");

    let shutdown = app.shutdown.clone();
    let stopping = tokio::spawn(async move { shutdown.shutdown().await });
    // New connections are refused once shutdown has begun...
    let addr = format!("127.0.0.1:{}", app.port);
    wait_until(Duration::from_secs(10), "the listener to close", || async {
        tokio::net::TcpStream::connect(&addr).await.is_err()
    })
    .await;

    // ...while the request already in flight still gets its answer.
    release.notify_one();
    let response = tokio::time::timeout(Duration::from_secs(10), request)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "finished");

    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .unwrap()
        .unwrap();
    exits_cleanly(&mut app).await;
}

#[tokio::test]
async fn a_stopping_node_answers_503_on_its_health_check_while_it_still_serves() {
    let app = spawn_app_with(
        |s| s.server.drain_secs = 2,
        routes(|cfg| {
            cfg.route(
                "/probe/ok",
                web::get().to(|| async { HttpResponse::Ok().body("ok") }),
            );
        }),
    )
    .await;
    let health = || async {
        app.client
            .get(app.url("/healthcheck"))
            .send()
            .await
            .unwrap()
    };
    assert_eq!(health().await.status(), 200);

    let shutdown = app.shutdown.clone();
    let began = std::time::Instant::now();
    let stopping = tokio::spawn(async move { shutdown.shutdown().await });
    wait_until(
        Duration::from_secs(5),
        "the health check to answer 503",
        || async { health().await.status() == 503 },
    )
    .await;
    let report: serde_json::Value = health().await.json().await.unwrap();
    assert_eq!(report["draining"], true, "{report}");
    // Meanwhile it still serves: the balancer has not taken it out yet.
    let response = app.client.get(app.url("/probe/ok")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    tokio::time::timeout(Duration::from_secs(15), stopping)
        .await
        .unwrap()
        .unwrap();
    assert!(
        began.elapsed() >= Duration::from_secs(2),
        "the drain lasted server.drain_secs"
    );
}

/// Pages of messages leave connections kept out of the pool (`db::warm`); the pool closes at
/// shutdown only once every connection is back, so the node gives them back first.
#[tokio::test]
async fn a_node_that_served_pages_of_messages_still_stops() {
    use serde_json::json;

    use crate::chat::{create_chat, get};
    use crate::ws::user;

    // Kept connections stay out of the pool until shutdown: nothing idles them back meanwhile.
    let mut app = spawn_app_with(|s| s.database.ping_after_idle_ms = 600_000, None).await;
    let sam = user(&app, "Sam").await;
    let chat = create_chat(&app, &sam, &[], json!({})).await;
    for _ in 0..3 {
        let reply = get(&app, &format!("/chatMessages?chatId={chat}"), Some(&sam)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }

    tokio::time::timeout(Duration::from_secs(20), app.shutdown.clone().shutdown())
        .await
        .expect("the node did not stop: its pool waited for connections held out of it");
    exits_cleanly(&mut app).await;
}

/// The node's server task ends, without error, within 10 s of its shutdown.
async fn exits_cleanly(app: &mut crate::helpers::TestApp) {
    let server = app.server.take().unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server task did not end")
        .unwrap()
        .expect("server exits cleanly");
}
