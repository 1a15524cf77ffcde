//! Web Push: subscriptions (`push_devices`) and the `push-notification` job that sends one notice
//! to one browser.
//!
//! ```text
//! notice (create_in, settings.by_push) ─▶ one push-notification job per device, in its tx
//! job ─▶ payload JSON {title, body, link} encrypted for the device (RFC 8291 aes128gcm,
//!        web-push-native) ─▶ POST endpoint with TTL and `Authorization: vapid t=<ES256 JWT>,
//!        k=<public key>` (RFC 8292, signed with jsonwebtoken) ─▶ 2xx done · 404/410 device
//!        deleted · 429/5xx/network retried · other 4xx dead
//! ```
//!
//! The endpoint is a URL the subscriber chose: its host is checked when it is subscribed and
//! again, pinned, when a notice is sent (`crate::egress`), so a name re-pointed at the server's
//! network afterwards is never dialled (its job dies; the device stays, so 404/410 from a
//! private address cannot tell a subscriber which ports answer).

use crate::errors::{Code, ErrorCode, Told};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use web_push_native::p256;
use web_push_native::p256::pkcs8::EncodePrivateKey;

use crate::config::PushSettings;
use crate::egress::Egress;
use crate::ids::{PushDeviceId, UserId};
use crate::jobs::{JobContext, JobError, JobHandler, Queue};

/// A subscribed browser, as its owner sees it (the keys stay on the server).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushDevice {
    pub id: PushDeviceId,
    pub endpoint: String,
    pub name: Option<String>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// The server's VAPID identity.
pub struct Vapid {
    key: jsonwebtoken::EncodingKey,
    /// The uncompressed public key, base64url: what browsers subscribe with.
    pub public_key: String,
    subject: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("push.vapid_private_key is not a base64url P-256 private key")]
    BadKey,
    #[error("the subscription's keys are not a P-256 point and a 16-byte secret")]
    BadSubscription,
}

impl Vapid {
    /// `None` when push is off (no key configured).
    pub fn from_settings(settings: &PushSettings) -> Result<Option<Self>, PushError> {
        if !settings.enabled() {
            return Ok(None);
        }
        let raw = URL_SAFE_NO_PAD
            .decode(settings.vapid_private_key.expose_secret().trim())
            .map_err(|_| PushError::BadKey)?;
        let secret = p256::SecretKey::from_slice(&raw).map_err(|_| PushError::BadKey)?;
        let der = secret.to_pkcs8_der().map_err(|_| PushError::BadKey)?;
        let public = secret.public_key().to_sec1_bytes();
        Ok(Some(Self {
            key: jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes()),
            public_key: URL_SAFE_NO_PAD.encode(public),
            subject: settings.vapid_subject.clone(),
        }))
    }

    /// `vapid t=…, k=…` for a request to `endpoint` (the JWT's audience is its origin).
    fn authorization(&self, endpoint: &reqwest::Url, ttl: Duration) -> Result<String, JobError> {
        #[derive(Serialize)]
        struct Claims<'a> {
            aud: String,
            exp: i64,
            sub: &'a str,
        }
        let aud = endpoint.origin().ascii_serialization();
        // At most 24 hours ahead (RFC 8292); the notice's TTL, capped, is plenty.
        let exp = Utc::now().timestamp() + ttl.as_secs().clamp(60, 12 * 3600) as i64;
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
            &Claims {
                aud,
                exp,
                sub: &self.subject,
            },
            &self.key,
        )
        .map_err(JobError::permanent)?;
        Ok(format!("vapid t={token}, k={}", self.public_key))
    }
}

/// Checks a subscription's keys as a browser sends them (base64url).
pub fn check_keys(p256dh: &str, auth: &str) -> Result<(), PushError> {
    keys(p256dh, auth).map(drop)
}

fn keys(p256dh: &str, auth: &str) -> Result<(p256::PublicKey, web_push_native::Auth), PushError> {
    let decode = |s: &str| {
        URL_SAFE_NO_PAD
            .decode(s.trim_end_matches('='))
            .map_err(|_| PushError::BadSubscription)
    };
    let public = p256::PublicKey::from_sec1_bytes(&decode(p256dh)?)
        .map_err(|_| PushError::BadSubscription)?;
    let auth: [u8; 16] = decode(auth)?
        .try_into()
        .map_err(|_| PushError::BadSubscription)?;
    Ok((public, auth.into()))
}

/// One notice for one device.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushPayload {
    pub device_id: String,
    pub title: String,
    pub body: Option<String>,
    pub link: Option<String>,
}

/// `push-notification`: encrypts and sends one notice.
pub struct SendPush {
    pub pool: PgPool,
    /// A client from `egress` (its resolver refuses private addresses and pins the rest).
    pub http: reqwest::Client,
    pub egress: Egress,
    pub vapid: Option<Arc<Vapid>>,
    pub ttl: Duration,
}

impl JobHandler for SendPush {
    const KIND: &'static str = "push-notification";
    const QUEUE: Queue = Queue::PushNotification;
    type Payload = PushPayload;

    async fn handle(&self, p: PushPayload, _: JobContext) -> Result<(), JobError> {
        let Some(vapid) = &self.vapid else {
            return Err(JobError::permanent("push is not configured on this node"));
        };
        let device: i64 = p.device_id.parse().map_err(JobError::permanent)?;
        let row: Option<(String, String, String)> =
            sqlx::query_as("SELECT endpoint, p256dh, auth FROM push_devices WHERE id = $1")
                .bind(device)
                .fetch_optional(&self.pool)
                .await
                .map_err(JobError::retryable)?;
        // Unsubscribed meanwhile: nothing to send.
        let Some((endpoint, p256dh, auth)) = row else {
            return Ok(());
        };
        let (public, auth) = keys(&p256dh, &auth).map_err(JobError::permanent)?;
        let url = reqwest::Url::parse(&endpoint).map_err(JobError::permanent)?;
        self.egress
            .check_literal(&url)
            .map_err(|r| JobError::permanent(format!("endpoint refused: {r}")))?;
        let body = serde_json::to_vec(&serde_json::json!({
            "title": p.title, "body": p.body, "link": p.link,
        }))
        .map_err(JobError::permanent)?;
        let request = web_push_native::WebPushBuilder::new(
            endpoint.parse().map_err(JobError::permanent)?,
            public,
            auth,
        )
        .with_valid_duration(self.ttl)
        .build(body)
        .map_err(|e| JobError::permanent(e.to_string()))?;
        let mut outgoing = self
            .http
            .post(url.clone())
            .header("Authorization", vapid.authorization(&url, self.ttl)?);
        for (name, value) in request.headers() {
            outgoing = outgoing.header(name.as_str(), value.as_bytes());
        }
        let response = outgoing
            .body(request.into_body())
            .send()
            .await
            .map_err(|e| match crate::egress::refused(&e) {
                Some(r) if r.is_private() => JobError::permanent(format!("endpoint refused: {r}")),
                _ => JobError::retryable(e),
            })?;
        let status = response.status();
        if status.is_success() {
            sqlx::query("UPDATE push_devices SET last_used_at = now() WHERE id = $1")
                .bind(device)
                .execute(&self.pool)
                .await
                .map_err(JobError::retryable)?;
            return Ok(());
        }
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
            // The browser unsubscribed or the subscription expired: forget it.
            sqlx::query("DELETE FROM push_devices WHERE id = $1")
                .bind(device)
                .execute(&self.pool)
                .await
                .map_err(JobError::retryable)?;
            tracing::info!(device, %status, "push subscription gone; device removed");
            return Ok(());
        }
        let reason = format!("push service answered {status}");
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Err(JobError::retryable(reason))
        } else {
            Err(JobError::permanent(reason))
        }
    }
}

/// Subscriptions: add (or refresh), list, remove. The HTTP side checks the input.
#[derive(Clone)]
pub struct PushDevices {
    pool: PgPool,
    ids: Arc<crate::ids::Snowflake>,
    pub vapid: Option<Arc<Vapid>>,
    max_per_user: i64,
    /// `push.allow_insecure_endpoints`: http and private addresses too (tests).
    pub allow_insecure: bool,
    /// Resolves an endpoint's host when it is subscribed (private addresses refused).
    pub egress: Egress,
}

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("too many push devices")]
    TooMany,
    #[error("no such push device")]
    NotFound,
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

impl ErrorCode for DeviceError {
    fn told(&self) -> Told {
        match self {
            DeviceError::TooMany => Told::of(
                Code::TooManyPushDevices,
                "Too many browsers subscribed; remove one first",
            ),
            DeviceError::NotFound => {
                Told::of(Code::PushDeviceNotFound, "No such push device of yours")
            }
            DeviceError::Sql(e) => e.told(),
        }
    }
}

impl PushDevices {
    pub fn new(
        pool: PgPool,
        ids: Arc<crate::ids::Snowflake>,
        vapid: Option<Arc<Vapid>>,
        settings: &PushSettings,
        egress: Egress,
    ) -> Self {
        Self {
            pool,
            ids,
            vapid,
            max_per_user: settings.max_devices_per_user,
            allow_insecure: settings.allow_insecure_endpoints,
            egress,
        }
    }

    /// Subscribes `endpoint` for `user` (the same endpoint again refreshes its keys).
    pub async fn subscribe(
        &self,
        user: UserId,
        endpoint: &str,
        p256dh: &str,
        auth: &str,
        name: Option<&str>,
    ) -> Result<PushDevice, DeviceError> {
        let mut tx = self.pool.begin().await?;
        // One user's subscriptions in order: the count below cannot be passed by two at once.
        sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
            .bind(user)
            .execute(&mut *tx)
            .await?;
        let (count, existing): (i64, bool) = sqlx::query_as(
            "SELECT count(*), bool_or(endpoint = $2) IS TRUE FROM push_devices WHERE user_id = $1",
        )
        .bind(user)
        .bind(endpoint)
        .fetch_one(&mut *tx)
        .await?;
        if !existing && count >= self.max_per_user {
            return Err(DeviceError::TooMany);
        }
        let device: PushDevice = sqlx::query_as(
            "INSERT INTO push_devices (id, user_id, endpoint, p256dh, auth, name)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (user_id, endpoint) DO UPDATE
                SET p256dh = $4, auth = $5, name = COALESCE($6, push_devices.name)
             RETURNING id, endpoint, name, last_used_at, created_at",
        )
        .bind(self.ids.next_id())
        .bind(user)
        .bind(endpoint)
        .bind(p256dh)
        .bind(auth)
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(device)
    }

    pub async fn list(&self, user: UserId) -> Result<Vec<PushDevice>, sqlx::Error> {
        sqlx::query_as(
            "SELECT id, endpoint, name, last_used_at, created_at FROM push_devices
              WHERE user_id = $1 ORDER BY id",
        )
        .bind(user)
        .fetch_all(&self.pool)
        .await
    }

    pub async fn remove(&self, user: UserId, device: PushDeviceId) -> Result<(), DeviceError> {
        let gone = sqlx::query("DELETE FROM push_devices WHERE id = $1 AND user_id = $2")
            .bind(device)
            .bind(user)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if gone == 1 {
            Ok(())
        } else {
            Err(DeviceError::NotFound)
        }
    }
}
