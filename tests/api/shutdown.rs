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
    let server = app.server.take().unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .expect("server exits cleanly");
}
