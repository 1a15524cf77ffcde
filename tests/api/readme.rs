//! The README's quick start, run as written against a real server: what a new user pastes
//! first works, including going on in a thread.

use std::time::Duration;

use crate::helpers::{spawn_app, wait_until};

/// The first `sh` block after `## Quick start`.
fn quick_start() -> String {
    let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
    let section = &readme[readme.find("## Quick start").expect("a quick start")..];
    let block = &section[section.find("```sh\n").expect("a shell block") + 6..];
    block[..block.find("```").expect("the block ends")].to_owned()
}

#[tokio::test]
async fn the_readmes_quick_start_works_as_written_and_continues_a_thread() {
    let app = spawn_app().await;
    // Only the address differs; the answer may take longer than the README's second on a
    // loaded machine.
    let script = quick_start()
        .replace("http://localhost:5329", &app.address)
        .replace("sleep 1;", "sleep 3;");
    let dir = std::env::temp_dir().join(format!("vrooli-readme-{}", app.port));
    std::fs::create_dir_all(&dir).unwrap();
    let output = tokio::process::Command::new("bash")
        .arg("-ec")
        .arg(&script)
        .current_dir(&dir)
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!said.contains("\"errors\""), "{said}");

    // Sam's second message answers Valyxa's answer to the first, and she answers it in turn:
    // one thread, root to leaf.
    let thread = || async {
        let rows: Vec<(i64, Option<i64>, bool)> = sqlx::query_as(
            "SELECT m.id, m.parent_id, u.is_bot FROM chat_messages m
               JOIN users u ON u.id = m.user_id ORDER BY m.id",
        )
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
        rows
    };
    wait_until(Duration::from_secs(20), "the second answer", || async {
        thread().await.len() == 4
    })
    .await;
    let rows = thread().await;
    let bots: Vec<bool> = rows.iter().map(|r| r.2).collect();
    assert_eq!(bots, [false, true, false, true], "{rows:?}");
    assert_eq!(rows[0].1, None);
    for pair in rows.windows(2) {
        assert_eq!(
            pair[1].1,
            Some(pair[0].0),
            "each answers the one before: {rows:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
