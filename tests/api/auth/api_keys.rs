//! API keys: created once-visible, stored hashed, accepted in all three header forms, limited to
//! their permissions, refused the moment they are disabled or deleted (even while cached).

use serde_json::{Value, json};

use super::*;
use crate::helpers::SendReply;
use crate::helpers::{TestApp, spawn_app, spawn_app_with_redis};

async fn create(app: &TestApp, cookie: &str, permissions: &[&str]) -> (String, String) {
    let response = post(
        app,
        "/apiKey",
        Some(cookie),
        json!({"name": "ci", "permissions": permissions, "limitHard": 1000}),
    )
    .await;
    assert_eq!(response.status, 200);
    let body: Value = response.body;
    let key = body["data"]["key"].as_str().unwrap().to_owned();
    (
        key,
        body["data"]["apiKey"]["id"].as_str().unwrap().to_owned(),
    )
}

async fn list_with(app: &TestApp, header: (&str, String)) -> crate::helpers::Reply {
    app.client
        .get(app.url("/api/v2/apiKeys"))
        .header(header.0, header.1)
        .reply()
        .await
}

#[tokio::test]
async fn keys_authenticate_within_their_permissions_until_disabled() {
    for redis in [true, false] {
        let app = spawn_app_with_redis(redis).await;
        let (cookie, _, _) = sign_up(&app, None, "Sam").await;
        let (key, id) = create(&app, &cookie, &["ReadPublic", "ReadAuth"]).await;
        assert!(
            key.starts_with("vrk_") && key.len() == 4 + 8 + 1 + 24,
            "{key}"
        );

        // Stored as a hash, listed by its prefix only.
        let stored: (String, String) =
            sqlx::query_as("SELECT key_hash, key_prefix FROM api_keys WHERE id = $1")
                .bind(id.parse::<i64>().unwrap())
                .fetch_one(&app.db.pool)
                .await
                .unwrap();
        assert!(!stored.0.contains(&key[4..]) && key.starts_with(&format!("vrk_{}_", stored.1)));
        let listed: Value = list_with(&app, ("x-api-key", key.clone())).await.body;
        assert_eq!(listed["data"][0]["keyPrefix"], stored.1.as_str());
        assert!(
            !listed.to_string().contains(&key),
            "the secret is never shown again"
        );

        // All three ways of presenting it, even from an origin that is not safe.
        for header in [
            ("x-api-key", key.clone()),
            ("authorization", format!("ApiKey {key}")),
            ("authorization", format!("Bearer {key}")),
        ] {
            let response = app
                .client
                .get(app.url("/api/v2/apiKeys"))
                .header(header.0, &header.1)
                .header("origin", "https://some-integration.example")
                .reply()
                .await;
            assert_eq!(response.status, 200, "{header:?}");
        }
        // A key cannot do what needs a session.
        let session_only = app
            .client
            .post(app.url("/api/v2/auth/logout"))
            .header("x-api-key", &key)
            .reply()
            .await;
        assert_eq!(session_only.status, 403);

        // Disabled: refused at once, although the lookup was cached a moment ago.
        let disable = app
            .client
            .put(app.url(&format!("/api/v2/apiKey/{id}")))
            .header("cookie", format!("{COOKIE}={cookie}"))
            .json(&json!({"disabled": true}))
            .reply()
            .await;
        assert_eq!(disable.status, 200);
        let refused = list_with(&app, ("x-api-key", key.clone())).await;
        assert_eq!(refused.status, 401, "redis: {redis}");
        assert_eq!(refused.body["errors"][0]["code"], "InvalidApiKey");

        // Enabled again, then deleted: refused at once too.
        app.client
            .put(app.url(&format!("/api/v2/apiKey/{id}")))
            .header("cookie", format!("{COOKIE}={cookie}"))
            .json(&json!({"disabled": false}))
            .reply()
            .await;
        assert_eq!(
            list_with(&app, ("x-api-key", key.clone())).await.status,
            200
        );
        let deleted = app
            .client
            .delete(app.url(&format!("/api/v2/apiKey/{id}")))
            .header("cookie", format!("{COOKIE}={cookie}"))
            .reply()
            .await;
        assert_eq!(deleted.status, 200);
        assert_eq!(list_with(&app, ("x-api-key", key)).await.status, 401);
    }
}

#[tokio::test]
async fn a_key_without_the_permission_is_refused() {
    let app = spawn_app().await;
    let (cookie, _, _) = sign_up(&app, None, "Sam").await;
    let (key, _) = create(&app, &cookie, &["ReadPublic"]).await;
    let response = list_with(&app, ("x-api-key", key)).await;
    assert_eq!(response.status, 403);
    assert_eq!(response.body["errors"][0]["code"], "MissingPermission");
    // Unknown keys are 401, bad input 422.
    assert_eq!(
        list_with(&app, ("x-api-key", "vrk_nothing_here".into()))
            .await
            .status,
        401
    );
    let bad = post(
        &app,
        "/apiKey",
        Some(&cookie),
        json!({"name": "x", "permissions": ["Everything"], "limitHard": 1}),
    )
    .await;
    assert_eq!(bad.status, 422);
    let bad = post(
        &app,
        "/apiKey",
        Some(&cookie),
        json!({"name": "x", "permissions": [], "limitHard": 1, "limitSoft": 5}),
    )
    .await;
    assert_eq!(bad.status, 422);
}

#[tokio::test]
async fn keys_stop_when_their_owner_is_locked_even_while_cached() {
    for redis in [true, false] {
        let app = spawn_app_with_redis(redis).await;
        let (cookie, user, _) = sign_up(&app, None, "Sam").await;
        let (key, _) = create(&app, &cookie, &["ReadAuth"]).await;
        // The first use caches the lookup.
        assert_eq!(
            list_with(&app, ("x-api-key", key.clone())).await.status,
            200
        );
        let locked = app
            .client
            .post(app.url(&format!("/api/v2/admin/users/{user}/lock")))
            .bearer_auth("system-key-for-tests")
            .reply()
            .await;
        assert_eq!(locked.status, 200, "redis: {redis}");
        let refused = list_with(&app, ("x-api-key", key.clone())).await;
        assert_eq!(refused.status, 401, "redis: {redis}");
        // And on every later request, in any header form: the owner's status decides.
        let refused = list_with(&app, ("authorization", format!("Bearer {key}"))).await;
        assert_eq!(refused.status, 401, "redis: {redis}");
    }
}

#[tokio::test]
async fn a_user_holds_a_bounded_number_of_keys() {
    let app = crate::helpers::spawn_app_with(|s| s.auth.max_api_keys_per_user = 2, None).await;
    let (cookie, _, _) = sign_up(&app, None, "Sam").await;
    let attempts = (0..4).map(|_| {
        post(
            &app,
            "/apiKey",
            Some(&cookie),
            json!({"name": "ci", "permissions": ["ReadAuth"], "limitHard": 1000}),
        )
    });
    let mut statuses: Vec<u16> = futures_util::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status)
        .collect();
    statuses.sort();
    assert_eq!(
        statuses,
        vec![200, 200, 409, 409],
        "simultaneous creations respect the cap"
    );
}
