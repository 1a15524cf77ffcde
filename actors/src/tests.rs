//! Room actors with the in-process broker and plain outbound queues for members (no sockets):
//! ordering, recovery from dropped events, and supervision.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::access::{Access, Authorizer, Caller};
use crate::broker::local::LocalBroker;
use crate::broker::{
    BoxFut, Broker, BrokerError, BrokerSettings, History, Inbox, NodeMessage, NodeTarget, RoomHead,
};
use crate::event::NewEvent;
use crate::hub::Hub;
use crate::key::RoomKey;
use crate::limits::WsLimits;
use crate::outbound::testing::{Peer, pair};
use crate::protocol::Resume;
use crate::room::actor::PanicOnNextDelivery;

struct AllowAll;

impl Authorizer for AllowAll {
    fn can_join(&self, _: &Caller, _: &RoomKey) -> BoxFut<'static, Result<Access, String>> {
        Box::pin(async { Ok(Access::Allowed) })
    }
    fn session_valid(&self, _: &Caller) -> BoxFut<'static, Result<bool, String>> {
        Box::pin(async { Ok(true) })
    }
}

fn settings() -> BrokerSettings {
    BrokerSettings {
        history_max_events: 100,
        history_max_bytes: 1024 * 1024,
        history_max_age: Duration::from_secs(60),
        room_state_ttl: Duration::from_secs(60),
        presence_ttl: Duration::from_secs(30),
    }
}

async fn hub(limits: WsLimits) -> Hub {
    hub_on(Arc::new(LocalBroker::new(1, settings())), limits).await
}

async fn hub_on(broker: Arc<dyn Broker>, limits: WsLimits) -> Hub {
    Hub::start(broker, Arc::new(AllowAll), limits)
        .await
        .unwrap()
}

/// The in-process broker, except that reading a room's presence waits while `held` is true:
/// a join that fetches slowly, as when Redis is slow.
struct SlowPresence {
    inner: LocalBroker,
    held: tokio::sync::watch::Receiver<bool>,
}

impl Broker for SlowPresence {
    fn node_id(&self) -> u16 {
        self.inner.node_id()
    }
    fn start(&self, inbox: Arc<dyn Inbox>) -> BoxFut<'_, Result<(), BrokerError>> {
        self.inner.start(inbox)
    }
    fn publish<'a>(&'a self, event: &'a NewEvent) -> BoxFut<'a, Result<RoomHead, BrokerError>> {
        self.inner.publish(event)
    }
    fn publish_volatile<'a>(&'a self, event: &'a NewEvent) -> BoxFut<'a, Result<(), BrokerError>> {
        self.inner.publish_volatile(event)
    }
    fn skip<'a>(&'a self, room: &'a RoomKey) -> BoxFut<'a, Result<RoomHead, BrokerError>> {
        self.inner.skip(room)
    }
    fn subscribe<'a>(&'a self, room: &'a RoomKey) -> BoxFut<'a, Result<RoomHead, BrokerError>> {
        self.inner.subscribe(room)
    }
    fn unsubscribe<'a>(&'a self, room: &'a RoomKey) -> BoxFut<'a, Result<(), BrokerError>> {
        self.inner.unsubscribe(room)
    }
    fn history<'a>(
        &'a self,
        room: &'a RoomKey,
        after: u64,
    ) -> BoxFut<'a, Result<History, BrokerError>> {
        self.inner.history(room, after)
    }
    fn send<'a>(
        &'a self,
        to: NodeTarget,
        message: &'a NodeMessage,
    ) -> BoxFut<'a, Result<(), BrokerError>> {
        self.inner.send(to, message)
    }
    fn set_presence<'a>(
        &'a self,
        room: &'a RoomKey,
        user: crate::ids::UserId,
        present: bool,
    ) -> BoxFut<'a, Result<(), BrokerError>> {
        self.inner.set_presence(room, user, present)
    }
    fn refresh_presence(
        &self,
        entries: Vec<(RoomKey, crate::ids::UserId)>,
    ) -> BoxFut<'_, Result<(), BrokerError>> {
        self.inner.refresh_presence(entries)
    }
    fn presence<'a>(
        &'a self,
        room: &'a RoomKey,
    ) -> BoxFut<'a, Result<Vec<crate::ids::UserId>, BrokerError>> {
        let mut held = self.held.clone();
        Box::pin(async move {
            let _ = held.wait_for(|held| !held).await;
            self.inner.presence(room).await
        })
    }
    fn stop(&self) -> BoxFut<'_, ()> {
        self.inner.stop()
    }
    fn is_connected(&self) -> bool {
        self.inner.is_connected()
    }
}

async fn join(hub: &Hub, room: &RoomKey, conn: u64) -> Peer {
    join_from(hub, room, conn, None).await
}

async fn join_from(hub: &Hub, room: &RoomKey, conn: u64, resume: Option<Resume>) -> Peer {
    let (out, writer) = pair(1000, 16 * 1024 * 1024).await;
    hub.node
        .rooms
        .join(
            room,
            conn,
            crate::ids::UserId(conn as i64),
            out,
            json!("j"),
            resume,
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

async fn next(writer: &mut Peer) -> Value {
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

    let addr = hub.node.rooms.addr(&room).unwrap();
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

#[actix::test]
async fn a_slow_join_holds_up_neither_the_room_nor_its_own_order() {
    let (hold, held) = tokio::sync::watch::channel(false);
    let broker = SlowPresence {
        inner: LocalBroker::new(1, settings()),
        held,
    };
    let hub = hub_on(Arc::new(broker), WsLimits::default()).await;
    let room = RoomKey::chat("4").unwrap();
    let mut a = join(&hub, &room, 1).await;
    next(&mut a).await;
    hub.publish(&event(&room, 1)).await.unwrap();
    let head = hub.publish(&event(&room, 2)).await.unwrap();
    assert_eq!(next(&mut a).await["offset"], 1);
    assert_eq!(next(&mut a).await["offset"], 2);

    // B resumes from the start while its fetch is held up.
    hold.send(true).unwrap();
    let resume = Resume {
        offset: 0,
        epoch: head.epoch.to_string(),
    };
    let mut b = join_from(&hub, &room, 2, Some(resume)).await;
    hub.publish(&event(&room, 3)).await.unwrap();
    hub.publish(&event(&room, 4)).await.unwrap();
    // A is served while B waits (a room frozen by B's join would not send these).
    for n in [3, 4] {
        let e = tokio::time::timeout(Duration::from_secs(2), next(&mut a))
            .await
            .expect("the room is not held up by a join");
        assert_eq!(e["offset"], n);
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(100), b.next_text())
            .await
            .is_err(),
        "nothing reaches B before its ack"
    );

    hold.send(false).unwrap();
    let ack = next(&mut b).await;
    assert_eq!(ack["ack"], "j");
    assert_eq!(ack["data"]["recovered"], true);
    // The history was read after 3 and 4 were published: B's recovery reaches 4.
    assert_eq!(ack["data"]["offset"], 4, "the last event of the recovery");
    for n in 1..=4u64 {
        assert_eq!(
            next(&mut b).await["offset"].as_u64(),
            Some(n),
            "missed, then held"
        );
    }
    hub.publish(&event(&room, 5)).await.unwrap();
    assert_eq!(
        next(&mut b).await["offset"],
        5,
        "live after that, nothing twice"
    );
}

/// A run driver that loops until stopped or paused and reports how it ended.
struct LoopDriver {
    renew: std::sync::atomic::AtomicBool,
    ended: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<&'static str>>>,
}

impl LoopDriver {
    fn new() -> (Arc<Self>, tokio::sync::oneshot::Receiver<&'static str>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let driver = Arc::new(Self {
            renew: std::sync::atomic::AtomicBool::new(true),
            ended: std::sync::Mutex::new(Some(tx)),
        });
        (driver, rx)
    }
}

impl crate::run::RunDriver for LoopDriver {
    fn run(self: Arc<Self>, control: crate::run::RunControl) -> BoxFut<'static, ()> {
        Box::pin(async move {
            let how = loop {
                if let Some(reason) = control.stopped() {
                    break match reason {
                        crate::run::StopReason::Cancelled => "cancelled",
                        crate::run::StopReason::Fenced => "fenced",
                        crate::run::StopReason::Shutdown => "shutdown",
                    };
                }
                if control.pause_requested() {
                    break "paused";
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(5)) => {}
                    _ = control.token().cancelled() => {}
                }
            };
            if let Some(tx) = self.ended.lock().unwrap().take() {
                let _ = tx.send(how);
            }
        })
    }

    fn renew(self: Arc<Self>) -> BoxFut<'static, Result<bool, String>> {
        Box::pin(async move { Ok(self.renew.load(std::sync::atomic::Ordering::SeqCst)) })
    }
}

#[actix::test]
async fn run_commands_reach_the_owner_and_a_lost_lease_stops_the_run() {
    use crate::ids::RunId;
    use crate::run::{CommandOutcome, RunCommand};
    let hub = hub(WsLimits::default()).await;
    let node = hub.node_id();
    let every = Duration::from_millis(20);

    let (driver, ended) = LoopDriver::new();
    assert!(hub.start_run(RunId(1), driver.clone(), every));
    assert!(!hub.start_run(RunId(1), driver, every), "one actor per run");
    let outcome = hub
        .command_run(node, RunId(1), RunCommand::Cancel)
        .await
        .unwrap();
    assert_eq!(outcome, CommandOutcome::Delivered);
    assert_eq!(ended.await.unwrap(), "cancelled");

    let (driver, ended) = LoopDriver::new();
    hub.start_run(RunId(2), driver, every);
    hub.command_run(node, RunId(2), RunCommand::Pause)
        .await
        .unwrap();
    assert_eq!(ended.await.unwrap(), "paused");

    let (driver, ended) = LoopDriver::new();
    hub.start_run(RunId(3), driver.clone(), every);
    driver
        .renew
        .store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(ended.await.unwrap(), "fenced");

    // An ended run's actor is gone: commands find nothing.
    tokio::time::timeout(Duration::from_secs(2), async {
        while hub.runs_here() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("ended runs leave the registry");
    let outcome = hub
        .command_run(node, RunId(1), RunCommand::Cancel)
        .await
        .unwrap();
    assert_eq!(outcome, CommandOutcome::NotRunning);
}
