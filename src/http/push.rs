//! Web Push subscriptions of the caller (`notifications::push`):
//! - `POST /pushDevice {endpoint, keys: {p256dh, auth}, name?}` (what the browser's
//!   `PushSubscription.toJSON()` gives; the same endpoint again refreshes its keys);
//! - `GET /pushDevices` (theirs, with the server's VAPID public key to subscribe with);
//! - `DELETE /pushDevice/{id}`.
//!
//! With no VAPID key (none configured, and `push.generate_vapid_key` off) subscribing answers
//! 503 `PushNotConfigured`.

use actix_web::{HttpResponse, delete, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::errors::Code;
use crate::http::auth::session::{ReadPrivate, Require, WritePrivate};
use crate::http::bodies::Deleted;
use crate::http::error::ApiError;
use crate::http::path::Id;
use crate::http::reply::{Envelope, ok};
use crate::ids::PushDeviceId;
use crate::notifications::push::{PushDevice, PushDevices, check_keys};
use crate::state::AppState;

/// The longest endpoint accepted (push services' URLs are a few hundred bytes).
const MAX_ENDPOINT_BYTES: usize = 2048;

pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(subscribe).service(list).service(unsubscribe);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionKeys {
    /// The browser's P-256 public key, base64url.
    p256dh: String,
    /// The browser's 16-byte authentication secret, base64url.
    auth: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Subscribe {
    /// The push service's URL for this browser (https).
    endpoint: String,
    keys: SubscriptionKeys,
    /// What to call this browser, at most 128 characters.
    #[schema(max_length = 128)]
    name: Option<String>,
    /// Sent by browsers as part of `toJSON()`; ignored.
    #[serde(default, rename = "expirationTime")]
    #[schema(value_type = Option<i64>)]
    _expiration_time: Option<serde_json::Value>,
}

fn invalid(message: &'static str) -> ApiError {
    ApiError::of(Code::InvalidPushSubscription, message)
}

/// An endpoint the server may post to: https on a public host (or anything, in tests).
async fn check_endpoint(endpoint: &str, push: &PushDevices) -> Result<(), ApiError> {
    let allow_insecure = push.allow_insecure;
    let url = reqwest::Url::parse(endpoint)
        .ok()
        .filter(|_| endpoint.len() <= MAX_ENDPOINT_BYTES)
        .ok_or_else(|| invalid("endpoint is not a URL"))?;
    if allow_insecure {
        return matches!(url.scheme(), "http" | "https")
            .then_some(())
            .ok_or_else(|| invalid("endpoint is not an http(s) URL"));
    }
    if url.scheme() != "https" {
        return Err(invalid("endpoint must be https"));
    }
    let localhost = url
        .host_str()
        .is_some_and(|h| h == "localhost" || h.ends_with(".localhost"));
    // A literal, or the name resolved now. A name that does not resolve now is taken (push
    // services' names do; a resolver failing for a while is no fault of the subscriber): the
    // push job resolves it again, checks and pins what it dials.
    match push.egress.check(&url).await {
        Err(refused) if refused.is_private() => Err(invalid("endpoint names a private address")),
        _ if localhost => Err(invalid("endpoint names a private address")),
        _ => Ok(()),
    }
}

/// Subscribes one of the caller's browsers to notices (its `PushSubscription`).
#[utoipa::path(
    tag = "notifications",
    request_body = Subscribe,
    responses((status = 200, description = "The device", body = Envelope<PushDevice>)),
)]
#[post("/pushDevice")]
pub async fn subscribe(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    body: web::Json<Subscribe>,
) -> Result<HttpResponse, ApiError> {
    if state.people.push.vapid.is_none() {
        return Err(ApiError::of(
            Code::PushNotConfigured,
            "Web Push is not configured on this server",
        ));
    }
    let body = body.into_inner();
    check_endpoint(&body.endpoint, &state.people.push).await?;
    check_keys(&body.keys.p256dh, &body.keys.auth)
        .map_err(|_| invalid("keys are not a P-256 public key and a 16-byte auth secret"))?;
    if body.name.as_ref().is_some_and(|n| n.chars().count() > 128) {
        return Err(invalid("name is at most 128 characters"));
    }
    let device = state
        .people
        .push
        .subscribe(
            caller.user,
            &body.endpoint,
            &body.keys.p256dh,
            &body.keys.auth,
            body.name.as_deref(),
        )
        .await?;
    Ok(ok(device))
}

/// `GET /pushDevices`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Devices {
    /// The key browsers subscribe with (`applicationServerKey`); null when push is off.
    vapid_public_key: Option<String>,
    devices: Vec<PushDevice>,
}

/// The caller's subscribed browsers.
#[utoipa::path(
    tag = "notifications",
    responses((status = 200, description = "The devices", body = Envelope<Devices>)),
)]
#[get("/pushDevices")]
pub async fn list(
    caller: Require<ReadPrivate>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(Devices {
        vapid_public_key: state
            .people
            .push
            .vapid
            .as_ref()
            .map(|v| v.public_key.clone()),
        devices: state.people.push.list(caller.user).await?,
    }))
}

/// Unsubscribes one of the caller's browsers.
#[utoipa::path(
    tag = "notifications",
    params(("id" = PushDeviceId, Path, description = "The device's id")),
    responses((status = 200, description = "Removed", body = Envelope<Deleted<PushDeviceId>>)),
)]
#[delete("/pushDevice/{id}")]
pub async fn unsubscribe(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    Id(device): Id<PushDeviceId>,
) -> Result<HttpResponse, ApiError> {
    state.people.push.remove(caller.user, device).await?;
    Ok(ok(Deleted::new(device)))
}
