//! Accounts and sessions over HTTP against the real server: `accounts` (sign-up, bad input,
//! login and lockout, password reset, email verification) and `sessions` (several accounts,
//! sign-out reaching the next request, silent refresh, and the attack list: forged, tampered,
//! mis-signed and revoked tokens). Shared here: request and cookie helpers.

mod accounts;
mod api_keys;
mod sessions;

use serde_json::{Value, json};

use crate::helpers::{TestApp, random_suffix};

pub const COOKIE: &str = "session-v2";

/// The session cookie a response set (`Some("")` when it was removed).
pub fn set_cookie(response: &reqwest::Response) -> Option<String> {
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

pub async fn post(
    app: &TestApp,
    path: &str,
    cookie: Option<&str>,
    body: Value,
) -> reqwest::Response {
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
pub async fn sign_up(app: &TestApp, cookie: Option<&str>, name: &str) -> (String, String, String) {
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

pub async fn session(app: &TestApp, cookie: &str) -> Value {
    post(app, "/auth/validateSession", Some(cookie), json!({}))
        .await
        .json::<Value>()
        .await
        .unwrap()["data"]
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
pub async fn mailed_code(app: &TestApp, to: &str, template: &str) -> String {
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

pub async fn error_code(response: reqwest::Response) -> (u16, Value) {
    (
        response.status().as_u16(),
        response.json::<Value>().await.unwrap()["errors"][0]["code"].clone(),
    )
}
