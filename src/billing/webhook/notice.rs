//! `user/credits/updated` for a buyer whose balance a payment changed: an outbox row in the
//! payment's transaction, and the room to kick after the commit. Used by checkouts and by the
//! premium plans' monthly grant (`premium.rs`).

use chrono::Utc;
use serde_json::json;
use sqlx::PgConnection;
use vrooli_actors::{NewEvent, RoomKey};

use crate::billing::Billing;
use crate::ids::{TeamId, UserId};

impl Billing {
    /// `user/credits/updated` for the buyer, in the transaction; its room, to kick after.
    pub(in crate::billing) async fn credits_event(
        &self,
        tx: &mut PgConnection,
        user: UserId,
        team: Option<TeamId>,
        balance: i64,
    ) -> Result<RoomKey, sqlx::Error> {
        let room = RoomKey::user(&user.to_string()).expect("numeric id");
        let data = match team {
            Some(team) => json!({"balance": balance.to_string(), "teamId": team}),
            None => json!({"balance": balance.to_string()}),
        };
        let event = NewEvent {
            id: self.ids.next_id().to_string(),
            event_type: "user/credits/updated".into(),
            timestamp_ms: Utc::now().timestamp_millis(),
            room: room.clone(),
            data,
        };
        crate::outbox::Outbox::add_in(tx, &event).await?;
        Ok(room)
    }
}
