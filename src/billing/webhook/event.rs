//! A Stripe event as read from the body (only its id, type and object), the helpers that read
//! fields of that object, and the buyer it names. Used by every kind's handler.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use sqlx::PgConnection;

use crate::billing::Billing;
use crate::ids::UserId;

#[derive(Deserialize)]
pub(super) struct Event {
    pub(super) id: String,
    #[serde(rename = "type")]
    pub(super) event_type: String,
    pub(super) data: EventData,
}

#[derive(Deserialize)]
pub(super) struct EventData {
    pub(super) object: Value,
}

pub(super) fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

pub(super) fn time(value: &Value, key: &str) -> Option<DateTime<Utc>> {
    value
        .get(key)
        .and_then(Value::as_i64)
        .and_then(|s| DateTime::from_timestamp(s, 0))
}

impl Billing {
    /// The buyer a session or subscription names: `metadata.userId`, else
    /// `client_reference_id`, else the user whose customer it is — if that user exists.
    pub(super) async fn buyer(
        &self,
        tx: &mut PgConnection,
        object: &Value,
    ) -> Result<Option<UserId>, sqlx::Error> {
        let named = object
            .get("metadata")
            .and_then(|m| text(m, "userId"))
            .or_else(|| text(object, "client_reference_id"))
            .and_then(|id| id.parse::<i64>().ok());
        sqlx::query_scalar(
            "SELECT id FROM users
              WHERE ($1::BIGINT IS NOT NULL AND id = $1)
                 OR ($1::BIGINT IS NULL AND stripe_customer_id = $2)
              LIMIT 1",
        )
        .bind(named)
        .bind(text(object, "customer"))
        .fetch_optional(&mut *tx)
        .await
    }
}
