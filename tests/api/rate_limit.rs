//! Token-bucket rate limits: shared by two nodes through Redis, and in memory on a single node.

use serde_json::{Value, json};

use vrooli::config::RouteLimit;

use crate::helpers::SendReply;
use crate::helpers::{SecondNode, TestApp, spawn_app_with};

const LOGIN: &str = "/api/v2/auth/email/login";

fn limit_login_to(per_day: u32) -> impl FnOnce(&mut vrooli::config::Settings) {
    move |s| {
        s.rate_limit.enabled = true;
        s.rate_limit
            .routes
            .insert(LOGIN.to_string(), RouteLimit::PerDay(per_day));
    }
}

async fn login(client: &reqwest::Client, base: &str) -> crate::helpers::Reply {
    client
        .post(format!("{base}{LOGIN}"))
        .json(&json!({"email": "nobody@example.org", "password": "whatever it is"}))
        .reply()
        .await
}

async fn assert_limited(response: crate::helpers::Reply) {
    assert_eq!(response.status, 429);
    let retry_after: u64 = response.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // 3 per day: a token every 8 hours.
    assert!(retry_after > 0 && retry_after <= 8 * 3600, "{retry_after}");
    let body: Value = response.body;
    assert_eq!(body["errors"][0]["code"], "RateLimited");
}

#[tokio::test]
async fn a_limit_holds_across_two_nodes_sharing_redis() {
    let a: TestApp = spawn_app_with(limit_login_to(3), None).await;
    let b = SecondNode::start(&a).await;
    let b_base = b.address.clone();

    let client = reqwest::Client::new();
    for base in [&a.address, &b_base, &a.address] {
        assert_eq!(login(&client, base).await.status, 401, "within the limit");
    }
    assert_limited(login(&client, &b_base).await).await;
    assert_limited(login(&client, &a.address).await).await;
    // Other routes have their own buckets.
    let other = client
        .post(format!("{b_base}/api/v2/auth/validateSession"))
        .reply()
        .await;
    assert_eq!(other.status, 200);

    b.stop().await;
}

#[tokio::test]
async fn a_route_may_use_a_named_preset() {
    let app = spawn_app_with(
        |s| {
            s.rate_limit.enabled = true;
            s.rate_limit.presets.insert("tiny".into(), 2);
            s.rate_limit
                .routes
                .insert(LOGIN.into(), RouteLimit::Preset("tiny".into()));
        },
        None,
    )
    .await;
    for _ in 0..2 {
        assert_eq!(login(&app.client, &app.address).await.status, 401);
    }
    let response = login(&app.client, &app.address).await;
    assert_eq!(response.status, 429);
}

#[tokio::test]
async fn a_single_node_limits_in_memory() {
    let app = spawn_app_with(
        |s| {
            limit_login_to(3)(s);
            s.redis.url = String::new().into();
        },
        None,
    )
    .await;
    for _ in 0..3 {
        assert_eq!(login(&app.client, &app.address).await.status, 401);
    }
    assert_limited(login(&app.client, &app.address).await).await;
}

#[tokio::test]
async fn behind_a_proxy_each_forwarded_client_has_its_own_bucket() {
    let app = spawn_app_with(
        |s| {
            limit_login_to(1)(s);
            s.server.behind_proxy = true;
        },
        None,
    )
    .await;
    let from = |ip: &'static str| {
        app.client
            .post(app.url(LOGIN))
            .header("x-forwarded-for", ip)
            .json(&json!({"email": "nobody@example.org", "password": "whatever it is"}))
            .reply()
    };
    assert_eq!(from("203.0.113.1").await.status, 401);
    assert_eq!(from("203.0.113.2").await.status, 401, "another client");
    assert_eq!(
        from("203.0.113.1").await.status,
        429,
        "the first client again"
    );

    // Sessions record the forwarded address too.
    let signup = app
        .client
        .post(app.url("/api/v2/auth/email/signup"))
        .header("x-forwarded-for", "198.51.100.7")
        .json(&json!({"name": "Sam", "email": "sam@example.org", "password": "correct horse battery"}))
        .reply()
        .await;
    assert_eq!(signup.status, 200);
    let ip: String = sqlx::query_scalar("SELECT host(ip_address) FROM sessions")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(ip, "198.51.100.7");
}

#[tokio::test]
async fn when_redis_goes_away_the_limiter_fails_closed_at_once_and_recovers_when_it_returns() {
    let mut redis = crate::helpers::PrivateRedis::start().await;
    let url = redis.url();
    let app = spawn_app_with(
        move |s| {
            limit_login_to(100)(s);
            s.redis.url = url.into();
            s.redis.response_timeout_ms = 500;
            s.redis.connection_timeout_ms = 500;
        },
        None,
    )
    .await;
    assert_eq!(
        login(&app.client, &app.address).await.status,
        401,
        "limited and allowed"
    );

    redis.kill().await;
    // Every request while Redis is down is refused at once, not held while the connection is
    // retried (redis-rs's default of 6 retries held each for about 6 s).
    for _ in 0..3 {
        let asked = std::time::Instant::now();
        let response = login(&app.client, &app.address).await;
        assert_eq!(response.status, 503);
        let body: Value = response.body;
        assert_eq!(body["errors"][0]["code"], "RateLimitUnavailable");
        assert!(
            asked.elapsed() < std::time::Duration::from_secs(2),
            "refused after {:?}",
            asked.elapsed()
        );
    }
    // Redis back (empty, on the same port). A request that finds the connection that failed
    // while Redis was down is refused and starts a new one; the one after gets through.
    let _redis = crate::helpers::PrivateRedis::start_on(redis.port).await;
    let first = login(&app.client, &app.address).await.status;
    assert!(first == 503 || first == 401, "{first}");
    assert_eq!(login(&app.client, &app.address).await.status, 401);
}

#[tokio::test]
async fn all_of_an_owners_api_keys_share_one_bucket() {
    let app = spawn_app_with(
        |s| {
            s.rate_limit.enabled = true;
            s.rate_limit.api_key_multiplier = 1;
            s.rate_limit
                .routes
                .insert("/api/v2/apiKeys".to_string(), RouteLimit::PerDay(3));
        },
        None,
    )
    .await;
    let (cookie, _, _) = crate::auth::sign_up(&app, None, "Sam").await;
    let mut keys = Vec::new();
    for _ in 0..2 {
        let body: Value = crate::auth::post(
            &app,
            "/apiKey",
            Some(&cookie),
            json!({"name": "ci", "permissions": ["ReadAuth"], "limitHard": 1000}),
        )
        .await
        .body;
        keys.push(body["data"]["key"].as_str().unwrap().to_owned());
    }
    let list = |key: String| {
        app.client
            .get(app.url("/api/v2/apiKeys"))
            .header("x-api-key", key)
            .reply()
    };
    for key in [&keys[0], &keys[1], &keys[0]] {
        assert_eq!(list(key.clone()).await.status, 200);
    }
    // A second key is not a second allowance.
    assert_eq!(list(keys[1].clone()).await.status, 429);
}
