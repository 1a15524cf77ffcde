//! A node killed with -9 behind the balancer leaves nothing behind: the email jobs it had
//! claimed (stuck on a hung mail server) are rescued by another node and delivered once each;
//! the run it owned, killed mid-step, is finished by another node without repeating finished
//! steps; the presence of sockets that were on it expires within the presence TTL, while the
//! sockets on the other nodes stay online.

use std::time::{Duration, Instant};

use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{Balancer, node_process, port};
use crate::helpers::{SecondNode, SmtpServer, TestApp, spawn_app_with, wait_until};
use crate::routines::routine;
use crate::runs::{chain, graph, http_node, keys_sent, run_settings, start, until_status};
use crate::ws::{admin_get, chat, open, user, with_system_key};

/// Who the admin API says is online in `room`, sorted.
async fn online(app: &TestApp, room: &str) -> Vec<String> {
    let reply = admin_get(
        &app.client,
        &app.address,
        &format!("/rooms/{room}/presence"),
    )
    .await;
    let mut users: Vec<String> =
        serde_json::from_value(reply.body["data"]["online"].clone()).unwrap();
    users.sort();
    users
}

#[tokio::test]
async fn a_node_killed_with_9_has_its_jobs_run_and_presence_taken_over() {
    let smtp = SmtpServer::start().await;
    let smtp_port = smtp.port;
    // The test app runs no jobs: until the victim dies, the victim alone claims them.
    let cluster = move |s: &mut vrooli::config::Settings| {
        run_settings(s);
        with_system_key(s);
        s.jobs.enabled = false;
        s.jobs.lock_secs = 3;
        s.jobs.rescue_interval_secs = 1;
        s.ws.presence_ttl_secs = 2;
        s.ws.presence_interval_secs = 1;
        s.email.smtp_host = "127.0.0.1".into();
        s.email.smtp_port = smtp_port;
        s.email.smtp_tls = vrooli::config::SmtpTls::None;
    };
    let a = spawn_app_with(cluster, None).await;
    let victim_env = [
        ("VROOLI__JOBS__LOCK_SECS", "3"),
        ("VROOLI__JOBS__RESCUE_INTERVAL_SECS", "1"),
        ("VROOLI__WS__PRESENCE_TTL_SECS", "2"),
        ("VROOLI__WS__PRESENCE_INTERVAL_SECS", "1"),
        ("VROOLI__RUNS__ALLOW_PRIVATE_ADDRESSES", "true"),
        ("VROOLI__RUNS__LEASE_TTL_MS", "1500"),
        ("VROOLI__RUNS__LEASE_RENEW_MS", "300"),
        ("VROOLI__RUNS__SWEEP_INTERVAL_MS", "100"),
        ("VROOLI__EMAIL__SMTP_HOST", "127.0.0.1"),
        ("VROOLI__EMAIL__SMTP_TLS", "none"),
    ]
    .map(|(k, v)| (k, v.to_owned()));
    let mut victim_env = victim_env.to_vec();
    victim_env.push(("VROOLI__EMAIL__SMTP_PORT", smtp_port.to_string()));
    let (mut victim, victim_port) =
        node_process(&a, a.settings.node.worker_id + 2, &victim_env).await;

    // The mail server hangs: each sign-up's verification email is claimed by the victim and
    // stays in flight there.
    smtp.pause();
    let sam = user(&a, "Sam").await;
    let others = [
        user(&a, "Kim").await,
        user(&a, "Lee").await,
        user(&a, "Max").await,
    ];
    let emails: i64 = 4;
    let running = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM jobs WHERE queue = 'email-send' AND state = 'running'",
        )
        .fetch_one(&a.db.pool)
        .await
        .unwrap()
    };
    wait_until(
        Duration::from_secs(10),
        "the victim holds every email",
        || async { running().await == emails },
    )
    .await;

    // A run whose third step is in flight on the victim when it dies (its first call hangs;
    // the one after the takeover answers at once).
    let service = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(60)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&service)
        .await;
    for route in ["/slow", "/fast"] {
        Mock::given(method("POST"))
            .and(path(route))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
            .mount(&service)
            .await;
    }
    let config = graph(
        json!([
            http_node("one", &service, "/fast"),
            http_node("two", &service, "/fast"),
            http_node("three", &service, "/slow"),
            http_node("four", &service, "/fast")
        ]),
        chain(&["one", "two", "three", "four"]),
    );
    let version = routine(&a, &sam, "RoutineMultiStep", config).await;
    let started = start(&a, &sam, &version, json!({}), None).await;
    assert_eq!(started.status, 200, "{}", started.body);
    let run = started.body["data"]["runId"].as_str().unwrap().to_owned();
    wait_until(Duration::from_secs(20), "step three in flight", || async {
        keys_sent(&service, "/slow").await.len() == 1
    })
    .await;

    // The third node runs jobs; it joins now, so what the victim holds stays the victim's.
    let b = SecondNode::start_with(&a, 1, |s| s.jobs.enabled = true).await;
    let lb = Balancer::start(&[a.port, victim_port, port(&b.address)]).await;

    // Three people online through the balancer: round robin puts one on each node.
    let room_chat = chat(&a, &sam, &others.iter().collect::<Vec<_>>(), false).await;
    let room = format!("chat:{room_chat}");
    let mut sockets = Vec::new();
    for person in &others {
        let mut ws = open(&lb.base, &person.token).await;
        ws.join("joinChatRoom", json!({"chatId": room_chat})).await;
        sockets.push(ws);
    }
    let mut everyone: Vec<String> = others.iter().map(|p| p.id.clone()).collect();
    everyone.sort();
    assert_eq!(online(&a, &room).await, everyone);

    victim.start_kill().unwrap();
    victim.wait().await.unwrap();
    let killed_at = Instant::now();
    smtp.resume();

    // Presence: whoever was on the victim is gone within the TTL (2 s) and one renewal (1 s);
    // the others stay.
    let mut still_on: Vec<String> = Vec::new();
    for (person, ws) in others.iter().zip(sockets.iter_mut()) {
        if ws.close_code(Duration::from_secs(1)).await.is_none() {
            still_on.push(person.id.clone());
        }
    }
    still_on.sort();
    assert!(
        (1..=2).contains(&(3 - still_on.len())),
        "one socket was on the victim: {still_on:?} still on"
    );
    wait_until(
        Duration::from_secs(6),
        "the dead node's presence expires",
        || {
            let (app, room, want) = (&a, room.clone(), still_on.clone());
            async move { online(app, &room).await == want }
        },
    )
    .await;
    assert!(
        killed_at.elapsed() <= Duration::from_secs(5),
        "gone {:?} after the kill",
        killed_at.elapsed()
    );
    // And it stays so (the survivors keep renewing theirs).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(online(&a, &room).await, still_on, "no ghost comes back");

    // Jobs: every email the victim held is rescued by b once its lock expired and sent once.
    wait_until(Duration::from_secs(20), "every email delivered", || async {
        smtp.messages().len() as i64 >= emails
    })
    .await;
    // A sent mail's job is marked completed a moment later (completions go in batches).
    let jobs = || async {
        sqlx::query_as::<_, (String, i32)>(
            "SELECT state, attempt FROM jobs WHERE queue = 'email-send' ORDER BY id",
        )
        .fetch_all(&a.db.pool)
        .await
        .unwrap()
    };
    wait_until(
        Duration::from_secs(10),
        "the sent mails' jobs completed",
        || async { jobs().await.iter().all(|(state, _)| state != "running") },
    )
    .await;
    let done = jobs().await;
    assert!(
        done.iter()
            .all(|(state, attempt)| state == "completed" && *attempt == 2),
        "each completed on its second attempt: {done:?}"
    );

    // The run: b takes it over when the dead owner's lease expires and finishes it; step three
    // is called again under the same key, the finished steps are not.
    until_status(&a, &sam, &run, "Completed").await;
    let slow = keys_sent(&service, "/slow").await;
    assert_eq!(slow, [format!("{run}:three"), format!("{run}:three")]);
    let fast = keys_sent(&service, "/fast").await;
    for step in ["one", "two", "four"] {
        let calls = fast
            .iter()
            .filter(|k| **k == format!("{run}:{step}"))
            .count();
        assert_eq!(calls, 1, "step {step} once: {fast:?}");
    }
    // Sent once each: aiosmtpd saw as many messages as there were emails, one per person.
    let delivered = smtp.messages();
    assert_eq!(delivered.len() as i64, emails, "no email twice");
    drop(sockets);
    b.stop().await;
}
