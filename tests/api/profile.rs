//! The caller's profile and notification settings against the real server, and notices that
//! reach people by email through a real SMTP server (aiosmtpd) as their settings say.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::auth::sign_up;
use crate::chat::{api, create_chat, get, post};
use crate::helpers::{Reply, SmtpServer, TestApp, spawn_app, spawn_app_with, wait_until};
use crate::ws::{User, user};

async fn put(app: &TestApp, path: &str, who: &User, body: Value) -> Reply {
    api(app, Method::PUT, path, Some(who), Some(body)).await
}

#[tokio::test]
async fn a_profile_is_read_and_changed_whole_or_not_at_all() {
    let app = spawn_app().await;
    let sam = user(&app, "Sam").await;
    let kim = user(&app, "Kim").await;
    let Reply { status, body, .. } = get(&app, "/profile", Some(&sam)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["name"], "Sam");
    assert_eq!(body["data"]["emails"].as_array().map(Vec::len), Some(1));
    assert_eq!(body["data"]["emails"][0]["verified"], false);
    assert_eq!(body["data"]["notificationSettings"]["enabled"], true);

    let change = json!({"name": "Samantha", "handle": "Sam_D", "bio": "Builds routines",
                        "theme": "dark", "languages": ["en", "pt-BR"]});
    let Reply { status, body, .. } = put(&app, "/profile", &sam, change).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["handle"], "Sam_D");
    assert_eq!(body["data"]["languages"], json!(["en", "pt-BR"]));
    // Others find the new handle in any case; the bio is public, the theme is not.
    let Reply { body, .. } = get(&app, "/user?handle=sam_d", None).await;
    assert_eq!(body["data"]["name"], "Samantha", "{body}");

    // A handle taken in another case is refused, and nothing else of the change is written.
    let taken = put(
        &app,
        "/profile",
        &kim,
        json!({"name": "Kimberly", "handle": "SAM_D"}),
    )
    .await;
    assert_eq!(
        (taken.status, taken.body["errors"][0]["code"].clone()),
        (409, json!("HandleTaken"))
    );
    assert_eq!(
        get(&app, "/profile", Some(&kim)).await.body["data"]["name"],
        "Kim"
    );

    let refused = [
        (json!({"name": ""}), 422, "InvalidName"),
        (json!({"handle": "a b"}), 422, "InvalidHandle"),
        (json!({"bio": "x".repeat(2049)}), 422, "InvalidProfile"),
        (json!({"theme": "<script>"}), 422, "InvalidProfile"),
        (
            json!({"languages": ["en", "not a tag"]}),
            422,
            "InvalidProfile",
        ),
        (
            json!({"notificationSettings": {"categories": {"Spam": {}}}}),
            422,
            "InvalidBody",
        ),
        (json!({"isAdmin": true}), 422, "InvalidBody"),
    ];
    for (body, status, code) in refused {
        let reply = put(&app, "/profile", &kim, body.clone()).await;
        assert_eq!(
            (reply.status, reply.body["errors"][0]["code"].clone()),
            (status, json!(code)),
            "{body}"
        );
    }
    // "" clears what may be cleared.
    let Reply { body, .. } = put(&app, "/profile", &sam, json!({"handle": "", "bio": ""})).await;
    assert_eq!(
        (body["data"]["handle"].clone(), body["data"]["bio"].clone()),
        (Value::Null, Value::Null)
    );
    // Signed out, there is no profile.
    assert_eq!(get(&app, "/profile", None).await.status, 401);
}

#[tokio::test]
async fn notices_reach_people_in_the_app_and_by_email_as_their_settings_say() {
    let smtp = SmtpServer::start().await;
    let port = smtp.port;
    let app = spawn_app_with(
        move |s| {
            s.email.smtp_host = "127.0.0.1".into();
            s.email.smtp_port = port;
            s.email.smtp_tls = vrooli::config::SmtpTls::None;
        },
        None,
    )
    .await;
    let sam = user(&app, "Sam").await;
    let (token, id, email) = sign_up(&app, None, "Kim").await;
    let kim = User { token, id };
    sqlx::query("UPDATE emails SET verified_at = now() WHERE lower(email_address) = lower($1)")
        .bind(&email)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let mails_to_kim = |subject: &'static str| {
        let email = email.clone();
        let smtp = &smtp;
        move || {
            smtp.messages()
                .iter()
                .filter(|m| m.contains(&email) && m.contains(subject))
                .count()
        }
    };

    // By default a team invite reaches Kim in the app and by email.
    let Reply { body, .. } = post(&app, "/team", &sam, json!({"name": "Crew"})).await;
    let team = body["data"]["id"].as_str().unwrap().to_owned();
    let invited = post(
        &app,
        "/memberInvite",
        &sam,
        json!({"teamId": team, "userId": kim.id}),
    )
    .await;
    assert_eq!(invited.status, 200, "{}", invited.body);
    let team_mails = mails_to_kim("invited to join Crew");
    wait_until(Duration::from_secs(20), "the invite's email", || async {
        team_mails() == 1
    })
    .await;

    // Email off: chat invites stay in the app.
    let off = put(
        &app,
        "/notificationSettings",
        &kim,
        json!({"toEmails": false}),
    )
    .await;
    assert_eq!(off.status, 200, "{}", off.body);
    assert_eq!(off.body["data"]["toEmails"], false);
    let chat = create_chat(&app, &sam, &[], json!({"name": "Plans"})).await;
    let invited = post(
        &app,
        "/chatInvite",
        &sam,
        json!({"chatId": chat, "userId": kim.id}),
    )
    .await;
    assert_eq!(invited.status, 200, "{}", invited.body);
    let notices = |body: &Value| body["data"]["edges"].as_array().map_or(0, Vec::len);
    let Reply { body, .. } = get(&app, "/notifications", Some(&kim)).await;
    assert_eq!(notices(&body), 2, "{body}");

    // Chat invites off altogether: no notice at all, though the invite is there.
    let settings = json!({"categories": {"ChatInvite": {"enabled": false}}});
    assert_eq!(
        put(&app, "/notificationSettings", &kim, settings.clone())
            .await
            .status,
        200
    );
    assert_eq!(
        get(&app, "/notificationSettings", Some(&kim)).await.body["data"]["categories"],
        settings["categories"]
    );
    let other = create_chat(&app, &sam, &[], json!({"name": "More"})).await;
    post(
        &app,
        "/chatInvite",
        &sam,
        json!({"chatId": other, "userId": kim.id}),
    )
    .await;
    let Reply { body, .. } = get(&app, "/notifications", Some(&kim)).await;
    assert_eq!(notices(&body), 2, "{body}");
    let Reply { body, .. } = get(&app, "/chatInvites", Some(&kim)).await;
    assert_eq!(notices(&body), 2, "{body}");
    // The email jobs are done by now (the queue is drained); none went out for the chats.
    wait_until(Duration::from_secs(10), "the email queue to drain", || async {
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM jobs WHERE queue = 'email-send' AND state IN ('available', 'running', 'retrying')",
        )
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        open == 0
    })
    .await;
    assert_eq!(mails_to_kim("invited to Plans")(), 0);
    assert_eq!(mails_to_kim("invited to More")(), 0);
    assert_eq!(team_mails(), 1, "sent once");
}

/// Signs in with `email` and `password`; the cookie, or the refusal.
async fn log_in(app: &TestApp, email: &str, password: &str) -> Result<String, Reply> {
    let reply = crate::auth::post(
        app,
        "/auth/email/login",
        None,
        json!({"email": email, "password": password}),
    )
    .await;
    crate::auth::set_cookie(&reply)
        .filter(|_| reply.status == 200)
        .ok_or(reply)
}

#[tokio::test]
async fn a_new_password_ends_the_other_sessions_and_addresses_change_in_one_go() {
    let app = spawn_app().await;
    let (token, id, email) = sign_up(&app, None, "Sam").await;
    let sam = User { token, id };
    let other = User {
        token: log_in(&app, &email, "correct horse battery").await.unwrap(),
        id: sam.id.clone(),
    };
    let wrong = put(
        &app,
        "/profile/email",
        &sam,
        json!({"currentPassword": "nope nope nope", "newPassword": "another good one"}),
    )
    .await;
    assert_eq!(
        (wrong.status, wrong.body["errors"][0]["code"].clone()),
        (403, json!("WrongPassword"))
    );

    let changed = put(
        &app,
        "/profile/email",
        &sam,
        json!({
        "currentPassword": "correct horse battery", "newPassword": "another good one",
        "emailsCreate": ["second@example.org"]}),
    )
    .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    let emails = changed.body["data"]["emails"].as_array().unwrap().clone();
    assert_eq!(emails.len(), 2);
    // The asking session goes on; the other one ended at once; the new password signs in.
    assert_eq!(get(&app, "/profile", Some(&sam)).await.status, 200);
    assert_eq!(get(&app, "/profile", Some(&other)).await.status, 401);
    assert!(log_in(&app, &email, "correct horse battery").await.is_err());
    assert!(log_in(&app, &email, "another good one").await.is_ok());
    // A verification mail was queued for the new address.
    let queued: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM jobs WHERE queue = 'email-send' AND payload->>'to' = 'second@example.org'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(queued, 1);

    let first = emails[0]["id"].as_str().unwrap().to_owned();
    let second = emails[1]["id"].as_str().unwrap().to_owned();
    let password = "another good one";
    // Only a verified address can be primary; the whole change is refused, nothing removed.
    let unverified = put(
        &app,
        "/profile/email",
        &sam,
        json!({
        "currentPassword": password, "emailsDelete": [first], "primaryEmailId": second}),
    )
    .await;
    assert_eq!(
        (
            unverified.status,
            unverified.body["errors"][0]["code"].clone()
        ),
        (409, json!("EmailNotVerified"))
    );
    assert_eq!(
        get(&app, "/profile", Some(&sam)).await.body["data"]["emails"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    sqlx::query("UPDATE emails SET verified_at = now() WHERE id = $1")
        .bind(second.parse::<i64>().unwrap())
        .execute(&app.db.pool)
        .await
        .unwrap();
    let swapped = put(
        &app,
        "/profile/email",
        &sam,
        json!({
        "currentPassword": password, "emailsDelete": [first], "primaryEmailId": second}),
    )
    .await;
    assert_eq!(swapped.status, 200, "{}", swapped.body);
    assert_eq!(
        swapped.body["data"]["emails"],
        json!([{"id": second, "emailAddress": "second@example.org", "verified": true, "isPrimary": true}])
    );
    let last = put(
        &app,
        "/profile/email",
        &sam,
        json!({"currentPassword": password, "emailsDelete": [second]}),
    )
    .await;
    assert_eq!(
        (last.status, last.body["errors"][0]["code"].clone()),
        (409, json!("LastEmail"))
    );
    // Someone else's address is taken.
    let (_, _, kims) = sign_up(&app, None, "Kim").await;
    let taken = put(
        &app,
        "/profile/email",
        &sam,
        json!({"currentPassword": password, "emailsCreate": [kims]}),
    )
    .await;
    assert_eq!(
        (taken.status, taken.body["errors"][0]["code"].clone()),
        (409, json!("EmailInUse"))
    );
    let bad = put(
        &app,
        "/profile/email",
        &sam,
        json!({"currentPassword": password, "emailsCreate": ["not an address"]}),
    )
    .await;
    assert_eq!(
        (bad.status, bad.body["errors"][0]["code"].clone()),
        (422, json!("InvalidEmail"))
    );
    let short = put(
        &app,
        "/profile/email",
        &sam,
        json!({"currentPassword": password, "newPassword": "x"}),
    )
    .await;
    assert_eq!(
        (short.status, short.body["errors"][0]["code"].clone()),
        (422, json!("InvalidPassword"))
    );
}

#[tokio::test]
async fn a_deleted_account_is_signed_out_at_once_and_purged_later_keeping_its_messages() {
    let app = spawn_app_with(|s| s.auth.deleted_account_days = 0, None).await;
    let (token, id, email) = sign_up(&app, None, "Sam").await;
    let sam = User { token, id };
    let kim = user(&app, "Kim").await;
    let chat = create_chat(&app, &kim, &[], json!({"name": "Both"})).await;
    let invite = post(
        &app,
        "/chatInvite",
        &kim,
        json!({"chatId": chat, "userId": sam.id}),
    )
    .await;
    let invite = invite.body["data"]["id"].as_str().unwrap().to_owned();
    post(
        &app,
        &format!("/chatInvite/{invite}/accept"),
        &sam,
        json!({}),
    )
    .await;
    let said = post(
        &app,
        "/chatMessage",
        &sam,
        json!({"chatId": chat, "text": "bye"}),
    )
    .await;
    assert_eq!(said.status, 200, "{}", said.body);

    let delete = |password: &'static str| {
        let body = json!({ "password": password });
        api(&app, Method::DELETE, "/profile", Some(&sam), Some(body))
    };
    let wrong = delete("not mine at all").await;
    assert_eq!(wrong.status, 403);
    let deleted = delete("correct horse battery").await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(
        get(&app, "/profile", Some(&sam)).await.status,
        401,
        "signed out at once"
    );
    assert!(log_in(&app, &email, "correct horse battery").await.is_err());
    assert_eq!(
        get(&app, &format!("/user/{}", sam.id), None).await.status,
        404
    );

    // The purge (hourly; run now) removes the account; the message stays, without an author.
    sqlx::query(
        "INSERT INTO jobs (id, queue, kind, payload) VALUES (1, 'maintenance', 'maintenance.purge-deleted-accounts', '{}')",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    let sam_id: i64 = sam.id.parse().unwrap();
    wait_until(Duration::from_secs(20), "the purge", || async {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE id = $1")
            .bind(sam_id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        left == 0
    })
    .await;
    let Reply { body, .. } = get(&app, &format!("/chatMessages?chatId={chat}"), Some(&kim)).await;
    let node = &body["data"]["edges"][0]["node"];
    assert_eq!(node["text"], "bye", "{body}");
}
