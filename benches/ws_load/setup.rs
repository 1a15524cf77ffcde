//! The load generator's people and room: a few bench users signed up through the API (their
//! session cookies are what every socket presents) and one open chat they all take part in.

use serde_json::json;

/// Signs up one user per 2,000 connections (sockets share them) on `base`, creates chat 1 and
/// makes every user a participant. Returns the users' session cookies and a pool on `db_url`.
pub async fn users_and_chat(
    client: &reqwest::Client,
    base: &str,
    db_url: &str,
    connections: usize,
) -> (Vec<String>, sqlx::PgPool) {
    let users = connections.div_ceil(2000).max(1);
    let mut tokens = Vec::new();
    for i in 0..users {
        let response = client
            .post(format!("{base}/api/v2/auth/email/signup"))
            .json(&json!({"name": format!("Bench {i}"), "email": format!("bench{i}@example.org"), "password": "correct horse battery"}))
            .send()
            .await
            .unwrap();
        let cookie = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .find_map(|v| {
                v.to_str()
                    .ok()?
                    .strip_prefix("session-v2=")
                    .map(|v| v.split(';').next().unwrap().to_owned())
            })
            .expect("session cookie");
        tokens.push(cookie);
    }
    let pool = sqlx::PgPool::connect(db_url).await.unwrap();
    sqlx::query("INSERT INTO chats (id, public_id, open_to_anyone_with_invite) VALUES (1, 'benchchat01', true)")
        .execute(&pool)
        .await
        .unwrap();
    // Every bench user takes part (so they may post).
    sqlx::query("INSERT INTO chat_participants (id, chat_id, user_id) SELECT id, 1, id FROM users WHERE NOT is_bot")
        .execute(&pool)
        .await
        .unwrap();
    (tokens, pool)
}
