//! kill -9 of the node that owns a run, with the real binary as that node: another node takes
//! the run over after the lease expires and finishes it; finished steps are not called again,
//! the step in flight at most twice under one key; a socket on another node sees the run's
//! events in gapless `seq` order.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::*;
use crate::helpers::SecondNode;

/// `vrooli serve` on `app`'s database and Redis prefix, as worker `worker`, with the runs
/// settings of these tests. It runs jobs; the test app does not, so this node owns the run.
async fn owner_process(app: &TestApp, worker: u16) -> tokio::process::Child {
    let dir = std::env::temp_dir().join(format!(
        "vrooli-test-owner-{}",
        crate::helpers::random_suffix()
    ));
    let mut child = Command::new(env!("CARGO_BIN_EXE_vrooli"))
        .arg("serve")
        .env_remove("RUST_LOG")
        .env("VROOLI__DATABASE__URL", &app.db.url)
        .env("VROOLI__REDIS__KEY_PREFIX", &app.settings.redis.key_prefix)
        .env("VROOLI__NODE__WORKER_ID", worker.to_string())
        .env("VROOLI__SERVER__HOST", "127.0.0.1")
        .env("VROOLI__SERVER__PORT", "0")
        .env("VROOLI__SERVER__WORKERS", "1")
        .env("VROOLI__SERVER__DEVELOPMENT", "true")
        .env("VROOLI__LOG__FORMAT", "json")
        .env("VROOLI__EMAIL__OUTBOX_DIR", dir.join("email"))
        .env("VROOLI__SMS__OUTBOX_DIR", dir.join("sms"))
        .env("VROOLI__AUTH__KEY_DIR", dir.join("keys"))
        .env("VROOLI__RUNS__ALLOW_PRIVATE_ADDRESSES", "true")
        .env("VROOLI__RUNS__LEASE_TTL_MS", "1500")
        .env("VROOLI__RUNS__LEASE_RENEW_MS", "300")
        .env("VROOLI__RUNS__SWEEP_INTERVAL_MS", "100")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("vrooli serve starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("http server listening") {
                return;
            }
        }
        panic!("the owner exited before listening")
    })
    .await
    .expect("the owner listens within 60 s");
    // Keep draining its log so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

#[tokio::test]
async fn kill_9_of_the_owner_mid_step_another_node_finishes_the_run() {
    let app = app_without_jobs().await;
    let sam = user(&app, "Sam").await;
    let server = MockServer::start().await;
    answers(&server, "/slow", Duration::from_secs(3), json!({})).await;
    answers(&server, "/fast", Duration::ZERO, json!({})).await;
    let mut owner = owner_process(&app, app.settings.node.worker_id + 5).await;
    let config = graph(
        json!([
            http_node("one", &server, "/fast"),
            http_node("two", &server, "/fast"),
            http_node("three", &server, "/slow"),
            http_node("four", &server, "/fast"),
            http_node("five", &server, "/fast")
        ]),
        chain(&["one", "two", "three", "four", "five"]),
    );
    let version = routine(&app, &sam, "RoutineMultiStep", config).await;
    // A socket on the test app's node (not the owner) joins the run's room right after the
    // start; the REST timeline covers anything it joined too late for.
    let Reply { status, body, .. } = start(&app, &sam, &version, json!({}), None).await;
    assert_eq!(status, 200, "{body}");
    let run = body["data"]["runId"].as_str().unwrap().to_owned();
    let mut ws = crate::ws::open(&app.address, &sam.token).await;
    ws.join("joinRunRoom", json!({"runId": run})).await;

    wait_until(Duration::from_secs(20), "step three is called", || async {
        keys_sent(&server, "/slow").await.len() == 1
    })
    .await;
    let killed = Command::new("kill")
        .args(["-9", &owner.id().unwrap().to_string()])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let _ = owner.wait().await;

    // A node that runs jobs takes the run over once the dead owner's lease expires.
    let successor = SecondNode::start_with(&app, 1, |s| s.jobs.enabled = true).await;
    let done = until_status(&app, &sam, &run, "Completed").await;
    assert_eq!(done["status"], "Completed");

    let slow = keys_sent(&server, "/slow").await;
    assert!(
        (1..=2).contains(&slow.len()),
        "step three at most twice: {slow:?}"
    );
    assert!(
        slow.iter().all(|k| *k == format!("{run}:three")),
        "one key: {slow:?}"
    );
    let fast = keys_sent(&server, "/fast").await;
    for step in ["one", "two", "four", "five"] {
        let calls = fast
            .iter()
            .filter(|k| **k == format!("{run}:{step}"))
            .count();
        assert_eq!(calls, 1, "step {step} once: {fast:?}");
    }
    // The socket saw the run's events in order, without gaps, to the end.
    let mut seqs = Vec::new();
    loop {
        let Some(event) = ws.next_within(Duration::from_secs(10)).await else {
            panic!("the socket stopped before run/completed; seqs {seqs:?}")
        };
        if event["type"] == "step/stream" {
            continue;
        }
        seqs.push(event["data"]["seq"].as_i64().unwrap());
        if event["type"] == "run/completed" {
            break;
        }
    }
    let first = seqs[0];
    assert_eq!(
        seqs,
        (first..first + seqs.len() as i64).collect::<Vec<_>>(),
        "gapless: {seqs:?}"
    );
    let timeline = events(&app, &sam, &run).await;
    assert_gapless(&timeline, &run);
    assert_eq!(
        timeline.last().unwrap()["seq"].as_i64(),
        seqs.last().copied()
    );
    successor.stop().await;
}

#[tokio::test]
async fn sigstop_of_the_owner_past_its_lease_then_sigcont_the_old_owner_is_fenced_out() {
    let app = app_without_jobs().await;
    let sam = user(&app, "Sam").await;
    let server = MockServer::start().await;
    answers(&server, "/slow", Duration::from_secs(2), json!({})).await;
    answers(&server, "/fast", Duration::ZERO, json!({})).await;
    let mut owner = owner_process(&app, app.settings.node.worker_id + 6).await;
    let pid = owner.id().unwrap().to_string();
    let config = graph(
        json!([
            http_node("one", &server, "/fast"),
            http_node("two", &server, "/slow"),
            http_node("three", &server, "/fast")
        ]),
        chain(&["one", "two", "three"]),
    );
    let run = run_of(&app, &sam, config, json!({})).await;
    wait_until(Duration::from_secs(20), "step two is called", || async {
        keys_sent(&server, "/slow").await.len() == 1
    })
    .await;
    let signal = |name: &'static str| {
        let pid = pid.clone();
        async move {
            let done = Command::new("kill")
                .args([name, &pid])
                .status()
                .await
                .unwrap();
            assert!(done.success(), "kill {name}");
        }
    };
    signal("-STOP").await;
    // Past its lease, another node takes the run over and finishes it.
    let successor = SecondNode::start_with(&app, 1, |s| s.jobs.enabled = true).await;
    until_status(&app, &sam, &run, "Completed").await;
    let settled = events(&app, &sam, &run).await;
    // The old owner wakes: its call returns, its writes must all be refused.
    signal("-CONT").await;
    tokio::time::sleep(Duration::from_secs(3)).await; // its slow call's answer and a renewal
    let after = events(&app, &sam, &run).await;
    assert_eq!(
        after.len(),
        settled.len(),
        "the old owner wrote nothing: {after:#?}"
    );
    assert_eq!(get_run(&app, &sam, &run).await["status"], "Completed");
    assert_eq!(
        keys_sent(&server, "/slow").await.len(),
        2,
        "step two: the stalled call and one more"
    );
    let three = keys_sent(&server, "/fast")
        .await
        .iter()
        .filter(|k| **k == format!("{run}:three"))
        .count();
    assert_eq!(three, 1, "the old owner went no further");
    assert!(
        owner.try_wait().unwrap().is_none(),
        "it stopped the run, not itself"
    );
    successor.stop().await;
}

#[tokio::test]
async fn kill_9_mid_non_idempotent_step_pauses_the_run_until_a_person_resumes_it() {
    let app = app_without_jobs().await;
    let sam = user(&app, "Sam").await;
    let server = MockServer::start().await;
    answers(&server, "/pay", Duration::from_secs(3), json!({})).await;
    answers(&server, "/fast", Duration::ZERO, json!({})).await;
    let mut owner = owner_process(&app, app.settings.node.worker_id + 7).await;
    let mut pay = http_node("pay", &server, "/pay");
    pay["effect"] = json!("non-idempotent");
    let config = graph(
        json!([
            http_node("one", &server, "/fast"),
            pay,
            http_node("three", &server, "/fast")
        ]),
        chain(&["one", "pay", "three"]),
    );
    let run = run_of(&app, &sam, config, json!({})).await;
    wait_until(Duration::from_secs(20), "the payment is called", || async {
        keys_sent(&server, "/pay").await.len() == 1
    })
    .await;
    let killed = Command::new("kill")
        .args(["-9", &owner.id().unwrap().to_string()])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let _ = owner.wait().await;

    let successor = SecondNode::start_with(&app, 1, |s| s.jobs.enabled = true).await;
    let paused = until_status(&app, &sam, &run, "Paused").await;
    assert_eq!(paused["statusReason"], "UncertainStep");
    tokio::time::sleep(Duration::from_millis(500)).await; // sweeps pass: nothing calls it again
    assert_eq!(
        keys_sent(&server, "/pay").await.len(),
        1,
        "not called again on its own"
    );

    let resume = json!({"isNewRun": false, "runId": run});
    let reply = app
        .call(
            Method::POST,
            "/task/start/run",
            Auth::Cookie(&sam.token),
            Some(&resume),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    until_status(&app, &sam, &run, "Completed").await;
    assert_eq!(
        keys_sent(&server, "/pay").await,
        [format!("{run}:pay"), format!("{run}:pay")],
        "once more, same key, when a person said so"
    );
    let fast = keys_sent(&server, "/fast").await;
    assert_eq!(fast, [format!("{run}:one"), format!("{run}:three")]);
    successor.stop().await;
}
