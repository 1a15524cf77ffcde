//! Chats over HTTP and WebSocket against the real server: `rest` (CRUD, paging, events, who may
//! do what), `bots` (answers streamed from the built-in echo model, fake OpenAI-compatible and
//! Anthropic servers speaking their real streaming formats, fallback, a broken stream,
//! cancellation, credits charged once). Shared here: requests and bots.

pub mod bots;
mod invites;
mod permissions;
mod rest;

use serde_json::{Value, json};

pub use crate::helpers::Reply;
use crate::helpers::{Auth, TestApp, random_suffix};
use crate::ws::User;

pub async fn api(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    who: Option<&User>,
    body: Option<Value>,
) -> Reply {
    let auth = who.map_or(Auth::Nobody, |user| Auth::Cookie(&user.token));
    app.call(method, path, auth, body.as_ref()).await
}

pub async fn post(app: &TestApp, path: &str, who: &User, body: Value) -> Reply {
    api(app, reqwest::Method::POST, path, Some(who), Some(body)).await
}

pub async fn get(app: &TestApp, path: &str, who: Option<&User>) -> Reply {
    api(app, reqwest::Method::GET, path, who, None).await
}

/// A bot user with these settings; its id.
pub async fn bot(app: &TestApp, name: &str, settings: Value) -> String {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (id, public_id, name, is_bot, bot_settings)
         VALUES ((SELECT COALESCE(MAX(id), 0) + 1 FROM users), $1, $2, true, $3) RETURNING id",
    )
    .bind(&random_suffix()[..12])
    .bind(name)
    .bind(settings)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    id.to_string()
}

/// Creates a chat through the API; its id.
pub async fn create_chat(app: &TestApp, owner: &User, bots: &[&str], extra: Value) -> String {
    let mut body = json!({"name": "Test chat", "botIds": bots});
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            body[k] = v;
        }
    }
    let Reply { status, body, .. } = post(app, "/chat", owner, body).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["chat"]["id"].as_str().unwrap().to_owned()
}
