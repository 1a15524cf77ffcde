//! Sign-up, login with its lockout, password reset and email verification.
//!
//! Long on purpose (~520 lines): each account flow is one test that walks it end to end.

use chrono::Utc;
use serde_json::{Value, json};

use super::*;
use crate::helpers::SendReply;
use crate::helpers::spawn_app;

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
    assert_eq!(response.status, 200);
    let raw_cookie = response
        .headers
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
    let body: Value = response.body;
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
    .bind("sam@example.org") // stored normalised
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
        .body;
    assert_eq!(anonymous["data"]["isLoggedIn"], false);

    // The same address in other case is taken.
    let again = post(
        &app,
        "/auth/email/signup",
        None,
        json!({"name": "Sam", "email": "sam@EXAMPLE.org", "password": "another password"}),
    )
    .await;
    assert_eq!(again.status, 409);
    assert_eq!(again.body["errors"][0]["code"], "EmailInUse");
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
        assert_eq!(response.status, status);
        assert_eq!(response.body["errors"][0]["code"], code);
    }
    let users: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users WHERE NOT is_bot AND NOT is_admin")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(users, 0, "nothing half-written");
}

#[tokio::test]
async fn login_slows_a_guessing_address_without_locking_out_the_owner() {
    // Behind a proxy, so each test client can claim its own address.
    let app = crate::helpers::spawn_app_with(|s| s.server.behind_proxy = true, None).await;
    let (_, id, email) = sign_up(&app, None, "Sam").await;
    let login = |password: &'static str, from: &'static str| {
        let app = &app;
        let email = email.clone();
        async move {
            app.client
                .post(app.url("/api/v2/auth/email/login"))
                .header("x-forwarded-for", from)
                .json(&json!({"email": email, "password": password}))
                .reply()
                .await
        }
    };
    let code = |r: crate::helpers::Reply| async move {
        let status = r.status;
        let body = r.body;
        (
            status,
            body["errors"][0]["code"].clone(),
            body["errors"][0]["message"].clone(),
        )
    };
    const ATTACKER: &str = "203.0.113.9";
    const OWNER: &str = "198.51.100.7";

    let ok = login("correct horse battery", OWNER).await;
    assert_eq!(ok.status, 200);
    assert!(set_cookie(&ok).is_some());
    for _ in 0..4 {
        let (status, code, _) = code(login("wrong", ATTACKER).await).await;
        assert_eq!((status, code), (401, json!("InvalidCredentials")));
    }
    let (status, error, _) = code(login("wrong", ATTACKER).await).await;
    assert_eq!(
        (status, error),
        (403, json!("AccountSoftLocked")),
        "5th failure"
    );
    let (status, error, _) = code(login("correct horse battery", ATTACKER).await).await;
    assert_eq!(
        (status, error),
        (403, json!("AccountSoftLocked")),
        "that address waits"
    );
    // The owner, elsewhere, is not locked out.
    assert_eq!(login("correct horse battery", OWNER).await.status, 200);

    // Brute force past the waits never ends in a hard lock; the wait only grows.
    for _ in 0..20 {
        sqlx::query("UPDATE login_failures SET locked_until = now() - interval '1 second'")
            .execute(&app.db.pool)
            .await
            .unwrap();
        let (status, error, _) = code(login("wrong", ATTACKER).await).await;
        assert_eq!((status, error), (403, json!("AccountSoftLocked")));
    }
    let (_, _, message) = code(login("wrong", ATTACKER).await).await;
    assert!(
        message.as_str().unwrap().contains("1440"),
        "capped at a day: {message}"
    );
    let status: String = sqlx::query_scalar("SELECT status FROM users WHERE id = $1")
        .bind(id.parse::<i64>().unwrap())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(status, "Unlocked");
    assert_eq!(login("correct horse battery", OWNER).await.status, 200);

    // Once an address's wait is over, the right password works there and clears its count.
    sqlx::query("UPDATE login_failures SET locked_until = now() - interval '1 second'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(login("correct horse battery", ATTACKER).await.status, 200);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM login_failures")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    let (status, error, _) = code(login("wrong", "unknown-address-is-fine").await).await;
    assert_eq!((status, error), (401, json!("InvalidCredentials")));
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
    assert_eq!((unknown.status, known.status), (200, 200));
    let body_unknown: Value = unknown.body;
    assert_eq!(body_unknown, known.body);
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
    assert_eq!(reset.status, 200);
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
    assert_eq!(old.status, 401);
    let new = post(
        &app,
        "/auth/email/login",
        None,
        json!({"email": email, "password": "a brand new password"}),
    )
    .await;
    assert_eq!(new.status, 200);

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
    let late = nth_mailed_code(&app, &email, "passwordReset", 2).await;
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
            .status,
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

#[tokio::test]
async fn an_admin_lock_refuses_the_account_at_once_and_unlock_restores_it() {
    let app = crate::helpers::spawn_app_with(
        |s| s.admin.system_key = "system-key-for-tests".to_string().into(),
        None,
    )
    .await;
    let (cookie, id, email) = sign_up(&app, None, "Sam").await;
    let admin = |action: &str| {
        app.client
            .post(app.url(&format!("/api/v2/admin/users/{id}/{action}")))
            .header("x-api-key", "system-key-for-tests")
            .reply()
    };
    assert_eq!(admin("lock").await.status, 200);
    assert_eq!(
        error_code(post(&app, "/auth/logout", Some(&cookie), json!({})).await).await,
        (401, json!("SessionRevoked"))
    );
    let login = || {
        post(
            &app,
            "/auth/email/login",
            None,
            json!({"email": email, "password": "correct horse battery"}),
        )
    };
    assert_eq!(
        error_code(login().await).await,
        (403, json!("AccountHardLocked"))
    );
    assert_eq!(admin("unlock").await.status, 200);
    assert_eq!(login().await.status, 200);
    // Without the system key: no.
    let anonymous = app
        .client
        .post(app.url(&format!("/api/v2/admin/users/{id}/lock")))
        .reply()
        .await;
    assert_eq!(anonymous.status, 401);
}

#[tokio::test]
async fn guest_login_gives_a_guest_session_and_replaces_a_signed_in_cookie() {
    let app = spawn_app().await;
    let guest = post(&app, "/auth/guest/login", None, json!({})).await;
    assert_eq!(guest.status, 200);
    assert_eq!(set_cookie(&guest), None, "nothing to replace");
    let body: Value = guest.body;
    assert_eq!(body["data"], json!({"isLoggedIn": false, "users": []}));

    let (cookie, _, _) = sign_up(&app, None, "Sam").await;
    let guest = post(&app, "/auth/guest/login", Some(&cookie), json!({})).await;
    assert_eq!(guest.status, 200);
    assert_eq!(set_cookie(&guest).as_deref(), Some(""), "cookie removed");
}

#[tokio::test]
async fn job_payloads_hold_no_codes_that_could_take_over_an_account() {
    let app = spawn_app().await;
    let (_, _, email) = sign_up(&app, None, "Sam").await;
    post(
        &app,
        "/auth/email/requestPasswordChange",
        None,
        json!({"email": email}),
    )
    .await;
    // Both mails are sent (and so their codes exist only in them and, hashed, in their rows).
    let reset = mailed_code(&app, &email, "passwordReset").await;
    let verify = mailed_code(&app, &email, "verification").await;
    assert_eq!(reset.len(), 24, "{reset}");
    let payloads: Vec<String> =
        sqlx::query_scalar("SELECT payload::TEXT FROM jobs WHERE kind = 'email.send'")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(payloads.len(), 2);
    for payload in payloads {
        assert!(
            !payload.contains(&reset) && !payload.contains(&verify),
            "{payload}"
        );
    }
    let response = post(
        &app,
        "/auth/email/resetPassword",
        None,
        json!({"code": reset, "newPassword": "a brand new password"}),
    )
    .await;
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn addresses_that_look_the_same_are_one_account() {
    let app = spawn_app().await;
    let tag = random_suffix();
    // "José" with e + a combining accent (NFD) on a Unicode domain...
    let nfd = format!("Jose\u{301}.{tag}@Exa\u{308}mple.org");
    // ...and with a precomposed é (NFC), the domain in punycode.
    let nfc = format!("jos\u{e9}.{tag}@xn--exmple-cua.org");
    let first = post(
        &app,
        "/auth/email/signup",
        None,
        json!({"name": "José", "email": nfd, "password": "correct horse battery"}),
    )
    .await;
    assert_eq!(first.status, 200);
    let twin = post(
        &app,
        "/auth/email/signup",
        None,
        json!({"name": "José", "email": nfc, "password": "correct horse battery"}),
    )
    .await;
    assert_eq!(error_code(twin).await, (409, json!("EmailInUse")));
    let login = post(
        &app,
        "/auth/email/login",
        None,
        json!({"email": nfc, "password": "correct horse battery"}),
    )
    .await;
    assert_eq!(login.status, 200);
    let stored: String =
        sqlx::query_scalar("SELECT email_address FROM emails WHERE email_address LIKE $1")
            .bind(format!("%.{tag}@%"))
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(stored, format!("jos\u{e9}.{tag}@xn--exmple-cua.org"));
}

/// The plan PostgreSQL picks for `sql` with sequential scans ruled out: whether `index` serves it.
async fn uses_index(app: &TestApp, sql: &str, index: &str) -> bool {
    let mut tx = app.db.pool.begin().await.unwrap();
    sqlx::query("SET LOCAL enable_seqscan = off")
        .execute(&mut *tx)
        .await
        .unwrap();
    let plan: Value =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN (FORMAT JSON) {sql}")))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    plan.to_string().contains(index)
}

#[tokio::test]
async fn code_lookups_and_reply_numbering_are_index_probes() {
    let app = spawn_app().await;
    assert!(
        uses_index(
            &app,
            "SELECT id FROM user_auth WHERE reset_code_hash = 'x' AND reset_code_at > now() - interval '1 hour'",
            "user_auth_reset_code_hash_idx"
        )
        .await
    );
    assert!(
        uses_index(
            &app,
            "SELECT id FROM emails WHERE verification_code_hash = 'x'",
            "emails_verification_code_hash_idx"
        )
        .await
    );
    assert!(
        uses_index(
            &app,
            "SELECT COALESCE(max(version_index) + 1, 0) FROM chat_messages WHERE chat_id = 1 AND parent_id = 2",
            "chat_messages_siblings_idx"
        )
        .await
    );
}
