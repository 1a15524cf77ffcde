//! Room actors with the in-process broker and plain outbound queues for members (no sockets):
//! ordering, recovery from dropped events, and supervision.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::access::{Access, Authorizer, Caller};
use crate::broker::local::LocalBroker;
use crate::broker::{BoxFut, BrokerSettings};
use crate::event::NewEvent;
use crate::hub::Hub;
use crate::key::RoomKey;
use crate::limits::WsLimits;
use crate::room::actor::PanicOnNextDelivery;
use crate::session::outbound::{self, Writer};

struct AllowAll;

impl Authorizer for AllowAll {
    fn can_join(&self, _: &Caller, _: &RoomKey) -> BoxFut<'static, Result<Access, String>> {
        Box::pin(async { Ok(Access::Allowed) })
    }
    fn session_valid(&self, _: &Caller) -> BoxFut<'static, Result<bool, String>> {
        Box::pin(async { Ok(true) })
    }
}

async fn hub(limits: WsLimits) -> Hub {
    let settings = BrokerSettings {
        history_max_events: 100,
        history_max_bytes: 1024 * 1024,
        history_max_age: Duration::from_secs(60),
        room_state_ttl: Duration::from_secs(60),
        presence_ttl: Duration::from_secs(30),
    };
    Hub::start(
        Arc::new(LocalBroker::new(1, settings)),
        Arc::new(AllowAll),
        limits,
    )
    .await
    .unwrap()
}

async fn join(hub: &Hub, room: &RoomKey, conn: u64) -> Writer {
    let (out, writer) = outbound::channel(1000, 16 * 1024 * 1024);
    hub.shared
        .rooms
        .join(
            &hub.shared,
            room,
            conn,
            format!("u{conn}"),
            out,
            json!("j"),
            None,
        )
        .await
        .unwrap();
    writer
}

fn event(room: &RoomKey, n: u64) -> NewEvent {
    NewEvent {
        id: n.to_string(),
        event_type: "test/event".into(),
        timestamp_ms: crate::broker::now_ms(),
        room: room.clone(),
        data: json!({"n": n}),
    }
}

async fn next(writer: &mut Writer) -> Value {
    serde_json::from_str(&writer.next_text().await.expect("a frame")).unwrap()
}

#[actix::test]
async fn members_get_the_ack_then_events_in_order() {
    let hub = hub(WsLimits::default()).await;
    let room = RoomKey::chat("1").unwrap();
    let mut a = join(&hub, &room, 1).await;
    let mut b = join(&hub, &room, 2).await;
    assert_eq!(next(&mut a).await["ack"], "j");
    assert_eq!(next(&mut b).await["ack"], "j");
    for n in 1..=50 {
        hub.publish(&event(&room, n)).await.unwrap();
    }
    for writer in [&mut a, &mut b] {
        for n in 1..=50u64 {
            let e = next(writer).await;
            assert_eq!(
                (e["offset"].as_u64(), e["data"]["n"].as_u64()),
                (Some(n), Some(n))
            );
        }
    }
}

#[actix::test]
async fn events_dropped_at_a_full_mailbox_are_refetched_in_order() {
    let limits = WsLimits {
        room_mailbox: 1,
        ..WsLimits::default()
    };
    let hub = hub(limits).await;
    let room = RoomKey::chat("2").unwrap();
    let mut a = join(&hub, &room, 1).await;
    next(&mut a).await;
    // Published faster than a one-slot mailbox takes them: some are dropped on the way (the
    // history holds 100).
    for n in 1..=90 {
        hub.publish(&event(&room, n)).await.unwrap();
    }
    for n in 1..=90u64 {
        assert_eq!(next(&mut a).await["offset"].as_u64(), Some(n));
    }
    assert!(a.next_text().await.is_none(), "nothing twice");
    assert!(
        hub.counters()
            .mailbox_drops
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
}

#[actix::test]
async fn a_room_that_panics_is_restarted_and_keeps_its_members() {
    let hub = hub(WsLimits::default()).await;
    let room = RoomKey::run("3").unwrap();
    let mut a = join(&hub, &room, 1).await;
    next(&mut a).await;
    hub.publish(&event(&room, 1)).await.unwrap();
    assert_eq!(next(&mut a).await["offset"], 1);

    let addr = hub.shared.rooms.addr(&room).unwrap();
    addr.send(PanicOnNextDelivery).await.unwrap();
    // This delivery panics; the restarted room refetches it from the history.
    hub.publish(&event(&room, 2)).await.unwrap();
    hub.publish(&event(&room, 3)).await.unwrap();
    assert_eq!(next(&mut a).await["offset"], 2);
    assert_eq!(next(&mut a).await["offset"], 3);
    assert_eq!(
        hub.counters()
            .room_restarts
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert!(addr.connected(), "same mailbox after the restart");
}
