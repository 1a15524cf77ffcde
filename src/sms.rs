//! SMS delivery through the `sms-message` queue: a Twilio-compatible REST provider
//! (`POST {api_url}/2010-04-01/Accounts/{sid}/Messages.json`, form-encoded `To`, `From`, `Body`,
//! HTTP basic auth), or, with no provider configured, one JSON file per message in
//! `sms.outbox_dir`. 429 and 5xx answers and network errors are retried; other 4xx answers
//! (bad number, unverified sender) are permanent.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::config::SmsSettings;
use crate::jobs::{JobContext, JobError, JobHandler, Queue};

pub enum SmsSender {
    Twilio {
        client: reqwest::Client,
        messages_url: String,
        account_sid: String,
        auth_token: SecretString,
        from: String,
    },
    Files(PathBuf),
}

impl SmsSender {
    pub fn from_settings(settings: &SmsSettings) -> Result<Self, std::io::Error> {
        if settings.account_sid.is_empty() {
            std::fs::create_dir_all(&settings.outbox_dir)?;
            return Ok(SmsSender::Files(settings.outbox_dir.clone()));
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.timeout_secs))
            .build()
            .map_err(std::io::Error::other)?;
        Ok(SmsSender::Twilio {
            client,
            messages_url: format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                settings.api_url.trim_end_matches('/'),
                settings.account_sid
            ),
            account_sid: settings.account_sid.clone(),
            auth_token: settings.auth_token.clone(),
            from: settings.from_number.clone(),
        })
    }
}

/// The `sms-message` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendSms {
    /// E.164 (`+15551234567`).
    pub to: String,
    pub body: String,
}

/// Twilio's error body.
#[derive(Debug, Deserialize)]
struct TwilioError {
    code: Option<i64>,
    message: Option<String>,
}

pub struct SendSmsHandler {
    pub sender: SmsSender,
}

impl JobHandler for SendSmsHandler {
    const KIND: &'static str = "sms.send";
    const QUEUE: Queue = Queue::SmsMessage;
    type Payload = SendSms;

    async fn handle(&self, sms: SendSms, ctx: JobContext) -> Result<(), JobError> {
        let valid = sms.to.starts_with('+')
            && sms.to.len() > 4
            && sms.to[1..].bytes().all(|b| b.is_ascii_digit());
        if !valid {
            return Err(JobError::permanent(format!(
                "{:?} is not an E.164 phone number",
                sms.to
            )));
        }
        match &self.sender {
            SmsSender::Files(dir) => {
                let record = serde_json::json!({ "to": sms.to, "body": sms.body, "jobId": ctx.id.to_string() });
                tokio::fs::write(dir.join(format!("{}.json", ctx.id)), record.to_string())
                    .await
                    .map_err(|e| JobError::retryable(format!("writing the message file: {e}")))?;
                tracing::info!(job_id = %ctx.id, "sms written to the outbox (no provider configured)");
                Ok(())
            }
            SmsSender::Twilio {
                client,
                messages_url,
                account_sid,
                auth_token,
                from,
            } => {
                let response = client
                    .post(messages_url)
                    .basic_auth(account_sid, Some(auth_token.expose_secret()))
                    .form(&[
                        ("To", sms.to.as_str()),
                        ("From", from.as_str()),
                        ("Body", sms.body.as_str()),
                    ])
                    .send()
                    .await
                    .map_err(|e| JobError::retryable(format!("SMS provider unreachable: {e}")))?;
                let status = response.status();
                if status.is_success() {
                    tracing::info!(job_id = %ctx.id, "sms accepted by the provider");
                    return Ok(());
                }
                let detail = response.json::<TwilioError>().await.ok();
                let reason = format!(
                    "SMS provider answered {status}: {} (code {})",
                    detail
                        .as_ref()
                        .and_then(|d| d.message.clone())
                        .unwrap_or_default(),
                    detail
                        .and_then(|d| d.code)
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "-".into())
                );
                if status.as_u16() == 429 || status.is_server_error() {
                    Err(JobError::retryable(reason))
                } else {
                    Err(JobError::permanent(reason))
                }
            }
        }
    }
}
