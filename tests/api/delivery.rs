//! Email through a real SMTP server (aiosmtpd, started by the test) and through the file
//! fallback; SMS against a fake Twilio speaking Twilio's wire format.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use vrooli::config::SmtpTls;
use vrooli::email::templates::Template;
use vrooli::email::{Mailer, SendEmail, SendEmailHandler};
use vrooli::ids::Snowflake;
use vrooli::jobs::{Executor, JobHandler, JobStore, Outcome, Queue, Registry, SystemClock};
use vrooli::sms::{SendSms, SendSmsHandler, SmsSender};
use wiremock::matchers::{body_string, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{SmtpServer, TestDb, random_suffix, test_settings, wait_until};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vrooli-{name}-{}", random_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn executor(db: &TestDb, registry: Registry) -> Executor {
    let settings = test_settings();
    let store = JobStore::new(
        db.pool.clone(),
        Arc::new(Snowflake::new(1).unwrap()),
        Arc::new(SystemClock),
        "test",
        5,
    );
    Executor::new(store, registry, Arc::new(settings.jobs))
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

fn email_settings(host: &str, port: u16, outbox: &Path) -> vrooli::config::EmailSettings {
    let mut settings = test_settings().email;
    settings.smtp_host = host.into();
    settings.smtp_port = port;
    settings.smtp_tls = SmtpTls::None;
    settings.outbox_dir = outbox.into();
    settings.ui_url = "https://app.vrooli.test".into();
    settings.from = "Vrooli <no-reply@vrooli.test>".into();
    settings
}

fn handler(settings: &vrooli::config::EmailSettings, db: &TestDb) -> SendEmailHandler {
    SendEmailHandler {
        mailer: Mailer::from_settings(settings).unwrap(),
        from: settings.from.parse().unwrap(),
        ui_url: settings.ui_url.clone(),
        pool: db.pool.clone(),
    }
}

#[tokio::test]
async fn verification_email_arrives_at_an_smtp_server() {
    let smtp = SmtpServer::start().await;
    let settings = email_settings("127.0.0.1", smtp.port, &temp_dir("unused"));
    let db = TestDb::new(&test_settings()).await;
    let exec = executor(&db, Registry::new().register(handler(&settings, &db))).await;
    let job = SendEmailHandler::job(&SendEmail {
        to: "Sam Doe <sam@example.org>".into(),
        template: Template::Verification {
            name: "Sam".into(),
            code: "ABC123".into(),
        },
        code_for: None,
    })
    .unwrap();
    let id = exec.store().enqueue(job).await.unwrap().unwrap();
    let outcome = exec.try_execute_one(Queue::EmailSend).await.unwrap();
    let error: Option<String> = sqlx::query_scalar("SELECT last_error FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(outcome, Some(Outcome::Completed(id)), "{error:?}");

    let new = smtp.maildir.join("new");
    wait_until(
        Duration::from_secs(10),
        "the message in the maildir",
        || async { !files_in(&new).is_empty() },
    )
    .await;
    let raw = std::fs::read_to_string(&files_in(&new)[0]).unwrap();
    assert!(raw.contains("From: Vrooli <no-reply@vrooli.test>"), "{raw}");
    assert!(
        raw.contains("To: \"Sam Doe\" <sam@example.org>")
            || raw.contains("To: Sam Doe <sam@example.org>"),
        "{raw}"
    );
    assert!(raw.contains("Subject: Confirm your email address"), "{raw}");
    assert!(raw.contains("Content-Type: multipart/alternative"), "{raw}");
    assert!(
        raw.contains("Content-Type: text/plain; charset=utf-8"),
        "{raw}"
    );
    assert!(
        raw.contains("Content-Type: text/html; charset=utf-8"),
        "{raw}"
    );
    assert!(raw.contains("Message-ID: <"), "{raw}");
    // Bodies are quoted-printable: "=" is written "=3D".
    assert!(
        raw.contains("https://app.vrooli.test/verify-email?code=3DABC123"),
        "{raw}"
    );
}

#[tokio::test]
async fn without_smtp_messages_are_written_to_the_outbox() {
    let outbox = temp_dir("outbox");
    let settings = email_settings("", 0, &outbox);
    let db = TestDb::new(&test_settings()).await;
    let exec = executor(&db, Registry::new().register(handler(&settings, &db))).await;
    let job = SendEmailHandler::job(&SendEmail {
        to: "sam@example.org".into(),
        template: Template::PasswordReset {
            name: "Sam".into(),
            code: "XYZ".into(),
        },
        code_for: None,
    })
    .unwrap();
    exec.store().enqueue(job).await.unwrap();
    assert!(matches!(
        exec.try_execute_one(Queue::EmailSend).await.unwrap(),
        Some(Outcome::Completed(_))
    ));
    let files = files_in(&outbox);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].extension().unwrap(), "eml");
    let raw = std::fs::read_to_string(&files[0]).unwrap();
    assert!(raw.contains("Subject: Reset your password"), "{raw}");
    assert!(raw.contains("reset-password?code=3DXYZ"), "{raw}");
    std::fs::remove_dir_all(outbox).ok();
}

#[tokio::test]
async fn a_bad_recipient_is_dead_at_once_and_an_unreachable_server_is_retried() {
    let settings = email_settings("127.0.0.1", 1, &temp_dir("unused"));
    let db = TestDb::new(&test_settings()).await;
    let exec = executor(&db, Registry::new().register(handler(&settings, &db))).await;
    let template = Template::Verification {
        name: "Sam".into(),
        code: "1".into(),
    };
    let bad = SendEmailHandler::job(&SendEmail {
        to: "not an address".into(),
        template: template.clone(),
        code_for: None,
    })
    .unwrap();
    let bad = exec
        .store()
        .enqueue(bad.priority(1))
        .await
        .unwrap()
        .unwrap();
    let good = SendEmailHandler::job(&SendEmail {
        to: "sam@example.org".into(),
        template,
        code_for: None,
    })
    .unwrap();
    let good = exec.store().enqueue(good).await.unwrap().unwrap();
    assert_eq!(
        exec.try_execute_one(Queue::EmailSend).await.unwrap(),
        Some(Outcome::Dead(bad))
    );
    assert_eq!(
        exec.try_execute_one(Queue::EmailSend).await.unwrap(),
        Some(Outcome::Retrying(good))
    );
}

fn twilio(server: &MockServer) -> SendSmsHandler {
    let mut settings = test_settings().sms;
    settings.api_url = server.uri();
    settings.account_sid = "AC0123456789abcdef0123456789abcdef".into();
    settings.auth_token = "tw-token".to_string().into();
    settings.from_number = "+15550000000".into();
    SendSmsHandler {
        sender: SmsSender::from_settings(&settings).unwrap(),
    }
}

#[tokio::test]
async fn sms_goes_to_twilio_in_its_wire_format() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(
            "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json",
        ))
        // Basic base64("AC0123456789abcdef0123456789abcdef:tw-token")
        .and(header(
            "authorization",
            "Basic QUMwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjp0dy10b2tlbg==",
        ))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string(
            "To=%2B15551234567&From=%2B15550000000&Body=Your+Vrooli+code+is+123456",
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({
            "sid": "SM0123456789abcdef0123456789abcdef",
            "status": "queued",
            "to": "+15551234567",
            "from": "+15550000000",
            "body": "Your Vrooli code is 123456",
        })))
        .expect(1)
        .mount(&server)
        .await;
    let db = TestDb::new(&test_settings()).await;
    let exec = executor(&db, Registry::new().register(twilio(&server))).await;
    let id = exec
        .store()
        .enqueue(
            SendSmsHandler::job(&SendSms {
                to: "+15551234567".into(),
                body: "Your Vrooli code is 123456".into(),
            })
            .unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        exec.try_execute_one(Queue::SmsMessage).await.unwrap(),
        Some(Outcome::Completed(id))
    );
    server.verify().await;
}

#[tokio::test]
async fn twilio_refusals_are_permanent_and_its_outages_are_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string("To=%2B15559999999&From=%2B15550000000&Body=hi"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "code": 21211,
            "message": "Invalid 'To' Phone Number: +15559999999",
            "more_info": "https://www.twilio.com/docs/errors/21211",
            "status": 400,
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_string("To=%2B15558888888&From=%2B15550000000&Body=hi"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let db = TestDb::new(&test_settings()).await;
    let exec = executor(&db, Registry::new().register(twilio(&server))).await;
    let refused = exec
        .store()
        .enqueue(
            SendSmsHandler::job(&SendSms {
                to: "+15559999999".into(),
                body: "hi".into(),
            })
            .unwrap()
            .priority(1),
        )
        .await
        .unwrap()
        .unwrap();
    let outage = exec
        .store()
        .enqueue(
            SendSmsHandler::job(&SendSms {
                to: "+15558888888".into(),
                body: "hi".into(),
            })
            .unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        exec.try_execute_one(Queue::SmsMessage).await.unwrap(),
        Some(Outcome::Dead(refused))
    );
    assert_eq!(
        exec.try_execute_one(Queue::SmsMessage).await.unwrap(),
        Some(Outcome::Retrying(outage))
    );
    let error: String = sqlx::query_scalar("SELECT last_error FROM jobs WHERE id = $1")
        .bind(refused)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(
        error.contains("21211") && error.contains("Invalid 'To' Phone Number"),
        "{error}"
    );
}

#[tokio::test]
async fn without_a_provider_sms_are_written_to_the_outbox() {
    let outbox = temp_dir("sms");
    let mut settings = test_settings().sms;
    settings.account_sid = String::new();
    settings.outbox_dir = outbox.clone();
    let db = TestDb::new(&test_settings()).await;
    let exec = executor(
        &db,
        Registry::new().register(SendSmsHandler {
            sender: SmsSender::from_settings(&settings).unwrap(),
        }),
    )
    .await;
    let id = exec
        .store()
        .enqueue(
            SendSmsHandler::job(&SendSms {
                to: "+15551234567".into(),
                body: "hello".into(),
            })
            .unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        exec.try_execute_one(Queue::SmsMessage).await.unwrap(),
        Some(Outcome::Completed(id))
    );
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(outbox.join(format!("{id}.json"))).unwrap())
            .unwrap();
    assert_eq!(written["to"], "+15551234567");
    assert_eq!(written["body"], "hello");
    std::fs::remove_dir_all(outbox).ok();
}
