//! Accounts and sessions over HTTP against the real server: `accounts` (sign-up, bad input,
//! login and lockout, password reset, email verification) and `sessions` (several accounts,
//! sign-out reaching the next request, silent refresh, and the attack list: forged, tampered,
//! mis-signed and revoked tokens). Shared here: request and cookie helpers.

mod accounts;
mod api_keys;
mod sessions;

use serde_json::{Value, json};

use crate::helpers::SendReply;
use crate::helpers::{TestApp, random_suffix};

pub const COOKIE: &str = "session-v2";

/// The session cookie a response set (`Some("")` when it was removed).
pub fn set_cookie(response: &crate::helpers::Reply) -> Option<String> {
    response.headers.get_all("set-cookie").iter().find_map(|v| {
        let v = v.to_str().ok()?;
        let rest = v.strip_prefix(&format!("{COOKIE}="))?;
        Some(rest.split(';').next().unwrap_or("").to_owned())
    })
}

pub async fn post(
    app: &TestApp,
    path: &str,
    cookie: Option<&str>,
    body: Value,
) -> crate::helpers::Reply {
    let mut request = app
        .client
        .post(app.url(&format!("/api/v2{path}")))
        .json(&body);
    if let Some(cookie) = cookie {
        request = request.header("cookie", format!("{COOKIE}={cookie}"));
    }
    request.reply().await
}

/// Signs up a fresh account; returns its cookie and id.
pub async fn sign_up(app: &TestApp, cookie: Option<&str>, name: &str) -> (String, String, String) {
    let email = format!("{}@example.org", random_suffix());
    let response = post(
        app,
        "/auth/email/signup",
        cookie,
        json!({"name": name, "email": email, "password": "correct horse battery"}),
    )
    .await;
    assert_eq!(response.status, 200);
    let token = set_cookie(&response).expect("session cookie");
    let body: Value = response.body;
    (
        token,
        body["data"]["users"][0]["id"].as_str().unwrap().to_owned(),
        email,
    )
}

pub async fn session(app: &TestApp, cookie: &str) -> Value {
    post(app, "/auth/validateSession", Some(cookie), json!({}))
        .await
        .body["data"]
        .clone()
}

pub fn user_ids(session: &Value) -> Vec<String> {
    session["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The code mailed to `to` with `template` (read from the email job's payload).
/// The code in the newest mail of `template` ("verification" or "passwordReset") sent to `to`,
/// read from the outbox as its recipient would (job payloads hold no codes). Waits for the mail.
pub async fn mailed_code(app: &TestApp, to: &str, template: &str) -> String {
    nth_mailed_code(app, to, template, 1).await
}

/// The code of the `n`th such mail (counting from 1), once at least `n` have been sent.
pub async fn nth_mailed_code(app: &TestApp, to: &str, template: &str, n: usize) -> String {
    let marker = match template {
        "verification" => "verify-email?code=",
        "passwordReset" => "reset-password?code=",
        other => panic!("no such template {other}"),
    };
    let dir = app.settings.email.outbox_dir.clone();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let mut found: Vec<(std::time::SystemTime, String)> = Vec::new();
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(raw) = std::fs::read_to_string(entry.path()) else {
                continue;
            };
            // Undo quoted-printable: soft line breaks, then the escaped '='.
            let text = raw
                .replace("=\r\n", "")
                .replace("=\n", "")
                .replace("=3D", "=");
            if !text.contains(&format!("To: {to}")) {
                continue;
            }
            let Some(at) = text.find(marker) else {
                continue;
            };
            let code: String = text[at + marker.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            let modified = entry.metadata().and_then(|m| m.modified()).unwrap();
            found.push((modified, code));
        }
        if found.len() >= n {
            found.sort();
            return found.swap_remove(n - 1).1;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {template} mail to {to}"
        );
        // The mail is written by a job on the server; the outbox directory is all there is to
        // watch, so poll it (bounded by the deadline above).
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

pub async fn error_code(response: crate::helpers::Reply) -> (u16, Value) {
    (response.status, response.body["errors"][0]["code"].clone())
}
