//! Email delivery through the `email-send` queue.
//!
//! Code that wants to send mail enqueues a [`SendEmail`] job (in its transaction); a worker renders
//! the [`templates::Template`] and hands the message to the [`Mailer`]: SMTP (lettre, rustls) when
//! `email.smtp_host` is set, otherwise `.eml` files in `email.outbox_dir` so a single node works
//! with nothing else installed. SMTP answers 4xx (and connection failures) are retried; 5xx and
//! bad addresses are permanent.

pub mod templates;

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::config::{EmailSettings, SmtpTls};
use crate::jobs::{JobContext, JobError, JobHandler, Queue};
use templates::Template;

/// Where messages go.
pub enum Mailer {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>),
}

impl Mailer {
    pub fn from_settings(settings: &EmailSettings) -> Result<Self, std::io::Error> {
        if settings.smtp_host.trim().is_empty() {
            std::fs::create_dir_all(&settings.outbox_dir)?;
            return Ok(Mailer::Files(AsyncFileTransport::new(&settings.outbox_dir)));
        }
        let host = settings.smtp_host.trim();
        let builder = match settings.smtp_tls {
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
            SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                host,
            )),
        }
        .map_err(std::io::Error::other)?;
        let mut builder = builder
            .port(settings.smtp_port)
            .timeout(Some(Duration::from_secs(settings.smtp_timeout_secs)));
        if !settings.smtp_username.is_empty() {
            builder = builder.credentials(Credentials::new(
                settings.smtp_username.clone(),
                settings.smtp_password.expose_secret().to_owned(),
            ));
        }
        Ok(Mailer::Smtp(builder.build()))
    }

    /// Where mail goes, for the start-up log.
    pub fn describe(&self, settings: &EmailSettings) -> String {
        match self {
            Mailer::Smtp(_) => format!("smtp {}:{}", settings.smtp_host, settings.smtp_port),
            Mailer::Files(_) => format!("files in {}", settings.outbox_dir.display()),
        }
    }

    async fn send(&self, message: Message) -> Result<(), JobError> {
        match self {
            Mailer::Smtp(smtp) => smtp.send(message).await.map(drop).map_err(|e| {
                if e.is_permanent() {
                    JobError::permanent(format!("SMTP refused the message: {e}"))
                } else {
                    JobError::retryable(format!("SMTP: {e}"))
                }
            }),
            Mailer::Files(files) => files
                .send(message)
                .await
                .map(drop)
                .map_err(|e| JobError::retryable(format!("writing the message file: {e}"))),
        }
    }
}

/// The `email-send` job: one message to one address.
///
/// A job that carries a sign-in secret does not hold it: `code_for` names the row whose code
/// the handler makes when it sends (storing only its hash), so job payloads — kept for a day,
/// shown in the admin dead-job listing — hold nothing that could take over an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendEmail {
    pub to: String,
    #[serde(flatten)]
    pub template: Template,
    #[serde(default, rename = "codeFor", skip_serializing_if = "Option::is_none")]
    pub code_for: Option<CodeFor>,
}

/// Whose single-use code a message carries, made when it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CodeFor {
    /// `emails.id`: the address to verify.
    EmailVerification(i64),
    /// `user_auth.id`: the password to reset.
    PasswordReset(i64),
}

pub struct SendEmailHandler {
    pub mailer: Mailer,
    pub from: Mailbox,
    pub ui_url: String,
    /// Where the codes of `code_for` are stored (hashed).
    pub pool: sqlx::PgPool,
}

impl SendEmailHandler {
    /// Makes a fresh code for `target` and stores its hash, replacing any earlier one (a retried
    /// job sends a new code; the old one stops working). `None` when there is nothing to send:
    /// the address was verified meanwhile, or the row is gone.
    async fn issue_code(&self, target: CodeFor) -> Result<Option<String>, sqlx::Error> {
        let code = crate::domain::secret::new_code();
        let hash = crate::domain::secret::sha256_hex(&code);
        let updated = match target {
            CodeFor::EmailVerification(email) => {
                sqlx::query(
                    "UPDATE emails SET verification_code_hash = $2, verification_code_at = now()
                  WHERE id = $1 AND verified_at IS NULL",
                )
                .bind(email)
                .bind(hash)
                .execute(&self.pool)
                .await?
            }
            CodeFor::PasswordReset(auth) => sqlx::query(
                "UPDATE user_auth SET reset_code_hash = $2, reset_code_at = now() WHERE id = $1",
            )
            .bind(auth)
            .bind(hash)
            .execute(&self.pool)
            .await?,
        };
        Ok((updated.rows_affected() == 1).then_some(code))
    }
}

impl JobHandler for SendEmailHandler {
    const KIND: &'static str = "email.send";
    const QUEUE: Queue = Queue::EmailSend;
    type Payload = SendEmail;

    async fn handle(&self, job: SendEmail, ctx: JobContext) -> Result<(), JobError> {
        let to: Mailbox = job.to.parse().map_err(|e| {
            JobError::permanent(format!("recipient {:?} is not an address: {e}", job.to))
        })?;
        let mut template = job.template;
        if let Some(target) = job.code_for {
            match self.issue_code(target).await.map_err(JobError::retryable)? {
                Some(code) => template.set_code(code),
                None => {
                    tracing::info!(job_id = %ctx.id, ?target, "nothing to send: the code is no longer needed");
                    return Ok(());
                }
            }
        }
        let rendered = templates::render(&template, &self.ui_url);
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(rendered.subject)
            // A fresh Message-ID (from the host name): mail without one is often marked as spam.
            .message_id(None)
            .multipart(MultiPart::alternative_plain_html(
                rendered.text,
                rendered.html,
            ))
            .map_err(JobError::permanent)?;
        self.mailer.send(message).await?;
        tracing::info!(job_id = %ctx.id, "email sent");
        Ok(())
    }
}
