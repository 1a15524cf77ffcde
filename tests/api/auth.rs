//! Sign-up, login, sessions, silent refresh, several accounts, sign-out — over HTTP against the
//! real server — and the attack list: forged, tampered, mis-signed and revoked tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use vrooli::auth::keys::TokenKeys;
use vrooli::auth::token::{self, TokenUser};
use vrooli::ids::{SessionId, UserId};

use crate::helpers::{TestApp, random_suffix, spawn_app, spawn_app_with};

const COOKIE: &str = "session-v2";

/// The session cookie a response set (`Some("")` when it was removed).
fn set_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .find_map(|v| {
            let v = v.to_str().ok()?;
            let rest = v.strip_prefix(&format!("{COOKIE}="))?;
            Some(rest.split(';').next().unwrap_or("").to_owned())
        })
}

async fn post(app: &TestApp, path: &str, cookie: Option<&str>, body: Value) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(&format!("/api/v2{path}")))
        .json(&body);
    if let Some(cookie) = cookie {
        request = request.header("cookie", format!("{COOKIE}={cookie}"));
    }
    request.send().await.unwrap()
}

/// Signs up a fresh account; returns its cookie and id.
async fn sign_up(app: &TestApp, cookie: Option<&str>, name: &str) -> (String, String, String) {
    let email = format!("{}@example.org", random_suffix());
    let response = post(
        app,
        "/auth/email/signup",
        cookie,
        json!({"name": name, "email": email, "password": "correct horse battery"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let token = set_cookie(&response).expect("session cookie");
    let body: Value = response.json().await.unwrap();
    (
        token,
        body["data"]["users"][0]["id"].as_str().unwrap().to_owned(),
        email,
    )
}

async fn session(app: &TestApp, cookie: &str) -> Value {
    post(app, "/auth/validateSession", Some(cookie), json!({}))
        .await
        .json::<Value>()
        .await
        .unwrap()["data"]
        .clone()
}

fn user_ids(session: &Value) -> Vec<String> {
    session["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn sign_up_creates_the_account_a_session_and_a_verification_mail() {
    let app = spawn_app().await;
    let email = "Sam@Example.org";
    let response = post(
        &app,
        "/auth/email/signup",
        None,
        json!({"name": " Sam ", "email": email, "password": "correct horse battery"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let raw_cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        raw_cookie.contains("HttpOnly")
            && raw_cookie.contains("SameSite=Lax")
            && raw_cookie.contains("Path=/"),
        "{raw_cookie}"
    );
    let cookie = set_cookie(&response).unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["isLoggedIn"], true);
    assert_eq!(body["data"]["users"][0]["name"], "Sam");
    let id: i64 = body["data"]["users"][0]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    let (hash, verified, sessions, mails): (String, Option<chrono::DateTime<Utc>>, i64, i64) = sqlx::query_as(
        "SELECT a.hashed_password, e.verified_at,
                (SELECT count(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL),
                (SELECT count(*) FROM jobs WHERE kind = 'email.send' AND payload->>'to' = $2 AND payload->>'template' = 'verification')
           FROM user_auth a JOIN emails e ON e.user_id = a.user_id WHERE a.user_id = $1",
    )
    .bind(id)
    .bind(email)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert!(hash.starts_with("$argon2id$") && !hash.contains("correct horse"));
    assert_eq!((verified, sessions, mails), (None, 1, 1));

    assert_eq!(
        user_ids(&session(&app, &cookie).await),
        vec![id.to_string()]
    );
    let anonymous = post(&app, "/auth/validateSession", None, json!({}))
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(anonymous["data"]["isLoggedIn"], false);

    // The same address in other case is taken.
    let again = post(
        &app,
        "/auth/email/signup",
        None,
        json!({"name": "Sam", "email": "sam@EXAMPLE.org", "password": "another password"}),
    )
    .await;
    assert_eq!(again.status(), 409);
    assert_eq!(
        again.json::<Value>().await.unwrap()["errors"][0]["code"],
        "EmailInUse"
    );
}

#[tokio::test]
async fn bad_sign_up_input_is_refused_with_its_reason() {
    let app = spawn_app().await;
    for (body, status, code) in [
        (
            json!({"name": "Sam", "email": "not-an-email", "password": "long enough"}),
            422,
            "InvalidEmail",
        ),
        (
            json!({"name": "Sam", "email": "a@b.org", "password": "short"}),
            422,
            "InvalidPassword",
        ),
        (
            json!({"name": "   ", "email": "a@b.org", "password": "long enough"}),
            422,
            "InvalidName",
        ),
        (
            json!({"name": "Sam", "email": "a@b.org"}),
            422,
            "InvalidBody",
        ),
    ] {
        let response = post(&app, "/auth/email/signup", None, body).await;
        assert_eq!(response.status(), status);
        assert_eq!(
            response.json::<Value>().await.unwrap()["errors"][0]["code"],
            code
        );
    }
    let users: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users WHERE NOT is_bot AND NOT is_admin")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(users, 0, "nothing half-written");
}

#[tokio::test]
async fn login_checks_the_password_and_locks_after_repeated_failures() {
    let app = spawn_app().await;
    let (_, id, email) = sign_up(&app, None, "Sam").await;
    let login = |password: &'static str, email: String| {
        let app = &app;
        async move {
            post(
                app,
                "/auth/email/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await
        }
    };
    let code = |r: reqwest::Response| async move {
        (
            r.status().as_u16(),
            r.json::<Value>().await.unwrap()["errors"][0]["code"].clone(),
        )
    };

    let ok = login("correct horse battery", email.clone()).await;
    assert_eq!(ok.status(), 200);
    assert!(set_cookie(&ok).is_some());
    assert_eq!(
        code(login("wrong", "nobody@example.org".into()).await).await,
        (401, json!("InvalidCredentials"))
    );

    for _ in 0..4 {
        assert_eq!(
            code(login("wrong", email.clone()).await).await,
            (401, json!("InvalidCredentials"))
        );
    }
    assert_eq!(
        code(login("wrong", email.clone()).await).await,
        (403, json!("AccountSoftLocked")),
        "5th failure"
    );
    assert_eq!(
        code(login("correct horse battery", email.clone()).await).await,
        (403, json!("AccountSoftLocked")),
        "even the right password waits"
    );

    // 15 minutes later the right password works and resets the counter.
    sqlx::query(
        "UPDATE users SET last_login_attempt = now() - interval '16 minutes' WHERE id = $1",
    )
    .bind(id.parse::<i64>().unwrap())
    .execute(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        login("correct horse battery", email.clone()).await.status(),
        200
    );

    // Brute force past the soft locks ends in a hard lock.
    sqlx::query("UPDATE users SET log_in_attempts = 14 WHERE id = $1")
        .bind(id.parse::<i64>().unwrap())
        .execute(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(
        code(login("wrong", email.clone()).await).await,
        (403, json!("AccountHardLocked"))
    );
    assert_eq!(
        code(login("correct horse battery", email).await).await,
        (403, json!("AccountHardLocked"))
    );
}

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
    assert_eq!(switched.status(), 200);
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
    assert_eq!(stranger.status(), 400);

    let out = post(&app, "/auth/logout", Some(&switched), json!({"id": b})).await;
    assert_eq!(out.status(), 200);
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

    let last = post(&app, "/auth/logout", Some(&only_a), json!({})).await;
    assert_eq!(last.status(), 200);
    assert_eq!(set_cookie(&last).as_deref(), Some(""), "cookie removed");
    assert_eq!(
        last.json::<Value>().await.unwrap()["data"]["isLoggedIn"],
        false
    );
}

#[tokio::test]
async fn a_signed_out_token_is_refused_on_the_very_next_request() {
    for redis in [true, false] {
        let app = spawn_app_with(
            |s| {
                if !redis {
                    s.redis.url = String::new().into()
                }
            },
            None,
        )
        .await;
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
                .status(),
            200
        );
        for token in [&cookie, &other] {
            // Still inside its access window, yet refused: the revocation list says so.
            let response = post(&app, "/auth/logout", Some(token), json!({})).await;
            assert_eq!(response.status(), 401, "redis: {redis}");
            assert_eq!(
                set_cookie(&response).as_deref(),
                Some(""),
                "the dead cookie is removed"
            );
            assert_eq!(
                response.json::<Value>().await.unwrap()["errors"][0]["code"],
                "SessionRevoked"
            );
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
    assert_eq!(
        response.json::<Value>().await.unwrap()["data"]["isLoggedIn"],
        true
    );

    // Attack: an access window that has passed, on a session revoked behind its back.
    sqlx::query("UPDATE sessions SET revoked_at = now() WHERE id = $1")
        .bind(user.session_id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let response = post(&app, "/auth/logout", Some(&stale), json!({})).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.json::<Value>().await.unwrap()["errors"][0]["code"],
        "SessionRevoked"
    );
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
        assert_eq!(response.status(), 401, "{name}");
        assert_eq!(
            response.json::<Value>().await.unwrap()["errors"][0]["code"],
            "InvalidToken",
            "{name}"
        );
        let bearer = app
            .client
            .post(app.url("/api/v2/auth/logout"))
            .bearer_auth(&token)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(bearer.status(), 401, "{name} as bearer");
    }
    // The genuine cookie still works, also as a bearer token.
    let genuine = app
        .client
        .post(app.url("/api/v2/auth/validateSession"))
        .bearer_auth(&cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        genuine.json::<Value>().await.unwrap()["data"]["isLoggedIn"],
        true
    );
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

/// The code mailed to `to` with `template` (read from the email job's payload).
async fn mailed_code(app: &TestApp, to: &str, template: &str) -> String {
    sqlx::query_scalar(
        "SELECT payload->>'code' FROM jobs WHERE kind = 'email.send' AND payload->>'to' = $1
            AND payload->>'template' = $2 ORDER BY id DESC LIMIT 1",
    )
    .bind(to)
    .bind(template)
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

async fn error_code(response: reqwest::Response) -> (u16, Value) {
    (
        response.status().as_u16(),
        response.json::<Value>().await.unwrap()["errors"][0]["code"].clone(),
    )
}

#[tokio::test]
async fn password_reset_is_single_use_and_signs_every_device_out() {
    let app = spawn_app().await;
    let (old_cookie, _, email) = sign_up(&app, None, "Sam").await;

    // Known and unknown addresses get the same answer.
    let unknown = post(
        &app,
        "/auth/email/requestPasswordChange",
        None,
        json!({"email": "nobody@example.org"}),
    )
    .await;
    let known = post(
        &app,
        "/auth/email/requestPasswordChange",
        None,
        json!({"email": email}),
    )
    .await;
    assert_eq!(
        (unknown.status(), known.status()),
        (reqwest::StatusCode::OK, reqwest::StatusCode::OK)
    );
    let body_unknown: Value = unknown.json().await.unwrap();
    assert_eq!(body_unknown, known.json::<Value>().await.unwrap());
    let code = mailed_code(&app, &email, "passwordReset").await;

    let short = post(
        &app,
        "/auth/email/resetPassword",
        None,
        json!({"code": code, "newPassword": "short"}),
    )
    .await;
    assert_eq!(error_code(short).await, (422, json!("InvalidPassword")));
    let reset = post(
        &app,
        "/auth/email/resetPassword",
        None,
        json!({"code": code, "newPassword": "a brand new password"}),
    )
    .await;
    assert_eq!(reset.status(), 200);
    assert!(
        set_cookie(&reset).is_some_and(|c| !c.is_empty()),
        "signed in after the reset"
    );

    // Every earlier session is gone at once; the old password no longer works, the new one does.
    assert_eq!(
        error_code(post(&app, "/auth/logout", Some(&old_cookie), json!({})).await).await,
        (401, json!("SessionRevoked"))
    );
    let old = post(
        &app,
        "/auth/email/login",
        None,
        json!({"email": email, "password": "correct horse battery"}),
    )
    .await;
    assert_eq!(old.status(), 401);
    let new = post(
        &app,
        "/auth/email/login",
        None,
        json!({"email": email, "password": "a brand new password"}),
    )
    .await;
    assert_eq!(new.status(), 200);

    // The code works once.
    let again = post(
        &app,
        "/auth/email/resetPassword",
        None,
        json!({"code": code, "newPassword": "yet another password"}),
    )
    .await;
    assert_eq!(error_code(again).await, (400, json!("InvalidCode")));
    // And not after it expires.
    post(
        &app,
        "/auth/email/requestPasswordChange",
        None,
        json!({"email": email}),
    )
    .await;
    let late = mailed_code(&app, &email, "passwordReset").await;
    sqlx::query("UPDATE user_auth SET reset_code_at = now() - interval '61 minutes' WHERE reset_code_hash IS NOT NULL")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let expired = post(
        &app,
        "/auth/email/resetPassword",
        None,
        json!({"code": late, "newPassword": "yet another password"}),
    )
    .await;
    assert_eq!(error_code(expired).await, (400, json!("InvalidCode")));
}

#[tokio::test]
async fn the_mailed_code_verifies_the_address_once() {
    let app = spawn_app().await;
    let (_, id, email) = sign_up(&app, None, "Sam").await;
    let code = mailed_code(&app, &email, "verification").await;
    let wrong = post(
        &app,
        "/auth/email/verify",
        None,
        json!({"code": "not-the-code"}),
    )
    .await;
    assert_eq!(error_code(wrong).await, (400, json!("InvalidCode")));
    assert_eq!(
        post(&app, "/auth/email/verify", None, json!({"code": code}))
            .await
            .status(),
        200
    );
    let verified: bool =
        sqlx::query_scalar("SELECT verified_at IS NOT NULL FROM emails WHERE user_id = $1")
            .bind(id.parse::<i64>().unwrap())
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert!(verified);
    let reused = post(&app, "/auth/email/verify", None, json!({"code": code})).await;
    assert_eq!(error_code(reused).await, (400, json!("InvalidCode")));
}
