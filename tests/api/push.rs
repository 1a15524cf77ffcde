//! Web Push against a real push service fake, npm `web-push-testing` (installed by
//! scripts/test.sh): it checks the VAPID signature against the key the subscription was made
//! with and decrypts each message (RFC 8291), so what it holds is what a browser would show.
//! A 410 from it removes the device; settings turn pushes off; bad subscriptions are refused.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::chat::{api, create_chat, get, post};
use crate::helpers::{Reply, TestApp, free_port, random_suffix, spawn_app_with, wait_until};
use crate::ws::{User, user};

/// The VAPID key of these tests: the P-256 scalar 0x01…0x20, and its public key.
const VAPID_PRIVATE: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA";
const VAPID_PUBLIC: &str =
    "BFFcPW6545a5BNP-yn9U_c0MwemXvzddylFa0KbDtANfRTa-OlDzGPv5pUdZAqIhUCvvDVfgjFOyzApW8X2fk1Q";

/// web-push-testing on a port of its own; killed when dropped.
struct PushService {
    base: String,
    http: reqwest::Client,
    _child: tokio::process::Child,
}

impl PushService {
    async fn start() -> Self {
        let dir = std::env::var("VROOLI_NODE_DIR").unwrap_or_else(|_| {
            format!(
                "{}/.cache/vrooli-rs/node",
                std::env::var("HOME").unwrap_or_default()
            )
        });
        let server = format!("{dir}/node_modules/web-push-testing/src/bin/server.js");
        let port = free_port();
        let child = tokio::process::Command::new("node")
            .arg(&server)
            .arg(port.to_string())
            .kill_on_drop(true)
            .spawn()
            .expect("node with web-push-testing (scripts/test.sh installs it)");
        let base = format!("http://localhost:{port}");
        let http = reqwest::Client::new();
        wait_until(
            Duration::from_secs(20),
            "web-push-testing to listen",
            || async { http.post(format!("{base}/status")).send().await.is_ok() },
        )
        .await;
        Self {
            base,
            http,
            _child: child,
        }
    }

    async fn call(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A browser's subscription made with the server's key: its JSON and client hash.
    async fn subscribe(&self, vapid_public: &str) -> (Value, String) {
        let (status, body) = self
            .call(
                "/subscribe",
                json!({"userVisibleOnly": "true", "applicationServerKey": vapid_public}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let hash = body["data"]["clientHash"].as_str().unwrap().to_owned();
        let mut subscription = body["data"].clone();
        subscription.as_object_mut().unwrap().remove("clientHash");
        (subscription, hash)
    }

    /// The decrypted messages the browser got.
    async fn messages(&self, hash: &str) -> Vec<Value> {
        let (_, body) = self
            .call("/get-notifications", json!({"clientHash": hash}))
            .await;
        body["data"]["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|m| serde_json::from_str(m.as_str().unwrap_or("null")).unwrap_or(Value::Null))
            .collect()
    }
}

fn push_settings(s: &mut vrooli::config::Settings) {
    s.push.vapid_private_key = VAPID_PRIVATE.to_owned().into();
    s.push.allow_insecure_endpoints = true;
}

async fn queue_drained(app: &TestApp) {
    wait_until(
        Duration::from_secs(20),
        "the push queue to drain",
        || async {
            let open: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM jobs WHERE queue = 'push-notification'
               AND state IN ('available', 'running', 'retrying')",
            )
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
            open == 0
        },
    )
    .await;
}

async fn invite_to_a_chat(app: &TestApp, from: &User, to: &User, name: &str) {
    let chat = create_chat(app, from, &[], json!({"name": name})).await;
    let reply = post(
        app,
        "/chatInvite",
        from,
        json!({"chatId": chat, "userId": to.id}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn notices_are_pushed_encrypted_and_a_gone_subscription_removes_its_device() {
    let service = PushService::start().await;
    let app = spawn_app_with(push_settings, None).await;
    let sam = user(&app, "Sam").await;
    let kim = user(&app, "Kim").await;
    let Reply { body, .. } = get(&app, "/pushDevices", Some(&kim)).await;
    assert_eq!(body["data"]["vapidPublicKey"], VAPID_PUBLIC, "{body}");
    let (subscription, hash) = service.subscribe(VAPID_PUBLIC).await;
    let mut device = subscription.clone();
    device["name"] = json!("Kim's laptop");
    let added = post(&app, "/pushDevice", &kim, device).await;
    assert_eq!(added.status, 200, "{}", added.body);
    // Subscribing the same browser again refreshes it: still one device.
    assert_eq!(
        post(&app, "/pushDevice", &kim, subscription.clone())
            .await
            .status,
        200
    );
    let Reply { body, .. } = get(&app, "/pushDevices", Some(&kim)).await;
    assert_eq!(body["data"]["devices"].as_array().map(Vec::len), Some(1));

    // A team invite reaches the browser, decrypted by the push service.
    let Reply { body, .. } = post(&app, "/team", &sam, json!({"name": "Crew"})).await;
    let team = body["data"]["id"].as_str().unwrap().to_owned();
    post(
        &app,
        "/memberInvite",
        &sam,
        json!({"teamId": team, "userId": kim.id}),
    )
    .await;
    wait_until(Duration::from_secs(20), "the pushed invite", || async {
        service.messages(&hash).await.len() == 1
    })
    .await;
    let message = &service.messages(&hash).await[0];
    assert_eq!(
        message["title"], "You are invited to join Crew",
        "{message}"
    );
    assert_eq!(message["link"], format!("/team/{team}"));

    // Pushes off: the next notice stays in the app.
    let off = api(
        &app,
        Method::PUT,
        "/notificationSettings",
        Some(&kim),
        Some(json!({"toPush": false})),
    )
    .await;
    assert_eq!(off.status, 200, "{}", off.body);
    invite_to_a_chat(&app, &sam, &kim, "Quiet").await;
    queue_drained(&app).await;
    assert_eq!(service.messages(&hash).await.len(), 1);

    // The browser unsubscribes (the service answers 410 from now on): the device goes.
    api(
        &app,
        Method::PUT,
        "/notificationSettings",
        Some(&kim),
        Some(json!({})),
    )
    .await;
    let (status, body) = service
        .call(&format!("/expire-subscription/{hash}"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    invite_to_a_chat(&app, &sam, &kim, "Gone").await;
    wait_until(
        Duration::from_secs(20),
        "the gone device removed",
        || async {
            get(&app, "/pushDevices", Some(&kim)).await.body["data"]["devices"]
                .as_array()
                .is_some_and(Vec::is_empty)
        },
    )
    .await;
    let dead: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM jobs WHERE queue = 'push-notification' AND state = 'dead'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(dead, 0, "a gone subscription is not a failure");
}

#[tokio::test]
async fn bad_subscriptions_are_refused_and_push_without_a_key_is_unavailable() {
    let app = spawn_app_with(
        |s| s.push.vapid_private_key = VAPID_PRIVATE.to_owned().into(),
        None,
    )
    .await;
    let kim = user(&app, "Kim").await;
    let keys = json!({"p256dh": VAPID_PUBLIC, "auth": "coNsW1urLTPzTROLyzoSeA"});
    let refused = [
        json!({"endpoint": "http://push.example.org/x", "keys": keys}),
        json!({"endpoint": "https://127.0.0.1/x", "keys": keys}),
        json!({"endpoint": "https://localhost/x", "keys": keys}),
        json!({"endpoint": "not a url", "keys": keys}),
        json!({"endpoint": "https://push.example.org/x", "keys": {"p256dh": "AAAA", "auth": "coNsW1urLTPzTROLyzoSeA"}}),
        json!({"endpoint": "https://push.example.org/x", "keys": {"p256dh": VAPID_PUBLIC, "auth": "short"}}),
    ];
    for body in refused {
        let reply = post(&app, "/pushDevice", &kim, body.clone()).await;
        assert_eq!(
            (reply.status, reply.body["errors"][0]["code"].clone()),
            (422, json!("InvalidPushSubscription")),
            "{body}"
        );
    }
    let good = json!({"endpoint": "https://push.example.org/x", "keys": keys});
    assert_eq!(post(&app, "/pushDevice", &kim, good).await.status, 200);
    let gone = api(&app, Method::DELETE, "/pushDevice/1", Some(&kim), None).await;
    assert_eq!(
        (gone.status, gone.body["errors"][0]["code"].clone()),
        (404, json!("PushDeviceNotFound"))
    );

    let plain = spawn_app_with(|s| s.push.generate_vapid_key = false, None).await;
    let lee = user(&plain, "Lee").await;
    let off = post(
        &plain,
        "/pushDevice",
        &lee,
        json!({"endpoint": "https://push.example.org/x", "keys": keys}),
    )
    .await;
    assert_eq!(
        (off.status, off.body["errors"][0]["code"].clone()),
        (503, json!("PushNotConfigured"))
    );
    assert_eq!(
        get(&plain, "/pushDevices", Some(&lee)).await.body["data"]["vapidPublicKey"],
        Value::Null
    );
}

/// Push works out of the box: with no key configured, the first start makes one and keeps it,
/// so a node started again (or another sharing the key directory) signs with the same key.
#[tokio::test]
async fn without_a_configured_key_one_is_made_at_first_start_and_kept() {
    let dir = std::env::temp_dir().join(format!("vrooli-test-vapid-{}", random_suffix()));
    let keep = dir.clone();
    let first = spawn_app_with(move |s| s.auth.key_dir = keep.clone(), None).await;
    let sam = user(&first, "Sam").await;
    let listed = get(&first, "/pushDevices", Some(&sam)).await;
    let public = listed.body["data"]["vapidPublicKey"]
        .as_str()
        .expect("a VAPID public key without configuring one")
        .to_owned();
    let keys = json!({"p256dh": VAPID_PUBLIC, "auth": "coNsW1urLTPzTROLyzoSeA"});
    let subscribed = post(
        &first,
        "/pushDevice",
        &sam,
        json!({"endpoint": "https://push.example.org/x", "keys": keys}),
    )
    .await;
    assert_eq!(subscribed.status, 200, "{}", subscribed.body);

    let keep = dir.clone();
    let again = spawn_app_with(move |s| s.auth.key_dir = keep.clone(), None).await;
    let kim = user(&again, "Kim").await;
    assert_eq!(
        get(&again, "/pushDevices", Some(&kim)).await.body["data"]["vapidPublicKey"],
        public.as_str(),
        "the kept key, not a new one"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// An endpoint whose name resolves to a private address is refused when subscribed, and a
/// device whose endpoint reaches one anyway (the name re-pointed after it was subscribed) is
/// never dialled: its job dies saying why and the device stays (issue 34, A6: no 404/410
/// oracle). `inside.test` resolves through `egress.hosts`, read by the server's own resolver
/// before the system's; `localhost` through the system's.
#[tokio::test]
async fn endpoints_that_resolve_to_private_addresses_are_refused_and_never_dialled() {
    let app = spawn_app_with(
        |s| {
            s.push.vapid_private_key = VAPID_PRIVATE.to_owned().into();
            s.egress.hosts = vec!["127.0.0.1 inside.test".into()];
        },
        None,
    )
    .await;
    let sam = user(&app, "Sam").await;
    let kim = user(&app, "Kim").await;
    let keys = json!({"p256dh": VAPID_PUBLIC, "auth": "coNsW1urLTPzTROLyzoSeA"});
    let reply = post(
        &app,
        "/pushDevice",
        &kim,
        json!({"endpoint": "https://inside.test/x", "keys": keys}),
    )
    .await;
    assert_eq!(
        (reply.status, reply.body["errors"][0]["code"].clone()),
        (422, json!("InvalidPushSubscription")),
        "{}",
        reply.body
    );

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    sqlx::query(
        "INSERT INTO push_devices (id, user_id, endpoint, p256dh, auth) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(7_000_002_i64)
    .bind(kim.id.parse::<i64>().unwrap())
    .bind(format!("https://localhost:{port}/push"))
    .bind(VAPID_PUBLIC)
    .bind("coNsW1urLTPzTROLyzoSeA")
    .execute(&app.db.pool)
    .await
    .unwrap();
    invite_to_a_chat(&app, &sam, &kim, "Inside").await;
    queue_drained(&app).await;
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the private address was never dialled"
    );
    let (state, error): (String, String) =
        sqlx::query_as("SELECT state, last_error FROM jobs WHERE queue = 'push-notification'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(state, "dead", "{error}");
    assert!(error.contains("private address"), "{error}");
    let devices: i64 = sqlx::query_scalar("SELECT count(*) FROM push_devices")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(devices, 1, "the device stays");
}
