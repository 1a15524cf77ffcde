//! The API fuzzed against its own document: schemathesis (PyPI; installed by scripts/test.sh)
//! runs every check against a running node, signed in, bounded in examples and time: no 5xx,
//! every answer's status, content type, headers and body as documented, schema-breaking input
//! refused with a 4xx, a wrong method 405 with `Allow`, broken credentials refused. Two runs at
//! once: as a person (an API key with every permission where a route takes keys, their session
//! token as `bearer` where only a session will do), and with the system key for the operator
//! routes. A failure prints schemathesis's report (each failing
//! case with the `curl` that reproduces it).

use std::process::Command;

use serde_json::json;

use crate::auth::{post, sign_up};
use crate::helpers::spawn_app_with;

/// Examples per operation and the time budget per run: enough to reach every operation and
/// the schema's edges in CI (under two minutes), not an endless fuzz.
const MAX_EXAMPLES: &str = "12";
const MAX_SECONDS: &str = "100";

/// One schemathesis run; `api_key` and `bearer` are the credentials of the `apiKey` and
/// `bearer` schemes (tests/fuzz/schemathesis.toml reads them from the environment).
fn schemathesis(url: &str, api_key: &str, bearer: &str, filter: &[&str]) -> (bool, String) {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz/schemathesis.toml");
    let report = std::env::temp_dir().join(format!("vrooli-fuzz-{}", std::process::id()));
    let output = Command::new("python3")
        .args([
            "-m",
            "schemathesis.cli",
            "--config-file",
            config,
            "--no-color",
            "run",
            url,
        ])
        .args([
            "--checks",
            "all",
            "--max-examples",
            MAX_EXAMPLES,
            "--max-time",
            MAX_SECONDS,
        ])
        // One worker: hypothesis on CPython 3.11 can crash parsing its own sources from two
        // threads at once ("AST constructor recursion depth mismatch").
        .args([
            "--seed",
            "20261201",
            "--workers",
            "1",
            "--request-timeout",
            "10",
        ])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--report-dir".as_ref(), report.as_os_str()])
        .args(filter)
        .env("VROOLI_FUZZ_API_KEY", api_key)
        .env("VROOLI_FUZZ_BEARER", bearer)
        .output()
        .expect("schemathesis runs (scripts/test.sh installs it: pip install schemathesis)");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_keeps_to_its_document_under_fuzzing() {
    // Not beside the timed balancer tests: two fuzzers keep both cores busy.
    let _machine = crate::helpers::MACHINE.lock().await;
    // Billing on, against a fake Stripe that makes every session asked for: valid checkouts
    // then succeed, as the document says they do.
    let stripe = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(
            json!({"id": "cs_fuzz", "url": "https://checkout.stripe.com/c/pay/cs_fuzz"}),
        ))
        .mount(&stripe)
        .await;
    let stripe_url = stripe.uri();
    let app = spawn_app_with(
        move |s| {
            // The fuzzer sends thousands of requests a minute; the limits are tested elsewhere.
            s.rate_limit.enabled = false;
            s.stripe.secret_key = "sk_test_fuzz".to_string().into();
            s.stripe.webhook_secret = "whsec_fuzz".to_string().into();
            s.stripe.api_url = stripe_url;
            s.stripe.prices.premium_monthly = "price_m".into();
            s.stripe.prices.premium_yearly = "price_y".into();
        },
        None,
    )
    .await;
    let (cookie, _, _) = sign_up(&app, None, "Fuzz").await;
    let created = post(
        &app,
        "/apiKey",
        Some(&cookie),
        json!({"name": "fuzz", "limitHard": 1_000_000_000,
               "permissions": ["ReadPublic", "ReadPrivate", "WritePrivate", "ReadAuth", "WriteAuth"]}),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let key = created.body["data"]["key"].as_str().unwrap().to_owned();
    let url = app.url("/api/v2/openapi.json");

    let system = secrecy::ExposeSecret::expose_secret(&app.settings.admin.system_key).to_owned();
    // The person's session token doubles as their bearer token (the fuzzer may end it by
    // calling /auth/logout; later session-only calls are then 401, which the document allows).
    let bearer = cookie.clone();
    // Blocking runs on their own threads so the server (in this process) keeps serving.
    let (a, b) = tokio::join!(
        tokio::task::spawn_blocking({
            let url = url.clone();
            move || {
                schemathesis(
                    &url,
                    &key,
                    &bearer,
                    &["--exclude-path-regex", "^/api/v2/admin/|^/metrics$"],
                )
            }
        }),
        tokio::task::spawn_blocking(move || {
            schemathesis(
                &url,
                &system,
                &system,
                &["--include-path-regex", "^/api/v2/admin/|^/metrics$"],
            )
        }),
    );
    let ((person_ok, person_report), (system_ok, system_report)) = (a.unwrap(), b.unwrap());
    assert!(
        person_ok && system_ok,
        "fuzzing found failures.\n\nAs a person:\n{person_report}\n\nWith the system key:\n{system_report}"
    );
}
