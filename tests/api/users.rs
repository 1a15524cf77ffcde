//! Finding people without SQL: `GET /user/{id}`, `GET /user?handle=`, `GET /users?search=&isBot=`
//! answer public fields only, to anyone; the seeded bot Valyxa can be found by name or handle.

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{Auth, Reply, TestApp, spawn_app};
use crate::ws::user;

async fn get(app: &TestApp, path: &str) -> Reply {
    app.call(Method::GET, &format!("/{path}"), Auth::Nobody, None)
        .await
}

fn names(page: &Value) -> Vec<String> {
    page["data"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_seeded_bot_is_found_by_search_handle_and_id_with_public_fields_only() {
    let app = spawn_app().await;
    let Reply { status, body, .. } = get(&app, "users?search=valy&isBot=true").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(&body), ["Valyxa"]);
    let valyxa = body["data"]["edges"][0]["node"].clone();
    let mut keys: Vec<&String> = valyxa.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "createdAt",
            "handle",
            "id",
            "isBot",
            "name",
            "profileImageId"
        ]
    );
    assert_eq!(valyxa["isBot"], true);

    // By handle, in any case, and by id: the same user.
    let by_handle = get(&app, "user?handle=VALYXA").await;
    assert_eq!(by_handle.status, 200, "{}", by_handle.body);
    assert_eq!(by_handle.body["data"], valyxa);
    let id = valyxa["id"].as_str().unwrap();
    let by_id = get(&app, &format!("user/{id}")).await;
    assert_eq!(by_id.body["data"], valyxa);

    // People only: Valyxa is not among them.
    let sam = user(&app, "Sam Valyxaphile").await;
    let people = get(&app, "users?search=valyxa&isBot=false").await;
    assert_eq!(names(&people.body), ["Sam Valyxaphile"]);
    // Nothing private of a person either (no email, no status, no settings).
    let sam_public = get(&app, &format!("user/{}", sam.id)).await;
    assert_eq!(sam_public.status, 200);
    assert_eq!(
        sam_public.body["data"].as_object().unwrap().len(),
        6,
        "{}",
        sam_public.body
    );
}

#[tokio::test]
async fn search_is_literal_paged_and_leaves_deleted_accounts_out() {
    let app = spawn_app().await;
    for name in ["Kim 100% Real", "Kim Plain", "Kim_Under", "Kim Gone"] {
        user(&app, name).await;
    }
    // LIKE's wildcards are matched as themselves.
    let percent = get(&app, "users?search=%25").await;
    assert_eq!(names(&percent.body), ["Kim 100% Real"]);
    let underscore = get(&app, "users?search=_").await;
    assert_eq!(names(&underscore.body), ["Kim_Under"]);

    sqlx::query("UPDATE users SET status = 'Deleted' WHERE name = 'Kim Gone'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    // Two pages of one and one of the rest, in id order, without the deleted account.
    let mut seen = Vec::new();
    let mut path = "users?search=kim&take=2".to_owned();
    loop {
        let Reply { status, body, .. } = get(&app, &path).await;
        assert_eq!(status, 200, "{body}");
        seen.extend(names(&body));
        let info = &body["data"]["pageInfo"];
        if info["hasNextPage"] != true {
            break;
        }
        path = format!(
            "users?search=kim&take=2&after={}",
            info["endCursor"].as_str().unwrap()
        );
    }
    assert_eq!(seen, ["Kim 100% Real", "Kim Plain", "Kim_Under"]);
    let gone: i64 = sqlx::query_scalar("SELECT id FROM users WHERE name = 'Kim Gone'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let reply = get(&app, &format!("user/{gone}")).await;
    assert_eq!(
        (reply.status, reply.body["errors"][0]["code"].clone()),
        (404, "UserNotFound".into())
    );
}

#[tokio::test]
async fn bad_lookups_get_a_4xx_with_a_code() {
    let app = spawn_app().await;
    let long = format!("users?search={}", "x".repeat(129));
    for (path, status, code) in [
        ("user/123456789", 404, "UserNotFound"),
        ("user/abc", 404, "RouteNotFound"),
        ("user?handle=nobody_here", 404, "UserNotFound"),
        ("user?handle=not%20a%20handle", 404, "UserNotFound"),
        ("user", 400, "InvalidQuery"),
        ("user?handle=valyxa&extra=1", 400, "InvalidQuery"),
        ("users?isBot=maybe", 400, "InvalidQuery"),
        ("users?take=0", 400, "InvalidTake"),
        ("users?after=abc", 400, "InvalidCursor"),
        (long.as_str(), 400, "InvalidQuery"),
        ("users?search=%07bell", 422, "ControlCharacter"),
    ] {
        let reply = get(&app, path).await;
        assert_eq!(reply.status, status, "{path}: {}", reply.body);
        assert_eq!(reply.body["errors"][0]["code"], code, "{path}");
    }
}
