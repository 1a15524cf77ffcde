//! `action` steps: a run calls the server's own MCP tools as its owner. One posts to the
//! owner's chat and another reads the owner's routines; a call with bad arguments fails the run
//! with the tool's code.

use super::*;
use crate::chat::create_chat;

#[tokio::test]
async fn an_action_posts_to_the_owners_chat_and_reads_their_routines() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let chat = create_chat(&app, &sam, &[], json!({})).await;
    let config = json!({"graph": {"__type": "Graph-1.0", "schema": {
        "start": "post",
        "nodes": [
            {"id": "post", "kind": "action", "tool": "send_message",
             "input": {"chatId": "{{input.chatId}}", "text": "from a run"},
             "outputs": {"messageId": "$.message.id"}},
            {"id": "find", "kind": "action", "tool": "resource_manage",
             "input": {"op": "find", "resourceType": "Routine"}}
        ],
        "edges": [{"from": "post", "to": "find"}],
        "outputs": {"said": "nodes.post.result.message.text",
                    "messageId": "nodes.post.messageId",
                    "routines": "nodes.find.result.routines"}}}});
    let run = run_of(&app, &sam, config, json!({"chatId": chat})).await;
    let done = until_status(&app, &sam, &run, "Completed").await;
    assert_eq!(done["outputs"]["said"], "from a run", "{done}");
    // Posted as Sam, in Sam's chat.
    let (text, author): (String, i64) =
        sqlx::query_as("SELECT text, user_id FROM chat_messages WHERE chat_id = $1")
            .bind(chat.parse::<i64>().unwrap())
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(
        (text.as_str(), author.to_string()),
        ("from a run", sam.id.clone())
    );
    assert_eq!(
        done["outputs"]["messageId"].as_str().map(str::to_owned),
        sqlx::query_scalar::<_, i64>("SELECT id FROM chat_messages WHERE chat_id = $1")
            .bind(chat.parse::<i64>().unwrap())
            .fetch_one(&app.db.pool)
            .await
            .ok()
            .map(|id| id.to_string())
    );
    // The routine that is running is among Sam's routines.
    assert_eq!(
        done["outputs"]["routines"].as_array().map(Vec::len),
        Some(1)
    );
}

#[tokio::test]
async fn an_action_with_bad_arguments_fails_the_run_with_the_tools_code() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let config = json!({"graph": {"__type": "Graph-1.0", "schema": {
        "start": "post",
        "nodes": [{"id": "post", "kind": "action", "tool": "send_message",
                   "input": {"chatId": "1"}}],
        "edges": []}}});
    let run = run_of(&app, &sam, config, json!({})).await;
    let failed = until_status(&app, &sam, &run, "Failed").await;
    assert_eq!(failed["statusReason"], "InvalidArguments", "{failed}");
}
