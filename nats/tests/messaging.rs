//! The messaging core against a real nats-server: outbox recovery, inbox dedup, DLQ.

use async_nats::jetstream;
use contracts::events::SeatSold;
use contracts::{Message, ReservationId, SeatEvent, SeatId};
use platform::consumer::{self, Delivery, Handler, Outcome};
use platform::db::Db;
use platform::harness::NatsServer;
use platform::outbox::{self, Outbox};
use platform::topology::{ConsumerSpec, ensure_streams};
use platform::{inbox, to_millis};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

struct Setup {
    _server: NatsServer,
    _dir: tempfile::TempDir,
    js: jetstream::Context,
    db_url: String,
}

async fn setup() -> Setup {
    let server = NatsServer::start().expect("start nats-server");
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = jetstream::new(client);
    ensure_streams(&js, 1).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("svc.db").display());
    Setup {
        _server: server,
        _dir: dir,
        js,
        db_url,
    }
}

fn sold_event() -> Message {
    let event = SeatEvent::Sold(SeatSold {
        reservation_id: ReservationId::new(),
        seat_ids: vec![SeatId::new()],
    });
    Message::new("test", &event, None, OffsetDateTime::now_utc())
}

async fn stream_len(js: &jetstream::Context, stream: &str) -> u64 {
    platform::harness::stream_messages(js, stream)
        .await
        .unwrap()
}

async fn eventually<F: AsyncFn() -> bool>(what: &str, check: F) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_event_committed_before_a_crash_is_published_once_after_restart() {
    let s = setup().await;
    // The first process commits two events and dies before its relay runs.
    {
        let db = Db::connect(&s.db_url).await.unwrap();
        db.ensure_messaging_tables().await.unwrap();
        let mut tx = db.begin().await.unwrap();
        let now = to_millis(OffsetDateTime::now_utc());
        outbox::enqueue(&mut tx, &sold_event(), now).await.unwrap();
        outbox::enqueue(&mut tx, &sold_event(), now).await.unwrap();
        tx.commit().await.unwrap();
        // And a second one published but crashed before marking its rows published.
        let relay = Outbox::new(db.clone());
        let pending = relay.pending(10).await.unwrap();
        assert_eq!(relay.publish(&s.js, &pending).await.len(), 2);
    }
    assert_eq!(stream_len(&s.js, "SEAT").await, 2);

    // The restarted process's relay publishes the rows again; the broker drops the copies.
    let db = Db::connect(&s.db_url).await.unwrap();
    let relay = Outbox::new(db);
    assert_eq!(relay.relay_once(&s.js).await.unwrap(), 2);
    assert_eq!(
        relay.relay_once(&s.js).await.unwrap(),
        0,
        "nothing left pending"
    );
    assert_eq!(stream_len(&s.js, "SEAT").await, 2, "each event stored once");
}

#[tokio::test]
async fn the_relay_publishes_a_committed_event_when_woken() {
    let s = setup().await;
    let db = Db::connect(&s.db_url).await.unwrap();
    db.ensure_messaging_tables().await.unwrap();
    let relay = Outbox::new(db.clone());
    let stop = CancellationToken::new();
    let task = tokio::spawn(relay.clone().run(s.js.clone(), stop.clone()));

    let mut tx = db.begin().await.unwrap();
    outbox::enqueue(&mut tx, &sold_event(), 0).await.unwrap();
    tx.commit().await.unwrap();
    relay.wake();
    eventually("the event in the stream", async || {
        stream_len(&s.js, "SEAT").await == 1
    })
    .await;
    stop.cancel();
    task.await.unwrap();
}

/// Counts applied events in the database; pretends the first ack of each message was lost.
struct CountingHandler {
    db: Db,
    seen: Mutex<Vec<i64>>,
}

impl Handler<SeatEvent> for CountingHandler {
    async fn handle(&self, batch: Vec<Delivery<SeatEvent>>) -> anyhow::Result<Vec<Outcome>> {
        let mut tx = self.db.begin().await?;
        for d in &batch {
            if inbox::first_delivery(&mut tx, "test", d.envelope.id, 0).await? {
                sqlx::query("UPDATE applied SET n = n + 1")
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        let mut seen = self.seen.lock().unwrap();
        Ok(batch
            .iter()
            .map(|d| {
                seen.push(d.delivered);
                if d.delivered == 1 {
                    Outcome::Retry {
                        after: Duration::from_millis(10),
                        reason: "simulated lost ack".into(),
                    }
                } else {
                    Outcome::Done
                }
            })
            .collect())
    }
}

/// A database with an `applied` counter and a consumer of `seat.sold` counting into it.
async fn counting_consumer(
    s: &Setup,
) -> (
    Db,
    Arc<CountingHandler>,
    CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let db = Db::connect(&s.db_url).await.unwrap();
    db.ensure_messaging_tables().await.unwrap();
    sqlx::query("CREATE TABLE applied (n BIGINT NOT NULL)")
        .execute(db.pool())
        .await
        .unwrap();
    sqlx::query("INSERT INTO applied (n) VALUES (0)")
        .execute(db.pool())
        .await
        .unwrap();
    let handler = Arc::new(CountingHandler {
        db: db.clone(),
        seen: Mutex::new(Vec::new()),
    });
    let stop = CancellationToken::new();
    let spec = ConsumerSpec::new("test", contracts::Context::Seat, &["sold"], 1);
    let task = tokio::spawn(consumer::run::<SeatEvent, _>(
        s.js.clone(),
        "test".into(),
        spec,
        handler.clone(),
        stop.clone(),
    ));
    (db, handler, stop, task)
}

#[tokio::test]
async fn a_redelivered_event_changes_nothing() {
    let s = setup().await;
    let (db, handler, stop, task) = counting_consumer(&s).await;
    let relay = Outbox::new(db.clone());
    let mut tx = db.begin().await.unwrap();
    outbox::enqueue(&mut tx, &sold_event(), 0).await.unwrap();
    tx.commit().await.unwrap();
    relay.relay_once(&s.js).await.unwrap();

    eventually("the redelivery", async || {
        handler.seen.lock().unwrap().contains(&2)
    })
    .await;
    let n: i64 = sqlx::query_scalar("SELECT n FROM applied")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(n, 1, "applied once although delivered twice");
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn an_undecodable_event_goes_to_the_dlq_with_its_reason() {
    let s = setup().await;
    let (_db, handler, stop, task) = counting_consumer(&s).await;

    s.js.publish("seat.sold.not-an-envelope", "garbage".into())
        .await
        .unwrap()
        .await
        .unwrap();
    eventually("the DLQ entry", async || {
        stream_len(&s.js, "DLQ").await == 1
    })
    .await;
    let entry =
        s.js.get_stream("DLQ")
            .await
            .unwrap()
            .get_last_raw_message_by_subject("dlq.test.seat.sold.not-an-envelope")
            .await
            .unwrap();
    let headers = entry.headers;
    assert!(
        headers
            .get(consumer::dlq_header::REASON)
            .unwrap()
            .as_str()
            .contains("no headers"),
        "{headers:?}"
    );
    assert_eq!(entry.payload.as_ref(), b"garbage");
    assert!(
        handler.seen.lock().unwrap().is_empty(),
        "never handed to the handler"
    );
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn two_relays_on_one_database_publish_each_event_once_and_in_order() {
    let s = setup().await;
    let db = Db::connect(&s.db_url).await.unwrap();
    db.ensure_messaging_tables().await.unwrap();
    let stop = CancellationToken::new();
    let relays: Vec<_> = (0..2)
        .map(|_| {
            let relay = Outbox::new(db.clone());
            tokio::spawn(relay.run(s.js.clone(), stop.clone()))
        })
        .collect();
    let mut ids = Vec::new();
    for _ in 0..30 {
        let mut tx = db.begin().await.unwrap();
        for _ in 0..10 {
            let msg = sold_event();
            ids.push(msg.id.to_string());
            outbox::enqueue(&mut tx, &msg, 0).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    eventually("300 events in the stream", async || {
        stream_len(&s.js, "SEAT").await >= 300
    })
    .await;
    stop.cancel();
    for r in relays {
        r.await.unwrap();
    }
    assert_eq!(stream_len(&s.js, "SEAT").await, 300, "each once");
    let stream = s.js.get_stream("SEAT").await.unwrap();
    for (i, id) in ids.iter().enumerate() {
        let msg = stream.get_raw_message(i as u64 + 1).await.unwrap();
        assert_eq!(
            msg.headers.get("ce-id").unwrap().as_str(),
            id,
            "in commit order"
        );
    }
}

/// The committed server configs parse and check out with nats-server itself (`-t`), given the
/// environment they document.
#[test]
fn the_committed_server_configs_are_valid() {
    let bin = platform::harness::nats_server_binary().expect("a nats-server");
    let conf = platform::harness::workspace_root().join("nats/conf");
    let store = tempfile::tempdir().unwrap();
    for file in ["single.conf", "cluster.conf"] {
        let mut cmd = std::process::Command::new(&bin);
        cmd.arg("-t").arg("-c").arg(conf.join(file));
        for user in platform::topology::users() {
            cmd.env(platform::topology::password_variable(user), "secret");
        }
        cmd.env("NATS_SERVER_NAME", "node-1")
            .env("NATS_STORE_DIR", store.path())
            .env("NATS_CLUSTER_PORT", "6222")
            .env("NATS_ROUTES", "[nats-route://127.0.0.1:6222]");
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{file}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
