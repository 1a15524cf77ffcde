//! `POST /resource/import` with the original's exported routines (a real Sequential routine of
//! its staged set and the three Generate routines it calls, `tests/fixtures/`): new ids, the
//! steps' references rewritten to the new versions, what cannot run here said; a reference to
//! nothing is refused naming it, and nothing is written.

use super::*;

fn fixture() -> Value {
    serde_json::from_str(include_str!(
        "../../fixtures/original-yes-man-avoidance.json"
    ))
    .unwrap()
}

#[tokio::test]
async fn the_originals_routines_are_imported_with_their_references_rewritten() {
    let app = spawn_app().await;
    let sam = user(&app, "Sam").await;
    let reply = app
        .call(
            Method::POST,
            "/resource/import",
            Auth::Cookie(&sam.token),
            Some(&fixture()),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let data = &reply.body["data"];
    let imported = data["imported"].as_object().unwrap();
    assert_eq!(imported.len(), 4);
    let parent = &imported["7829564732190847562"];
    let read = app
        .call(
            Method::GET,
            &format!("/resourceVersion/{}", parent["versionId"].as_str().unwrap()),
            Auth::Cookie(&sam.token),
            None,
        )
        .await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.body["data"]["name"], "Yes-Man Avoidance");
    let steps = read.body["data"]["config"]["graph"]["schema"]["steps"]
        .as_array()
        .unwrap()
        .clone();
    for (step, old) in steps.iter().zip([
        "7829564732190848945",
        "7829564732190848948",
        "7829564732190848951",
    ]) {
        assert_eq!(step["subroutineId"], imported[old]["versionId"], "{step}");
    }
    // Its Generate routines carry no prompt of their own (as 429 of the original's 981 do):
    // stored, and said not to be runnable here; and so the routine calling them cannot
    // complete as stored, which is said before anyone runs it.
    let not_runnable = data["notRunnable"].as_array().unwrap();
    assert_eq!(not_runnable.len(), 4, "{not_runnable:?}");
    assert!(
        not_runnable
            .iter()
            .all(|n| n["reason"].as_str().unwrap().contains("prompt")),
        "{not_runnable:?}"
    );
    let caller = not_runnable
        .iter()
        .find(|n| n["resourceId"] == "7829564732190847562")
        .expect("the calling routine is listed");
    assert!(
        caller["reason"]
            .as_str()
            .unwrap()
            .starts_with("node \"step-1\": calls routine version"),
        "{caller}"
    );
}

#[tokio::test]
async fn an_import_that_names_a_routine_it_lacks_is_refused_whole() {
    let app = spawn_app().await;
    let sam = user(&app, "Sam").await;
    let parent_only = json!([fixture()[0].clone()]);
    let reply = app
        .call(
            Method::POST,
            "/resource/import",
            Auth::Cookie(&sam.token),
            Some(&parent_only),
        )
        .await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert_eq!(reply.body["errors"][0]["code"], "ReferenceNotFound");
    let message = reply.body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("step \"step-1\"") && message.contains("7829564732190848945"),
        "{message}"
    );
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM resources")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "nothing written");
}
