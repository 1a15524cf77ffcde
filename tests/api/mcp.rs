//! The MCP server at `/mcp`, driven by the official Python client (PyPI `mcp`,
//! `tests/mcp/client.py`): initialize, list the tools, call each one (a message answered by the
//! echo bot, a routine added, found, read and run to the end), failures as `isError` results,
//! a key without the permission refused, an unknown key refused at the door, the system key.

use serde_json::{Value, json};

use crate::chat::create_chat;
use crate::helpers::{TestApp, spawn_app};
use crate::ws::{User, user};

/// `admin.system_key` as `test_settings` sets it.
const SYSTEM_KEY: &str = "system-key-for-tests";

/// An API key of `who` with `permissions`; its secret.
pub async fn api_key(app: &TestApp, who: &User, permissions: &[&str]) -> String {
    let reply = crate::auth::post(
        app,
        "/apiKey",
        Some(&who.token),
        json!({"name": "mcp", "permissions": permissions, "limitHard": 1_000_000_000_000i64}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["data"]["key"].as_str().unwrap().to_owned()
}

/// Runs the Python client against `url` with `scenario`; its report.
pub async fn client(url: &str, scenario: Value) -> Value {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/client.py");
    let output = tokio::process::Command::new("python3")
        .arg(script)
        .arg(url)
        .arg(scenario.to_string())
        .output()
        .await
        .expect("python3 (scripts/test.sh installs the mcp client)");
    assert!(
        output.status.success(),
        "the client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "no report ({e}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Sam with two API keys (read and write first, then read only) and a chat with the echo bot.
struct Setup {
    keys: [String; 2],
    valyxa: String,
    chat: String,
}

async fn setup(app: &TestApp) -> Setup {
    let sam = user(app, "Sam").await;
    let full = api_key(app, &sam, &["ReadPublic", "ReadPrivate", "WritePrivate"]).await;
    let read_only = api_key(app, &sam, &["ReadPublic", "ReadPrivate"]).await;
    let valyxa = app.get("/api/v2/user?handle=valyxa").await.body["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let chat = create_chat(app, &sam, &[&valyxa], json!({})).await;
    Setup {
        keys: [full, read_only],
        valyxa,
        chat,
    }
}

#[tokio::test]
async fn the_official_client_lists_and_calls_every_tool_and_refusals_are_tool_errors() {
    let app = spawn_app().await;
    let Setup {
        keys: [full, read_only],
        valyxa,
        chat,
    } = setup(&app).await;
    // A routine whose one step doubles its input, in the sandbox.
    let config = json!({"graph": {"__type": "Graph-1.0", "schema": {
        "start": "double",
        "nodes": [{"id": "double", "kind": "code", "code": "return input.x * 2;",
                   "input": {"x": "{{input.x}}"}}],
        "edges": [],
        "outputs": {"doubled": "nodes.double.result"}}}});
    let report = client(
        &app.url("/mcp"),
        json!({
            "full": {"key": full, "calls": [
                ["send_message", {"chatId": chat, "text": "Hello there", "waitForResponse": true,
                                  "timeoutMs": 20000}],
                ["resource_manage", {"op": "add", "resourceType": "Routine", "name": "Double",
                                     "config": config}],
                ["resource_manage", {"op": "find", "resourceType": "Routine"}],
                ["resource_manage", {"op": "get", "resourceType": "Routine",
                                     "id": {"$ref": [1, "routine", "id"]}}],
                ["run_routine", {"action": "start", "routineId": {"$ref": [1, "routine", "id"]},
                                 "inputs": {"x": 21}, "mode": "sync", "timeoutMs": 20000}],
                ["run_routine", {"action": "status", "runId": {"$ref": [4, "runId"]}}],
                ["define_tool", {"toolName": "run_routine"}],
                ["resource_manage", {"op": "get", "resourceType": "Routine", "id": "123456789"}],
                ["send_message", {"chatId": chat}],
                ["run_routine", {"action": "fly"}],
                ["no_such_tool", {}],
                ["send_message", {"chatId": "123456789", "text": "anyone?"}],
                ["run_routine", {"action": "status", "runId": "123456789"}]
            ]},
            "read_only": {"key": read_only, "calls": [
                ["resource_manage", {"op": "find", "resourceType": "Routine"}],
                ["send_message", {"chatId": chat, "text": "may I?"}]
            ]},
            "unknown_key": {"key": "not-a-key-of-anyone", "calls": []},
            "system": {"key": SYSTEM_KEY, "calls": [
                ["resource_manage", {"op": "find", "resourceType": "Routine"}]
            ]}
        }),
    )
    .await;

    let full = &report["full"];
    assert_eq!(
        full["tools"],
        json!([
            "define_tool",
            "resource_manage",
            "run_routine",
            "send_message"
        ]),
        "{report}"
    );
    assert_eq!(full["server"], "vrooli");
    let calls = full["calls"].as_array().unwrap();
    let ok = |i: usize| {
        assert_eq!(calls[i]["isError"], false, "call {i}: {}", calls[i]);
        &calls[i]["value"]
    };
    // The echo bot answered the message it was sent.
    assert_eq!(ok(0)["message"]["text"], "Hello there");
    assert_eq!(ok(0)["response"]["text"], "Hello there");
    assert_eq!(ok(0)["response"]["userId"], valyxa.as_str());
    let version = ok(1)["routine"]["id"].as_str().unwrap().to_owned();
    assert_eq!(ok(2)["routines"][0]["id"], version.as_str());
    assert_eq!(ok(3)["routine"]["name"], "Double");
    assert_eq!(ok(4)["run"]["status"], "Completed", "{}", calls[4]);
    assert_eq!(ok(4)["run"]["outputs"], json!({"doubled": 42}));
    assert_eq!(ok(5)["run"]["status"], "Completed");
    assert_eq!(ok(6)["name"], "run_routine");
    assert!(ok(6)["inputSchema"]["properties"]["action"].is_object());
    for (i, code) in [
        (7, "ResourceVersionNotFound"),
        (8, "InvalidArguments"),
        (9, "InvalidArguments"),
        (10, "UnknownTool"),
        (11, "ChatNotFound"),
        (12, "RunNotFound"),
    ] {
        assert_eq!(calls[i]["isError"], true, "call {i}: {}", calls[i]);
        assert_eq!(calls[i]["value"]["code"], code, "call {i}: {}", calls[i]);
    }

    // Permissions apply: reading works, posting does not, and nothing was posted.
    let read_only = &report["read_only"]["calls"];
    assert_eq!(read_only[0]["isError"], false, "{report}");
    assert_eq!(read_only[1]["isError"], true);
    assert_eq!(read_only[1]["value"]["code"], "MissingPermission");
    let texts: Vec<String> = sqlx::query_scalar("SELECT text FROM chat_messages ORDER BY id")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(texts, ["Hello there", "Hello there"]);

    // An unknown key does not get as far as initialize; the system key does.
    assert!(
        report["unknown_key"]["refused"].is_string(),
        "{}",
        report["unknown_key"]
    );
    assert_eq!(report["system"]["calls"][0]["isError"], false, "{report}");
}

/// The same refusal has the same code over REST and over MCP: both transports answer from the
/// services' one mapping (`src/errors.rs`). A key at its credit limit posting to a bot's chat,
/// a routine version that does not exist, and a key without the permission to post.
#[tokio::test]
async fn rest_and_mcp_answer_the_same_code_for_the_same_refusal() {
    use crate::helpers::Auth;
    let app = spawn_app().await;
    let Setup {
        keys: [spent, read_only],
        chat,
        ..
    } = setup(&app).await;
    // The first key has spent all it may.
    sqlx::query("UPDATE api_keys SET credits_used = limit_hard WHERE id = (SELECT min(id) FROM api_keys WHERE name = 'mcp')")
        .execute(&app.db.pool)
        .await
        .unwrap();

    let post = json!({"chatId": chat, "text": "one more?"});
    let rest = [
        app.call(
            reqwest::Method::POST,
            "/chatMessage",
            Auth::ApiKey(&spent),
            Some(&post),
        )
        .await,
        app.call(
            reqwest::Method::GET,
            "/resourceVersion/123456789",
            Auth::ApiKey(&spent),
            None,
        )
        .await,
        app.call(
            reqwest::Method::POST,
            "/chatMessage",
            Auth::ApiKey(&read_only),
            Some(&post),
        )
        .await,
    ];
    let report = client(
        &app.url("/mcp"),
        json!({
            "spent": {"key": spent, "calls": [
                ["send_message", {"chatId": chat, "text": "one more?"}],
                ["resource_manage", {"op": "get", "resourceType": "Routine", "id": "123456789"}]
            ]},
            "read_only": {"key": read_only, "calls": [
                ["send_message", {"chatId": chat, "text": "one more?"}]
            ]}
        }),
    )
    .await;
    let mcp = [
        &report["spent"]["calls"][0],
        &report["spent"]["calls"][1],
        &report["read_only"]["calls"][0],
    ];
    for (expected, (rest, mcp)) in [
        "ApiKeyCreditLimit",
        "ResourceVersionNotFound",
        "MissingPermission",
    ]
    .into_iter()
    .zip(rest.iter().zip(mcp))
    {
        assert_eq!(
            rest.body["errors"][0]["code"], expected,
            "REST: {}",
            rest.text
        );
        assert_eq!(mcp["isError"], true, "MCP: {mcp}");
        assert_eq!(mcp["value"]["code"], expected, "MCP: {mcp}");
    }
    // Nothing was posted by either transport.
    let posted: i64 = sqlx::query_scalar("SELECT count(*) FROM chat_messages")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(posted, 0);
}

/// A bot answers with its thread's history, so an agent's messages go on the latest thread by
/// default, under `parentId` when it says so, or start one with `newThread`; `run_routine`
/// takes a routine's id (its latest version) as well as a version's.
#[tokio::test]
async fn send_message_keeps_to_a_thread_and_run_routine_takes_a_routine_id() {
    let app = spawn_app().await;
    let Setup {
        keys: [full, _],
        chat,
        ..
    } = setup(&app).await;
    let config = json!({"graph": {"__type": "Graph-1.0", "schema": {
        "start": "w", "nodes": [{"id": "w", "kind": "wait", "durationMs": 1}], "edges": []}}});
    let wait = |text: &str| {
        json!(["send_message", {"chatId": chat, "text": text, "waitForResponse": true,
                                "timeoutMs": 20000}])
    };
    let report = client(
        &app.url("/mcp"),
        json!({"full": {"key": full, "calls": [
            wait("first"),
            wait("second"),
            ["send_message", {"chatId": chat, "text": "elsewhere", "newThread": true}],
            ["send_message", {"chatId": chat, "text": "back to the first",
                              "parentId": {"$ref": [0, "message", "id"]}}],
            ["send_message", {"chatId": chat, "text": "x", "newThread": true, "parentId": "1"}],
            ["resource_manage", {"op": "add", "resourceType": "Routine", "name": "Pause",
                                 "config": config}],
            ["run_routine", {"action": "start",
                             "routineId": {"$ref": [5, "routine", "resourceId"]},
                             "mode": "sync", "timeoutMs": 20000}]
        ]}}),
    )
    .await;
    let calls = report["full"]["calls"].as_array().unwrap();
    let ok = |i: usize| {
        assert_eq!(calls[i]["isError"], false, "call {i}: {}", calls[i]);
        &calls[i]["value"]
    };
    // "second" answers the bot's answer to "first": one thread the bot reads whole.
    assert_eq!(ok(1)["message"]["parentId"], ok(0)["response"]["id"]);
    assert_eq!(ok(2)["message"]["parentId"], serde_json::Value::Null);
    assert_eq!(ok(3)["message"]["parentId"], ok(0)["message"]["id"]);
    assert_eq!(
        calls[4]["value"]["code"], "InvalidArguments",
        "{}",
        calls[4]
    );
    assert_eq!(ok(6)["run"]["status"], "Completed", "{}", calls[6]);
    assert_eq!(ok(6)["run"]["resourceVersionId"], ok(5)["routine"]["id"]);
}
