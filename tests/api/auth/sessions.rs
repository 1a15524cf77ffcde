//! Sessions: several accounts per browser, sign-out, silent refresh, and forged tokens.
//!
//! Long on purpose (~500 lines): each session flow is one test that walks it end to end.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use vrooli::auth::keys::TokenKeys;
use vrooli::auth::token::{self, TokenUser};
use vrooli::ids::{SessionId, UserId};

use super::*;
use crate::helpers::SendReply;
use crate::helpers::{
    SecondNode, TestApp, random_suffix, spawn_app, spawn_app_with, spawn_app_with_redis,
};

#[tokio::test]
async fn several_accounts_share_a_browser_switch_and_sign_out_one_by_one() {
    let app = spawn_app().await;
    let (first, a, _) = sign_up(&app, None, "Ann").await;
    let (both, b, _) = sign_up(&app, Some(&first), "Bob").await;
    assert_eq!(
        user_ids(&session(&app, &both).await),
        vec![b.clone(), a.clone()],
        "newest first"
    );

    let switched = post(
        &app,
        "/auth/switchCurrentAccount",
        Some(&both),
        json!({"id": a}),
    )
    .await;
    assert_eq!(switched.status, 200);
    let switched = set_cookie(&switched).unwrap();
    assert_eq!(
        user_ids(&session(&app, &switched).await),
        vec![a.clone(), b.clone()]
    );
    let stranger = post(
        &app,
        "/auth/switchCurrentAccount",
        Some(&switched),
        json!({"id": "123"}),
    )
    .await;
    assert_eq!(stranger.status, 400);

    let out = post(&app, "/auth/logout", Some(&switched), json!({"id": b})).await;
    assert_eq!(out.status, 200);
    let only_a = set_cookie(&out).unwrap();
    assert_eq!(user_ids(&session(&app, &only_a).await), vec![a.clone()]);
    // Bob's session is revoked; Ann's goes on.
    let bob_revoked: bool =
        sqlx::query_scalar("SELECT revoked_at IS NOT NULL FROM sessions WHERE user_id = $1")
            .bind(b.parse::<i64>().unwrap())
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert!(bob_revoked);

    // A body that is there must fit: a stray field signs nobody out (it once read as "no body").
    let stray = post(&app, "/auth/logout", Some(&only_a), json!({"who": b})).await;
    assert_eq!(stray.status, 422, "{}", stray.text);
    assert_eq!(stray.body["errors"][0]["code"], "InvalidBody");
    assert_eq!(user_ids(&session(&app, &only_a).await), vec![a.clone()]);

    let last = post(&app, "/auth/logout", Some(&only_a), json!({})).await;
    assert_eq!(last.status, 200);
    assert_eq!(set_cookie(&last).as_deref(), Some(""), "cookie removed");
    assert_eq!(last.body["data"]["isLoggedIn"], false);
}

#[tokio::test]
async fn a_signed_out_token_is_refused_on_the_very_next_request() {
    for redis in [true, false] {
        let app = spawn_app_with_redis(redis).await;
        let (cookie, _, email) = sign_up(&app, None, "Sam").await;
        // A second device of the same user.
        let other = post(
            &app,
            "/auth/email/login",
            None,
            json!({"email": email, "password": "correct horse battery"}),
        )
        .await;
        let other = set_cookie(&other).unwrap();

        assert_eq!(
            post(&app, "/auth/logoutAll", Some(&cookie), json!({}))
                .await
                .status,
            200
        );
        for token in [&cookie, &other] {
            // Still inside its access window, yet refused: the revocation list says so.
            let response = post(&app, "/auth/logout", Some(token), json!({})).await;
            assert_eq!(response.status, 401, "redis: {redis}");
            assert_eq!(
                set_cookie(&response).as_deref(),
                Some(""),
                "the dead cookie is removed"
            );
            assert_eq!(response.body["errors"][0]["code"], "SessionRevoked");
        }
    }
}

/// The app's signing keys, to make tokens with chosen times.
fn keys(app: &TestApp) -> TokenKeys {
    TokenKeys::load(&app.settings.auth).unwrap()
}

async fn session_of(app: &TestApp, user: &str) -> TokenUser {
    let id: i64 =
        sqlx::query_scalar("SELECT id FROM sessions WHERE user_id = $1 ORDER BY id DESC LIMIT 1")
            .bind(user.parse::<i64>().unwrap())
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    TokenUser {
        id: UserId(user.parse().unwrap()),
        session_id: SessionId(id),
        handle: None,
        name: Some("Sam".into()),
    }
}

fn token_with(keys: &TokenKeys, user: TokenUser, access_exp_offset: i64) -> String {
    let now = Utc::now();
    token::issue(
        keys,
        vec![user],
        now,
        now + chrono::Duration::seconds(access_exp_offset),
        now + chrono::Duration::days(1),
        4096,
    )
    .unwrap()
}

#[tokio::test]
async fn past_the_access_window_the_session_row_decides_and_the_cookie_is_refreshed() {
    let app = spawn_app().await;
    let (_, id, _) = sign_up(&app, None, "Sam").await;
    let keys = keys(&app);
    let user = session_of(&app, &id).await;
    let stale = token_with(&keys, user.clone(), -60);

    let response = post(&app, "/auth/validateSession", Some(&stale), json!({})).await;
    let fresh = set_cookie(&response).expect("silent refresh sets a new cookie");
    assert_ne!(fresh, stale);
    let claims = token::verify(&keys, &fresh).unwrap();
    assert!(claims.access_exp > Utc::now().timestamp());
    assert_eq!(response.body["data"]["isLoggedIn"], true);

    // Attack: an access window that has passed, on a session revoked behind its back.
    sqlx::query("UPDATE sessions SET revoked_at = now() WHERE id = $1")
        .bind(user.session_id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let response = post(&app, "/auth/logout", Some(&stale), json!({})).await;
    assert_eq!(response.status, 401);
    assert_eq!(response.body["errors"][0]["code"], "SessionRevoked");
}

#[tokio::test]
async fn forged_and_tampered_tokens_are_refused() {
    let app = spawn_app().await;
    let (cookie, id, _) = sign_up(&app, None, "Sam").await;
    let user = session_of(&app, &id).await;
    let claims = json!({
        "iss": "vrooli", "iat": Utc::now().timestamp(), "exp": Utc::now().timestamp() + 3600,
        "accessExp": Utc::now().timestamp() + 600,
        "users": [{"id": user.id.to_string(), "sessionId": user.session_id.to_string()}],
    });
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());

    // alg: none, no signature.
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims)
    );
    // Signed with another Ed25519 key.
    let dir = std::env::temp_dir().join(format!("vrooli-other-keys-{}", random_suffix()));
    vrooli::auth::keys::generate_into(&dir.join("k.pem"), &dir.join("k.pub.pem")).unwrap();
    let other_key = EncodingKey::from_ed_pem(&std::fs::read(dir.join("k.pem")).unwrap()).unwrap();
    let wrong_key =
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &other_key).unwrap();
    // HS256 keyed with our public key (the classic algorithm-confusion attack).
    let public = std::fs::read(app.settings.auth.key_dir.join("token-ed25519.pub.pem")).unwrap();
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&public),
    )
    .unwrap();
    // A real token whose payload was edited (another user id), signature kept.
    let parts: Vec<&str> = cookie.split('.').collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["users"][0]["id"] = json!("1");
    let tampered = format!("{}.{}.{}", parts[0], b64(&payload), parts[2]);
    // Garbage larger than any token we issue.
    let oversized = format!(
        "{}.{}.{}",
        "a".repeat(3000),
        "b".repeat(3000),
        "c".repeat(100)
    );

    for (name, token) in [
        ("none", none),
        ("wrong key", wrong_key),
        ("HS256", confused),
        ("tampered", tampered),
        ("oversized", oversized),
    ] {
        let response = post(&app, "/auth/logout", Some(&token), json!({})).await;
        assert_eq!(response.status, 401, "{name}");
        assert_eq!(response.body["errors"][0]["code"], "InvalidToken", "{name}");
        let bearer = app
            .client
            .post(app.url("/api/v2/auth/logout"))
            .bearer_auth(&token)
            .json(&json!({}))
            .reply()
            .await;
        assert_eq!(bearer.status, 401, "{name} as bearer");
    }
    // The genuine cookie still works, also as a bearer token.
    let genuine = app
        .client
        .post(app.url("/api/v2/auth/validateSession"))
        .bearer_auth(&cookie)
        .reply()
        .await;
    assert_eq!(genuine.body["data"]["isLoggedIn"], true);
}

#[tokio::test]
async fn tokens_always_fit_a_cookie_by_dropping_extra_accounts() {
    // A 1 KB limit makes the effect visible with a couple of dozen accounts.
    let app = spawn_app_with(|s| s.auth.max_token_bytes = 1024, None).await;
    let long_name = "N".repeat(120);
    let (mut cookie, _, _) = sign_up(&app, None, &long_name).await;
    let mut ids = Vec::new();
    for _ in 0..25 {
        let (next, id, _) = sign_up(&app, Some(&cookie), &long_name).await;
        assert!(next.len() <= 1024, "{} bytes", next.len());
        cookie = next;
        ids.push(id);
    }
    let users = user_ids(&session(&app, &cookie).await);
    assert_eq!(
        users[0],
        *ids.last().unwrap(),
        "the current user is always kept"
    );
    assert!(
        users.len() > 1 && users.len() < 26,
        "extra accounts were dropped to fit: {}",
        users.len()
    );
}

#[tokio::test]
async fn a_sign_out_on_one_node_is_refused_on_another_at_once() {
    let a = spawn_app().await;
    let b = SecondNode::start(&a).await;
    let b_base = b.address.clone();

    let (cookie, _, _) = sign_up(&a, None, "Sam").await;
    let on_b = |cookie: String| {
        a.client
            .post(format!("{b_base}/api/v2/auth/validateSession"))
            .header("cookie", format!("{COOKIE}={cookie}"))
            .reply()
    };
    let before: Value = on_b(cookie.clone()).await.body;
    assert_eq!(
        before["data"]["isLoggedIn"], true,
        "node B accepts node A's token"
    );

    assert_eq!(
        post(&a, "/auth/logout", Some(&cookie), json!({}))
            .await
            .status,
        200
    );
    let after = on_b(cookie).await;
    assert_eq!(
        set_cookie(&after).as_deref(),
        Some(""),
        "node B removes the dead cookie"
    );
    assert_eq!(after.body["data"]["isLoggedIn"], false);

    b.stop().await;
}

#[tokio::test]
async fn api_clients_rotate_refresh_tokens_and_a_reused_one_revokes_the_session() {
    let app = spawn_app().await;
    let (_, _, email) = sign_up(&app, None, "Sam").await;
    let login = post(
        &app,
        "/auth/email/login",
        None,
        json!({"email": email, "password": "correct horse battery", "tokenType": "bearer"}),
    )
    .await;
    assert_eq!(login.status, 200);
    assert_eq!(set_cookie(&login), None, "bearer clients get no cookie");
    let body: Value = login.body;
    let access = body["data"]["accessToken"].as_str().unwrap().to_owned();
    let first = body["data"]["refreshToken"].as_str().unwrap().to_owned();

    let me = |token: String| {
        app.client
            .post(app.url("/api/v2/auth/validateSession"))
            .bearer_auth(token)
            .reply()
    };
    assert_eq!(me(access.clone()).await.body["data"]["isLoggedIn"], true);

    let refreshed = post(&app, "/auth/refresh", None, json!({"refreshToken": first})).await;
    assert_eq!(refreshed.status, 200);
    let body: Value = refreshed.body;
    let second = body["data"]["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert!(token::verify(&keys(&app), body["data"]["accessToken"].as_str().unwrap()).is_ok());

    // The first token again: someone replayed it. The session ends for everyone holding it.
    let reused = post(&app, "/auth/refresh", None, json!({"refreshToken": first})).await;
    assert_eq!(reused.status, 401);
    assert_eq!(reused.body["errors"][0]["code"], "RefreshTokenReused");
    let after = post(&app, "/auth/refresh", None, json!({"refreshToken": second})).await;
    assert_eq!(after.body["errors"][0]["code"], "InvalidRefreshToken");
    assert_eq!(me(access).await.body["data"]["isLoggedIn"], false);

    let garbage = post(
        &app,
        "/auth/refresh",
        None,
        json!({"refreshToken": "12.nope"}),
    )
    .await;
    assert_eq!(garbage.status, 401);
    let bad_type = post(
        &app,
        "/auth/email/login",
        None,
        json!({"email": email, "password": "x", "tokenType": "magic"}),
    )
    .await;
    assert_eq!(bad_type.status, 422);
}

/// A browser on plain http drops a `Secure` cookie; the 401 that follows says so, instead of
/// only "sign in" to someone who just did.
#[tokio::test]
async fn a_refusal_without_a_session_says_when_the_cookie_was_secure_on_plain_http() {
    let app = spawn_app_with(|s| s.auth.cookie_secure = true, None).await;
    let refused = post(&app, "/auth/logout", None, json!({})).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body["errors"][0]["code"], "NotLoggedIn");
    let told = refused.body["errors"][0]["message"].as_str().unwrap();
    assert!(told.contains("Secure") && told.contains("https"), "{told}");

    let plain = spawn_app().await;
    let refused = post(&plain, "/auth/logout", None, json!({})).await;
    assert_eq!(refused.body["errors"][0]["message"], "Sign in to do this");
}

/// An API client signs up as it signs in: `tokenType: "bearer"` gives tokens and no cookie.
#[tokio::test]
async fn an_api_client_signs_up_with_bearer_tokens() {
    let app = spawn_app().await;
    let signed_up = post(
        &app,
        "/auth/email/signup",
        None,
        json!({"name": "Sam", "email": "sam@example.org", "password": "correct horse battery",
               "tokenType": "bearer"}),
    )
    .await;
    assert_eq!(signed_up.status, 200, "{:?}", signed_up.body);
    assert_eq!(set_cookie(&signed_up), None, "bearer clients get no cookie");
    let access = signed_up.body["data"]["accessToken"].as_str().unwrap();
    assert!(signed_up.body["data"]["refreshToken"].is_string());
    let me = app
        .client
        .post(app.url("/api/v2/auth/validateSession"))
        .bearer_auth(access)
        .reply()
        .await;
    assert_eq!(me.body["data"]["users"][0]["name"], "Sam");

    let bad_type = post(
        &app,
        "/auth/email/signup",
        None,
        json!({"name": "Kim", "email": "kim@example.org", "password": "correct horse battery",
               "tokenType": "magic"}),
    )
    .await;
    assert_eq!(bad_type.status, 422);
    assert_eq!(bad_type.body["errors"][0]["code"], "InvalidTokenType");
}

#[tokio::test]
async fn re_signing_a_token_never_revives_an_account_whose_session_ended() {
    let app = spawn_app().await;
    let (first, a, _) = sign_up(&app, None, "Ann").await;
    let (both, b, _) = sign_up(&app, Some(&first), "Bob").await;
    let (three, c, _) = sign_up(&app, Some(&both), "Cat").await;
    // Bob's session ends behind this cookie's back (log out everywhere on another device, once
    // the revocation-list entry has expired); Cat is locked by an administrator.
    sqlx::query("UPDATE sessions SET revoked_at = now() WHERE user_id = $1")
        .bind(b.parse::<i64>().unwrap())
        .execute(&app.db.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE users SET status = 'HardLocked' WHERE id = $1")
        .bind(c.parse::<i64>().unwrap())
        .execute(&app.db.pool)
        .await
        .unwrap();

    // Switching to a dead account is refused; to a live one drops the dead ones.
    for dead in [&b, &c] {
        let to_dead = post(
            &app,
            "/auth/switchCurrentAccount",
            Some(&three),
            json!({"id": dead}),
        )
        .await;
        assert_eq!(to_dead.status, 401, "switch to {dead}");
        assert_eq!(to_dead.body["errors"][0]["code"], "SessionRevoked");
    }
    let to_ann = post(
        &app,
        "/auth/switchCurrentAccount",
        Some(&three),
        json!({"id": a}),
    )
    .await;
    assert_eq!(to_ann.status, 200);
    let ann_only = set_cookie(&to_ann).unwrap();
    let claims = token::verify(&keys(&app), &ann_only).unwrap();
    let ids: Vec<String> = claims.users.iter().map(|u| u.id.to_string()).collect();
    assert_eq!(ids, vec![a.clone()], "Bob and Cat are not re-signed");

    // Signing Ann out of the three-account cookie leaves nobody: the others are dead too.
    let ann_out = post(&app, "/auth/logout", Some(&three), json!({"id": a})).await;
    assert_eq!(ann_out.status, 200);
    assert_eq!(set_cookie(&ann_out).as_deref(), Some(""), "cookie removed");
}

#[tokio::test]
async fn simultaneous_exchanges_of_one_refresh_token_end_the_session() {
    let app = spawn_app().await;
    let (_, _, email) = sign_up(&app, None, "Sam").await;
    let login: Value = post(
        &app,
        "/auth/email/login",
        None,
        json!({"email": email, "password": "correct horse battery", "tokenType": "bearer"}),
    )
    .await
    .body;
    let refresh = login["data"]["refreshToken"].as_str().unwrap().to_owned();
    let attempts = (0..8).map(|_| {
        post(
            &app,
            "/auth/refresh",
            None,
            json!({"refreshToken": refresh}),
        )
    });
    let statuses: Vec<u16> = futures_util::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status)
        .collect();
    // Only one UPDATE can match the old hash. The others find it already rotated: that is reuse
    // (someone else holds the token), so the session is revoked and even the winner's tokens die.
    assert!(
        statuses.iter().filter(|s| **s == 200).count() <= 1,
        "at most one exchange wins: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 401),
        "{statuses:?}"
    );
    let revoked: bool =
        sqlx::query_scalar("SELECT revoked_at IS NOT NULL FROM sessions WHERE id = $1")
            .bind(refresh.split_once('.').unwrap().0.parse::<i64>().unwrap())
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert!(revoked, "simultaneous use of one refresh token is reuse");
}
