//! The shared runtime against a real nats-server and a real database (SQLite, or PostgreSQL with
//! `TEST_DATABASE=postgres`): units of work, outbox recovery, the relay, inbox dedup, the DLQ.

use async_nats::jetstream;
use contracts::events::SeatSold;
use contracts::{Message, ReservationId, SeatEvent, SeatId, SeatKind};
use harness::{Databases, NatsServer, publish_message, stream_messages};
use nats::db::{Db, Sql};
use nats::messaging::consumer::{Consumer, Delivery, EventHandler, NotHandled};
use nats::messaging::dlq::dlq_header;
use nats::messaging::relay::Relay;
use nats::messaging::topology::{ConsumerSpec, Subscription, ensure_streams};
use nats::unit_of_work::{Ahead, Error, Rejection, Unit, UnitOfWork, Work, outbox};
use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

struct Setup {
    _server: NatsServer,
    _databases: Databases,
    _dir: tempfile::TempDir,
    js: jetstream::Context,
    db_url: String,
}

async fn setup() -> Setup {
    let server = NatsServer::start().expect("start nats-server");
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = jetstream::new(client);
    ensure_streams(&js, 1, Default::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let databases = Databases::from_env(dir.path().to_path_buf());
    let db_url = databases.create("svc").await.unwrap();
    Setup {
        _server: server,
        _databases: databases,
        _dir: dir,
        js,
        db_url,
    }
}

/// A database with the runtime's tables and a `counter` table for handlers to change.
async fn database(url: &str) -> Db {
    let db = Db::connect(url).await.unwrap();
    let mut ddl = nats::runtime::own_tables(db.backend());
    ddl.push(Cow::Borrowed(
        "CREATE TABLE IF NOT EXISTS counter (n BIGINT NOT NULL)",
    ));
    db.ensure(&ddl).await.unwrap();
    db
}

fn sold() -> SeatEvent {
    SeatEvent::Sold(SeatSold {
        reservation_id: ReservationId::new(),
        seat_ids: vec![SeatId::new()],
        versions: Default::default(),
    })
}

/// Commits a unit that emits one `seat.sold`.
async fn emit_sold(uow: &UnitOfWork) {
    uow.run(|w| {
        Box::pin(async move {
            w.emit(&sold());
            Ok(())
        })
    })
    .await
    .unwrap();
}

/// Writes `rows` to the outbox as they are, past the unit of work's size check (as a unit
/// would have before events were size-checked).
async fn write_outbox(uow: &UnitOfWork, rows: Vec<Message>) {
    uow.run(move |w| {
        Box::pin(async move {
            let now = w.now_ms();
            outbox::insert(w, &rows, now).await
        })
    })
    .await
    .unwrap();
}

async fn stream_len(js: &jetstream::Context, stream: &str) -> u64 {
    stream_messages(js, stream).await.unwrap()
}

async fn counted(db: &Db) -> i64 {
    let mut r = db.reader().await.unwrap();
    r.sql("SELECT COUNT(*) AS n FROM counter")
        .fetch_one()
        .await
        .unwrap()
        .get("n")
        .unwrap()
}

/// The rows of `records`, as (id, n).
async fn records(db: &Db) -> Vec<(i64, i64)> {
    let mut r = db.reader().await.unwrap();
    let rows = r
        .sql("SELECT id, n FROM records ORDER BY id")
        .fetch_all()
        .await
        .unwrap();
    rows.iter()
        .map(|row| (row.get("id").unwrap(), row.get("n").unwrap()))
        .collect()
}

/// A database with the runtime's tables and a `records` table of one row per id, each at 0,
/// and its unit of work.
async fn records_at_zero(url: &str, ids: std::ops::RangeInclusive<i64>) -> (Db, UnitOfWork) {
    let db = database(url).await;
    db.ensure(&[Cow::Borrowed(
        "CREATE TABLE IF NOT EXISTS records (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)",
    )])
    .await
    .unwrap();
    let uow = UnitOfWork::new(db.clone(), "test");
    uow.run(|w| {
        Box::pin(async move {
            for id in ids {
                w.sql("INSERT INTO records (id, n) VALUES ($1, 0)")
                    .bind(id)
                    .execute()
                    .await?;
            }
            Ok(())
        })
    })
    .await
    .unwrap();
    (db, uow)
}

/// Record `id`'s row, locked for the rest of the unit (a statement about that record alone).
async fn read_record(w: &mut Work, id: i64) -> anyhow::Result<nats::db::Row> {
    w.sql("SELECT n FROM records WHERE id = $1")
        .bind(id)
        .for_update()
        .record("records", id)
        .fetch_one()
        .await
}

/// Sets record `id` to `n` (`None`: a NULL, which fails the write when it is sent), a write
/// sent later.
async fn write_record(w: &mut Work, id: i64, n: Option<i64>) -> anyhow::Result<()> {
    w.sql("UPDATE records SET n = $1 WHERE id = $2")
        .bind(n)
        .bind(id)
        .record("records", id)
        .execute_later()
        .await
}

async fn eventually<F: AsyncFn() -> bool>(what: &str, check: F) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How a test unit ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Done,
    Refuse,
    /// Refused before it counts: it changed nothing.
    RefuseAtOnce,
    Fail,
    Panic,
}

/// A unit that counts once and emits an event, then ends as `end` says.
fn counting(end: End) -> Unit<(), Refused> {
    Arc::new(move |w: &mut Work| {
        Box::pin(async move {
            if end == End::RefuseAtOnce {
                return Err(Refused.into());
            }
            w.sql("INSERT INTO counter (n) VALUES (1)")
                .execute()
                .await?;
            w.emit(&sold());
            match end {
                End::Done => Ok(()),
                End::Refuse | End::RefuseAtOnce => Err(Refused.into()),
                End::Fail => Err(anyhow::anyhow!("broken").into()),
                End::Panic => panic!("a unit of work panics"),
            }
        })
    })
}

#[derive(Debug)]
struct Refused;
impl Rejection for Refused {}

/// How each unit ended, in a word.
fn shapes(outcomes: Vec<Result<(), Error<Refused>>>) -> Vec<&'static str> {
    outcomes
        .iter()
        .map(|o| match o {
            Ok(()) => "ok",
            Err(Error::Rejected(_)) => "rejected",
            Err(Error::Failed(_)) => "failed",
        })
        .collect()
}

#[tokio::test]
async fn a_unit_that_is_rejected_or_fails_keeps_nothing_and_the_others_in_its_batch_commit() {
    let s = setup().await;
    let db = database(&s.db_url).await;
    let uow = UnitOfWork::new(db.clone(), "test");

    // Alone: a rejection keeps neither its effects nor its events.
    let alone = uow.decide(|w| counting(End::Refuse)(w)).await;
    assert!(matches!(alone, Err(Error::Rejected(Refused))));
    assert_eq!(counted(&db).await, 0);

    // Together: the rejected and the failed ones keep nothing, the others commit.
    let outcomes = uow
        .run_all(vec![
            counting(End::Done),
            counting(End::Refuse),
            counting(End::Fail),
            counting(End::Panic),
            counting(End::Done),
        ])
        .await;
    assert_eq!(
        shapes(outcomes),
        ["ok", "rejected", "failed", "failed", "ok"]
    );
    assert_eq!(counted(&db).await, 2);
    let pending = outbox::pending(&mut db.reader().await.unwrap(), 10)
        .await
        .unwrap();
    assert_eq!(pending.len(), 2, "only the committed units' events");

    // All succeeding: one transaction for all.
    let outcomes = uow.run_all(vec![counting(End::Done); 3]).await;
    assert!(outcomes.iter().all(Result::is_ok));
    assert_eq!(counted(&db).await, 5);

    // A consumer's batch: its ids go to the inbox with the effects. An id handled before, or
    // given twice, runs once; the unit that fails keeps neither its effects nor its id, so
    // its event runs when it comes again, and the others keep theirs.
    let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let batch = vec![
        (a, counting(End::Done)),
        (b, counting(End::Fail)),
        (a, counting(End::Done)),
        (c, counting(End::Done)),
    ];
    let outcomes = uow.handle_all("test", batch).await;
    assert_eq!(shapes(outcomes), ["ok", "failed", "ok", "ok"]);
    assert_eq!(counted(&db).await, 7, "a and c once each");
    let again = vec![
        (a, counting(End::Fail)),
        (b, counting(End::Done)),
        (c, counting(End::Fail)),
    ];
    let outcomes = uow.handle_all("test", again).await;
    assert_eq!(shapes(outcomes), ["ok", "ok", "ok"], "a and c were handled");
    assert_eq!(counted(&db).await, 8, "b, now");
    // Alone, one unit whose event was handled: it does not run.
    let outcomes = uow.handle_all("test", vec![(b, counting(End::Fail))]).await;
    assert_eq!(shapes(outcomes), ["ok"]);

    // Many callers at once: their decisions share commits and run as one pass. One rejected
    // or failed after it counted is undone with the pass, which runs again without it; one
    // rejected before it counted needs nothing undone. Each keeps its own outcome, the others
    // count once each, and each is answered only once its effect is committed (a read right
    // after the answer sees it).
    let callers = (0..200).map(|i| {
        let (uow, db) = (uow.clone(), db.clone());
        let end = match i % 8 {
            0 | 4 => End::Refuse,
            1 | 5 => End::Fail,
            2 => End::RefuseAtOnce,
            _ => End::Done,
        };
        tokio::spawn(async move {
            let outcome = uow.decide(move |w| counting(end)(w)).await;
            (end, outcome, counted(&db).await)
        })
    });
    for joined in futures::future::join_all(callers).await {
        match joined.unwrap() {
            (End::Refuse | End::RefuseAtOnce, outcome, _) => {
                assert!(matches!(outcome, Err(Error::Rejected(Refused))));
            }
            (End::Fail, outcome, _) => {
                assert!(matches!(outcome, Err(Error::Failed(_))));
            }
            (_, outcome, seen) => {
                outcome.unwrap();
                assert!(
                    seen >= 9,
                    "a caller's own row is committed when it is answered"
                );
            }
        }
    }
    assert_eq!(
        counted(&db).await,
        8 + 75,
        "the rejected and failed ones kept nothing, the others counted once"
    );
}

/// Writes sent later: a read of the same unit sees them, and one that fails fails its unit
/// alone (on PostgreSQL only when it is sent, with the unit's next write), which keeps nothing.
#[tokio::test]
async fn writes_sent_later_are_part_of_their_unit() {
    let s = setup().await;
    let db = database(&s.db_url).await;
    let uow = UnitOfWork::new(db.clone(), "test");
    // `n NOT NULL`: a NULL fails the write.
    let later = |n: Option<i64>, read: bool| -> Unit<i64, Refused> {
        Arc::new(move |w: &mut Work| {
            Box::pin(async move {
                w.sql("INSERT INTO counter (n) VALUES (1)")
                    .execute()
                    .await?;
                w.sql("INSERT INTO counter (n) VALUES ($1)")
                    .bind(n)
                    .execute_later()
                    .await?;
                w.sql("INSERT INTO counter (n) VALUES (2)")
                    .execute_later()
                    .await?;
                // A write goes with them, its row count its own.
                let written = w
                    .sql("INSERT INTO counter (n) VALUES (4)")
                    .execute()
                    .await?;
                if written != 1 {
                    return Err(anyhow::anyhow!("{written} rows written").into());
                }
                if !read {
                    return Ok(0);
                }
                let row = w
                    .sql("SELECT COUNT(*) AS n FROM counter")
                    .fetch_one()
                    .await?;
                Ok(row.get("n")?)
            })
        })
    };
    let outcomes = uow
        .run_all(vec![
            later(Some(3), true),
            later(None, false),
            later(Some(3), false),
        ])
        .await;
    assert_eq!(
        outcomes[0].as_ref().ok(),
        Some(&4),
        "its read sees its writes"
    );
    assert!(
        matches!(outcomes[1], Err(Error::Failed(_))),
        "{:?}",
        outcomes[1]
    );
    assert!(outcomes[2].is_ok());
    assert_eq!(counted(&db).await, 8, "the failed unit kept nothing");

    // Alone, a unit whose write fails keeps nothing, and the next transaction (on PostgreSQL,
    // on the same connection) commits.
    let failing = later(None, false);
    let alone = uow.decide(move |w| failing(w)).await;
    assert!(matches!(alone, Err(Error::Failed(_))), "{alone:?}");
    assert_eq!(counted(&db).await, 8);
    let next = later(Some(3), false);
    assert!(uow.decide(move |w| next(w)).await.is_ok());
    assert_eq!(counted(&db).await, 12);
}

/// In a consumer's batch, a unit's writes of one record wait past its end for the next unit's
/// statement about another record: a read of the same record still sees them, and a write that
/// fails there is charged to the unit that sent it, which alone keeps nothing.
#[tokio::test]
async fn writes_of_a_record_wait_past_their_unit_in_a_batch_and_a_failure_stays_its_own() {
    let s = setup().await;
    let (db, uow) = records_at_zero(&s.db_url, 1..=2).await;
    // Reads record `id` (the row read ahead for it, if the batch did) and adds `by` to it
    // (`None`: a NULL, which fails the write); answers what it read.
    let served_ahead = Arc::new(AtomicUsize::new(0));
    let add = |id: i64, by: Option<i64>| -> (Uuid, Unit<i64, Refused>) {
        let served_ahead = served_ahead.clone();
        let unit: Unit<i64, Refused> = Arc::new(move |w: &mut Work| {
            let served_ahead = served_ahead.clone();
            Box::pin(async move {
                let row = match w.take_read_ahead("records", &id.to_string()) {
                    Some(row) => {
                        served_ahead.fetch_add(1, Ordering::Relaxed);
                        row
                    }
                    None => read_record(w, id).await?,
                };
                let n: i64 = row.get("n")?;
                write_record(w, id, by.map(|by| n + by)).await?;
                Ok(n)
            })
        });
        (Uuid::now_v7(), unit)
    };
    let batch = || {
        vec![
            add(1, Some(1)),
            add(1, Some(1)),
            add(2, Some(5)),
            add(1, None),
            add(2, Some(5)),
            add(1, Some(1)),
        ]
    };
    let outcomes = uow.handle_all("test", batch()).await;
    let read: Vec<_> = outcomes.iter().map(|o| o.as_ref().ok().copied()).collect();
    assert_eq!(
        read,
        [Some(0), Some(1), Some(0), None, Some(5), Some(2)],
        "each read sees the writes before it; the NULL write's unit alone fails"
    );
    assert!(matches!(outcomes[3], Err(Error::Failed(_))));
    assert_eq!(records(&db).await, [(1, 3), (2, 10)]);

    // The same batch with both records read ahead at the start of each pass: a row read ahead
    // serves the first read of its record in the pass, later ones see the writes before them.
    uow.run(|w| Box::pin(async move { w.sql("UPDATE records SET n = 0").execute().await }))
        .await
        .unwrap();
    let passes = Arc::new(AtomicUsize::new(0));
    let ahead: Ahead = {
        let passes = passes.clone();
        Arc::new(move |w: &mut Work, running: &[usize]| {
            let (passes, running) = (passes.clone(), running.len());
            Box::pin(async move {
                passes.fetch_add(1, Ordering::Relaxed);
                assert!(running > 0, "the units about to run are named");
                let rows = w
                    .sql("SELECT id, n FROM records WHERE id IN (1, 2) ORDER BY id")
                    .for_update()
                    .fetch_all()
                    .await?;
                for row in rows {
                    let id: i64 = row.get("id")?;
                    w.keep_read_ahead("records", id.to_string(), row);
                }
                Ok(())
            })
        })
    };
    served_ahead.store(0, Ordering::Relaxed);
    let outcomes = uow
        .handle_all_reading_ahead("test", batch(), Some(ahead))
        .await;
    let read: Vec<_> = outcomes.iter().map(|o| o.as_ref().ok().copied()).collect();
    assert_eq!(
        read,
        [Some(0), Some(1), Some(0), None, Some(5), Some(2)],
        "read ahead, each read still sees the writes before it"
    );
    assert!(matches!(outcomes[3], Err(Error::Failed(_))));
    assert_eq!(records(&db).await, [(1, 3), (2, 10)]);
    let passes = passes.load(Ordering::Relaxed);
    assert!(passes >= 2, "read ahead again after the pass was undone");
    assert_eq!(
        served_ahead.load(Ordering::Relaxed),
        2 * passes,
        "the first read of each record in each pass served from what was read ahead"
    );

    // Writes that read nothing first (as the availability view's): those of other records wait
    // together, and one of a record whose write already waits goes after it, not as a part of
    // the same statement (where PostgreSQL applies only one change to a row).
    let add_blind = |id: i64| -> (Uuid, Unit<(), Refused>) {
        let unit: Unit<(), Refused> = Arc::new(move |w: &mut Work| {
            Box::pin(async move {
                w.sql("UPDATE records SET n = n + 1 WHERE id = $1")
                    .bind(id)
                    .record("records", id)
                    .execute_later()
                    .await?;
                Ok(())
            })
        });
        (Uuid::now_v7(), unit)
    };
    let outcomes = uow
        .handle_all("test", [1, 2, 1, 2, 1, 2].map(add_blind).into())
        .await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    assert_eq!(
        records(&db).await,
        [(1, 6), (2, 13)],
        "every write of a record counted"
    );
}

/// Decisions waiting together carry their writes of one record to the next one's statement,
/// as a batch does: one refused before any statement keeps the writes carried before it, one
/// refused after its read and one whose write fails each keep nothing, and the others' writes
/// all land.
#[tokio::test]
async fn decisions_together_carry_their_writes_and_each_keeps_its_own_outcome() {
    let s = setup().await;
    const N: i64 = 200;
    let (db, uow) = records_at_zero(&s.db_url, 1..=N).await;
    // Record `id`: read, then add 1 (`Done`), refuse before reading (`RefuseAtOnce`) or after
    // it (`Refuse`), or write a NULL, which fails when it is sent (`Fail`). The first half only
    // adds or refuses at once: a failure would have the pass run again without carrying.
    let end_of = |id: i64| match (id <= N / 2, id % 4) {
        (true, 0 | 2) | (false, 0) => End::Done,
        (true, _) | (false, 1) => End::RefuseAtOnce,
        (false, 2) => End::Refuse,
        (false, _) => End::Fail,
    };
    let decide = |id: i64| {
        let uow = uow.clone();
        let end = end_of(id);
        async move {
            uow.decide(move |w| {
                Box::pin(async move {
                    if end == End::RefuseAtOnce {
                        return Err(Refused.into());
                    }
                    let row = read_record(w, id).await?;
                    if end == End::Refuse {
                        return Err(Refused.into());
                    }
                    let n: i64 = row.get("n")?;
                    write_record(w, id, (end == End::Done).then_some(n + 1)).await?;
                    Ok::<_, Error<Refused>>(())
                })
            })
            .await
        }
    };
    for half in [1..=N / 2, N / 2 + 1..=N] {
        // The committer is held by a unit waiting for a word, so the decisions all wait
        // together and run in the groups after it.
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let holding = tokio::spawn({
            let uow = uow.clone();
            async move {
                uow.run(move |_| {
                    Box::pin(async move {
                        let _ = released.await;
                        Ok(())
                    })
                })
                .await
            }
        });
        // Polled together, every decision is handed over before the word is given.
        let callers = half.clone().map(decide);
        let (outcomes, ()) = futures::join!(futures::future::join_all(callers), async {
            tokio::task::yield_now().await;
            let _ = release.send(());
        });
        holding.await.unwrap().unwrap();
        for (id, outcome) in half.zip(outcomes) {
            match end_of(id) {
                End::Done => assert!(outcome.is_ok(), "{id}: {outcome:?}"),
                End::Fail => assert!(matches!(outcome, Err(Error::Failed(_))), "{id}"),
                _ => assert!(matches!(outcome, Err(Error::Rejected(Refused))), "{id}"),
            }
        }
    }
    let expected: Vec<(i64, i64)> = (1..=N)
        .map(|id| (id, i64::from(end_of(id) == End::Done)))
        .collect();
    assert_eq!(
        records(&db).await,
        expected,
        "each done decision's write landed once"
    );
}

/// A unit that emits an event too large to publish fails, and keeps nothing: the row would
/// never reach the broker.
#[tokio::test]
async fn a_unit_emitting_an_event_too_large_to_publish_keeps_nothing() {
    let s = setup().await;
    let db = database(&s.db_url).await;
    let uow = UnitOfWork::new(db.clone(), "test");
    let seats = (0..20_000)
        .map(|i| contracts::SeatSpec {
            seat_id: SeatId::new(),
            label: format!("{i:0>40}"),
            grade: "R".into(),
            price: contracts::Points::new(1).unwrap(),
        })
        .collect();
    let huge = contracts::ConcertEvent::ScheduleOpened(contracts::events::ScheduleOpened {
        schedule_id: contracts::ScheduleId::new(),
        concert_id: contracts::ConcertId::new(),
        starts_at: time::OffsetDateTime::now_utc(),
        seats,
    });
    let failed = uow
        .run(move |w| {
            Box::pin(async move {
                w.sql("INSERT INTO counter (n) VALUES (1)")
                    .execute()
                    .await?;
                assert!(w.fits(&huge).is_err());
                w.emit(&huge);
                Ok(())
            })
        })
        .await
        .unwrap_err();
    assert!(
        failed
            .downcast_ref::<nats::unit_of_work::EventTooLarge>()
            .is_some(),
        "{failed:#}"
    );
    assert_eq!(counted(&db).await, 0);
}

/// On SQLite a read connection cannot write: every write has to come through the unit of work.
#[tokio::test]
async fn a_sqlite_read_connection_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("svc.db").display());
    let db = database(&url).await;
    let mut read = db.reader().await.unwrap();
    let write = read
        .sql("INSERT INTO counter (n) VALUES (1)")
        .execute()
        .await;
    let error = format!("{:#}", write.unwrap_err());
    assert!(error.contains("readonly"), "{error}");
    assert_eq!(counted(&db).await, 0);
}

#[tokio::test]
async fn an_event_committed_before_a_crash_is_published_once_after_restart() {
    let s = setup().await;
    // The first process commits two events and dies before its relay runs…
    {
        let db = database(&s.db_url).await;
        let uow = UnitOfWork::new(db.clone(), "test");
        uow.run(|w| {
            Box::pin(async move {
                w.emit(&sold());
                w.emit(&sold());
                Ok(())
            })
        })
        .await
        .unwrap();
        // …or publishes them and crashes before marking them published.
        let pending = outbox::pending(&mut db.reader().await.unwrap(), 10)
            .await
            .unwrap();
        assert_eq!(Relay::publish(&s.js, &pending).await.published.len(), 2);
    }
    assert_eq!(stream_len(&s.js, "SEAT").await, 2);

    // The restarted process's relay publishes the rows again; the broker drops the copies.
    let db = database(&s.db_url).await;
    let uow = UnitOfWork::new(db.clone(), "test");
    let relay = Relay::new(uow.clone());
    assert_eq!(relay.relay_once(&s.js).await.unwrap(), 2);
    assert_eq!(
        relay.relay_once(&s.js).await.unwrap(),
        0,
        "nothing left to publish"
    );
    assert_eq!(stream_len(&s.js, "SEAT").await, 2, "each event stored once");
    // The next commit, whatever it is, marks them published.
    uow.run(|_| Box::pin(async { Ok(()) })).await.unwrap();
    let pending = outbox::pending(&mut db.reader().await.unwrap(), 10)
        .await
        .unwrap();
    assert_eq!(pending.len(), 0, "marked published");
}

/// A row the broker keeps refusing (here: larger than its `max_payload`) is set aside after a
/// few tries, and the rows after it are published. (On main the relay stopped at that row for
/// good: nothing that service committed afterwards was ever published.)
#[tokio::test]
async fn a_row_the_broker_keeps_refusing_is_set_aside_and_the_rest_go_on() {
    let s = setup().await;
    let db = database(&s.db_url).await;
    let uow = UnitOfWork::new(db.clone(), "test");
    let mut oversized = Message::new("test", &sold(), None, time::OffsetDateTime::now_utc());
    oversized.payload = format!("\"{}\"", "x".repeat(2 << 20)).into_bytes();
    let after = Message::new("test", &sold(), None, time::OffsetDateTime::now_utc());
    // Written as a unit would have before events were size-checked.
    let rows = vec![oversized, after.clone()];
    write_outbox(&uow, rows).await;

    let stop = CancellationToken::new();
    let task = tokio::spawn(Relay::new(uow.clone()).run(s.js.clone(), stop.clone()));
    eventually("the row after it published", async || {
        stream_len(&s.js, "SEAT").await == 1
    })
    .await;
    let stored =
        s.js.get_stream("SEAT")
            .await
            .unwrap()
            .get_raw_message(1)
            .await
            .unwrap();
    assert_eq!(stored.subject.as_str(), after.subject);
    let mut read = db.reader().await.unwrap();
    let parked = read
        .sql("SELECT seq, reason FROM outbox_parked")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(parked.len(), 1);
    let reason: String = parked[0].get("reason").unwrap();
    assert!(reason.contains("max payload"), "{reason}");
    stop.cancel();
    task.await.unwrap();
}

/// Only a row's own fault sets it aside. With no stream to store it (a leader election, a node
/// down: the broker answers "no stream found") the row waits however many passes it takes and is
/// published, in order, once the stream answers; a row over the stream's `max_msg_size` is set
/// aside. (Before, every error but a timeout counted as the row's: on a cluster losing its SEAT
/// leader, seat.held rows were set aside and their reservations never existed.)
#[tokio::test]
async fn a_row_waits_out_a_missing_stream_and_only_its_own_fault_sets_it_aside() {
    let s = setup().await;
    let db = database(&s.db_url).await;
    let uow = UnitOfWork::new(db.clone(), "test");
    let seat = s.js.get_stream("SEAT").await.unwrap();
    let mut config = seat.cached_info().config.clone();
    s.js.delete_stream("SEAT").await.unwrap();

    let first = Message::new("test", &sold(), None, time::OffsetDateTime::now_utc());
    let mut large = Message::new("test", &sold(), None, time::OffsetDateTime::now_utc());
    large.payload = format!("\"{}\"", "x".repeat(4096)).into_bytes();
    let last = Message::new("test", &sold(), None, time::OffsetDateTime::now_utc());
    let rows = vec![first.clone(), large, last.clone()];
    write_outbox(&uow, rows).await;

    let relay = Relay::new(uow.clone());
    for pass in 0..10 {
        let refused = relay.relay_once(&s.js).await;
        assert!(refused.is_err(), "pass {pass} published without a stream");
    }
    let parked = |db: Db| async move {
        let mut read = db.reader().await.unwrap();
        read.sql("SELECT reason FROM outbox_parked")
            .fetch_all()
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String>("reason").unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(parked(db.clone()).await, Vec::<String>::new());

    config.max_message_size = 1024;
    s.js.create_stream(config).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while stream_len(&s.js, "SEAT").await < 2 || parked(db.clone()).await.is_empty() {
        assert!(Instant::now() < deadline, "the large row never set aside");
        let _ = relay.relay_once(&s.js).await;
    }
    let stored = s.js.get_stream("SEAT").await.unwrap();
    let mut subjects = Vec::new();
    for seq in 1..=2 {
        subjects.push(
            stored
                .get_raw_message(seq)
                .await
                .unwrap()
                .subject
                .to_string(),
        );
    }
    assert_eq!(subjects, vec![first.subject, last.subject]);
    let reasons = parked(db.clone()).await;
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].contains("maximum"), "{reasons:?}");
}

#[tokio::test]
async fn the_relay_publishes_a_committed_event_when_woken() {
    let s = setup().await;
    let uow = UnitOfWork::new(database(&s.db_url).await, "test");
    let stop = CancellationToken::new();
    let task = tokio::spawn(Relay::new(uow.clone()).run(s.js.clone(), stop.clone()));

    emit_sold(&uow).await;
    eventually("the event in the stream", async || {
        stream_len(&s.js, "SEAT").await == 1
    })
    .await;
    // No other commit comes: the relay marks the row itself.
    eventually("the row marked published", async || {
        let mut read = uow.db().reader().await.unwrap();
        outbox::pending(&mut read, 10).await.unwrap().is_empty()
    })
    .await;
    stop.cancel();
    task.await.unwrap();
}

/// Counts the events it is given; remembers each delivery count.
#[derive(Clone, Default)]
struct CountingHandler {
    seen: Arc<Mutex<Vec<i64>>>,
}

impl EventHandler<SeatEvent> for CountingHandler {
    async fn handle(&self, w: &mut Work, d: &Delivery<SeatEvent>) -> Result<(), Error<NotHandled>> {
        self.seen.lock().unwrap().push(d.delivered);
        w.sql("INSERT INTO counter (n) VALUES (1)")
            .execute()
            .await?;
        Ok(())
    }
}

/// A consumer of `seat.sold` counting into the database, running until the token is cancelled.
async fn counting_consumer(s: &Setup) -> Running {
    consumer_named(s, "test").await
}

/// A database, the handler counting into it, and the consumer's stop token and task.
type Running = (
    Db,
    CountingHandler,
    CancellationToken,
    tokio::task::JoinHandle<()>,
);

/// The same, as service `service` (its durable and DLQ entries carry that name).
async fn consumer_named(s: &Setup, service: &'static str) -> Running {
    let db = database(&s.db_url).await;
    let handler = CountingHandler::default();
    let stop = CancellationToken::new();
    let subscription = Subscription::<SeatEvent>::to(&[SeatKind::Sold]);
    let spec = ConsumerSpec::new(service, subscription, 1);
    let uow = UnitOfWork::new(db.clone(), service);
    let consumer = Consumer::new(spec, service, uow, handler.clone());
    let task = tokio::spawn(consumer.run(s.js.clone(), stop.clone()));
    (db, handler, stop, task)
}

#[tokio::test]
async fn an_event_delivered_twice_is_applied_once() {
    let s = setup().await;
    let (db, handler, stop, task) = counting_consumer(&s).await;
    // The same event stored twice, as a re-publish after the duplicate window would.
    let msg = Message::new("test", &sold(), None, time::OffsetDateTime::now_utc());
    publish_message(&s.js, &msg).await.unwrap();
    let mut again = msg.clone();
    for (name, value) in &mut again.headers {
        if name == contracts::envelope::header::MSG_ID {
            *value = format!("{value}-again");
        }
    }
    publish_message(&s.js, &again).await.unwrap();

    eventually("both deliveries handled", async || {
        nats::messaging::topology::caught_up(&s.js, "SEAT", "test")
            .await
            .unwrap_or(false)
    })
    .await;
    assert_eq!(stream_len(&s.js, "SEAT").await, 2);
    assert_eq!(
        counted(&db).await,
        1,
        "applied once although delivered twice"
    );
    assert_eq!(handler.seen.lock().unwrap().len(), 1, "the copy only acked");
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
            .get(dlq_header::REASON)
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

/// Panics on one reservation's events, counts the others.
struct Panicking {
    poison: ReservationId,
    counting: CountingHandler,
}

impl EventHandler<SeatEvent> for Panicking {
    async fn handle(&self, w: &mut Work, d: &Delivery<SeatEvent>) -> Result<(), Error<NotHandled>> {
        if contracts::Event::reservation_id(&d.event) == Some(self.poison) {
            panic!("poisoned by {}", self.poison);
        }
        self.counting.handle(w, d).await
    }
}

/// A handler that panics fails its event like any error: the others are handled, the consumer
/// goes on, and the event that keeps panicking ends in the DLQ. (On main the panic ended the
/// consumer task for good.)
#[tokio::test]
async fn a_panicking_handler_fails_its_event_and_the_consumer_goes_on() {
    let s = setup().await;
    let db = database(&s.db_url).await;
    let poisoned = sold();
    let poison = contracts::Event::reservation_id(&poisoned).unwrap();
    let handler = Panicking {
        poison,
        counting: CountingHandler::default(),
    };
    let mut spec = ConsumerSpec::new("test", Subscription::<SeatEvent>::to(&[SeatKind::Sold]), 1);
    spec.retry.max_deliver = 2;
    let consumer = Consumer::new(spec, "test", UnitOfWork::new(db.clone(), "test"), handler);
    let stop = CancellationToken::new();
    let task = tokio::spawn(consumer.run(s.js.clone(), stop.clone()));

    for event in [poisoned, sold(), sold()] {
        let msg = Message::new("test", &event, None, time::OffsetDateTime::now_utc());
        publish_message(&s.js, &msg).await.unwrap();
    }
    eventually("the two good events handled", async || {
        counted(&db).await == 2
    })
    .await;
    eventually("the poisoned one dead-lettered", async || {
        stream_len(&s.js, "DLQ").await == 1
    })
    .await;
    let entry =
        s.js.get_stream("DLQ")
            .await
            .unwrap()
            .get_last_raw_message_by_subject(&format!("dlq.test.seat.sold.{poison}"))
            .await
            .unwrap();
    let reason = entry
        .headers
        .get(dlq_header::REASON)
        .unwrap()
        .as_str()
        .to_owned();
    assert!(reason.contains("panicked: poisoned by"), "{reason}");
    assert!(!task.is_finished(), "the consumer still runs");
    // And it still handles what comes next.
    let msg = Message::new("test", &sold(), None, time::OffsetDateTime::now_utc());
    publish_message(&s.js, &msg).await.unwrap();
    eventually("a later event handled", async || counted(&db).await == 3).await;
    stop.cancel();
    task.await.unwrap();
}

/// Two services giving up on the same message make two DLQ entries (main keyed the entry by
/// stream and sequence only, so the broker dropped the second as a duplicate).
#[tokio::test]
async fn two_consumers_dead_lettering_one_message_make_two_entries() {
    let s = setup().await;
    let (_, _, stop_a, a) = consumer_named(&s, "one-svc").await;
    let (_, _, stop_b, b) = consumer_named(&s, "other-svc").await;
    s.js.publish("seat.sold.not-an-envelope", "garbage".into())
        .await
        .unwrap()
        .await
        .unwrap();
    eventually("two DLQ entries", async || {
        stream_len(&s.js, "DLQ").await == 2
    })
    .await;
    let dlq = s.js.get_stream("DLQ").await.unwrap();
    for service in ["one-svc", "other-svc"] {
        let entry = dlq
            .get_last_raw_message_by_subject(&format!("dlq.{service}.seat.sold.not-an-envelope"))
            .await
            .unwrap();
        assert_eq!(
            entry.headers.get(dlq_header::SERVICE).unwrap().as_str(),
            service
        );
    }
    for (stop, task) in [(stop_a, a), (stop_b, b)] {
        stop.cancel();
        task.await.unwrap();
    }
}

#[tokio::test]
async fn two_relays_on_one_database_publish_each_event_once_and_in_order() {
    let s = setup().await;
    let uow = UnitOfWork::new(database(&s.db_url).await, "test");
    let stop = CancellationToken::new();
    let relays: Vec<_> = (0..2)
        .map(|_| tokio::spawn(Relay::new(uow.clone()).run(s.js.clone(), stop.clone())))
        .collect();
    let ids = Arc::new(Mutex::new(Vec::new()));
    for _ in 0..30 {
        let ids = ids.clone();
        uow.run(move |w| {
            Box::pin(async move {
                for _ in 0..10 {
                    let event = sold();
                    w.emit(&event);
                    ids.lock().unwrap().push(event);
                }
                Ok(())
            })
        })
        .await
        .unwrap();
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
    let events = ids.lock().unwrap().clone();
    for (i, event) in events.iter().enumerate() {
        let msg = stream.get_raw_message(i as u64 + 1).await.unwrap();
        assert_eq!(
            msg.subject.as_str(),
            contracts::Event::subject(event),
            "in commit order"
        );
    }
}

/// The committed server configs parse and check out with nats-server itself (`-t`), given the
/// environment they document.
#[test]
fn the_committed_server_configs_are_valid() {
    let bin = harness::nats_server_binary().expect("a nats-server");
    let conf = harness::workspace_root().join("nats/conf");
    let store = tempfile::tempdir().unwrap();
    for file in ["single.conf", "cluster.conf"] {
        let mut cmd = std::process::Command::new(&bin);
        cmd.arg("-t").arg("-c").arg(conf.join(file));
        for user in nats::messaging::users::users() {
            cmd.env(nats::messaging::users::password_variable(user), "secret");
        }
        cmd.env("NATS_SERVER_NAME", "node-1")
            .env("NATS_STORE_DIR", store.path())
            .env("NATS_CLUSTER_PORT", "6222")
            .env("NATS_ROUTES", "[nats-route://route:secret@127.0.0.1:6222]")
            .env("NATS_ROUTE_PASSWORD", "secret");
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{file}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// What is shipped for deployment fails closed: the NATS configs do not load without every
/// password they name (the cluster's routes too), a client without credentials is denied by a
/// server on them, and compose.yaml has a default for no secret, so it does not start without
/// them. (The local default of the demo and the tests is a loopback bus without users.)
#[tokio::test]
async fn the_shipped_deployment_fails_closed() {
    let bin = harness::nats_server_binary().expect("a nats-server");
    let root = harness::workspace_root();
    for file in ["single.conf", "cluster.conf"] {
        let out = std::process::Command::new(&bin)
            .arg("-t")
            .arg("-c")
            .arg(root.join("nats/conf").join(file))
            .env("NATS_SERVER_NAME", "node-1")
            .env("NATS_STORE_DIR", "/tmp")
            .env("NATS_CLUSTER_PORT", "6222")
            .env("NATS_ROUTES", "[]")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && said.contains("PASSWORD"),
            "{file} loaded without its passwords: {said}"
        );
    }

    let server = harness::NatsServer::start_shipped("pw").unwrap();
    let anonymous = async_nats::connect(server.url()).await;
    assert!(
        matches!(&anonymous, Err(e) if e.kind() == async_nats::ConnectErrorKind::AuthorizationViolation),
        "{anonymous:?}"
    );
    let wrong = async_nats::ConnectOptions::with_user_and_password("seat-svc".into(), "no".into())
        .connect(server.url())
        .await;
    assert!(
        matches!(&wrong, Err(e) if e.kind() == async_nats::ConnectErrorKind::AuthorizationViolation),
        "{wrong:?}"
    );
    async_nats::ConnectOptions::with_user_and_password("seat-svc".into(), "pw".into())
        .connect(server.url())
        .await
        .expect("seat-svc with its password");

    let compose = std::fs::read_to_string(root.join("compose.yaml")).unwrap();
    let secrets: Vec<&str> = compose
        .split("${")
        .skip(1)
        .filter_map(|v| v.split('}').next())
        .filter(|v| v.contains("PASSWORD") || v.contains("SECRET"))
        .collect();
    assert!(secrets.len() >= 10, "{secrets:?}");
    for v in secrets {
        assert!(
            v.contains(":?"),
            "compose.yaml has a fallback for a secret: ${{{v}}}"
        );
    }
}

/// Published outbox rows and handled inbox ids past their retention are deleted; rows not
/// published yet stay whatever their age. A time range of the outbox can be published again:
/// after the broker lost a stream, the relay restores its events in order. (On main the outbox
/// and the inbox grew for ever, and nothing could publish a row twice.)
#[tokio::test]
async fn old_outbox_rows_and_inbox_ids_are_swept_and_a_range_can_be_published_again() {
    use nats::runtime::housekeeping::{self, Retention};
    let s = setup().await;
    let db = database(&s.db_url).await;
    let uow = UnitOfWork::new(db.clone(), "test");
    let started = time::OffsetDateTime::now_utc();
    for _ in 0..3 {
        let handled = uow
            .handle_all("test", vec![(uuid::Uuid::now_v7(), counting(End::Done))])
            .await;
        assert!(handled.iter().all(Result::is_ok));
    }
    let relay = Relay::new(uow.clone());
    assert_eq!(relay.relay_once(&s.js).await.unwrap(), 3);
    uow.run(|_| Box::pin(async { Ok(()) })).await.unwrap(); // marks them published
    let ended = time::OffsetDateTime::now_utc() + time::Duration::seconds(1);

    // Within the windows: nothing goes.
    let kept = housekeeping::sweep(&uow, Retention::default())
        .await
        .unwrap();
    assert_eq!((kept.outbox_rows, kept.inbox_ids), (0, 0));

    // The broker loses the stream; the range is published again, in order, with the same ids.
    let seat = s.js.get_stream("SEAT").await.unwrap();
    let config = seat.cached_info().config.clone();
    let ids_before = stream_ids(&s.js).await;
    s.js.delete_stream("SEAT").await.unwrap();
    s.js.create_stream(config).await.unwrap();
    let again = housekeeping::republish(&uow, started, ended).await.unwrap();
    assert_eq!(again, 3);
    assert_eq!(relay.relay_once(&s.js).await.unwrap(), 3);
    assert_eq!(stream_ids(&s.js).await, ids_before);
    uow.run(|_| Box::pin(async { Ok(()) })).await.unwrap();

    // One more row, not published yet, and a command's stored answer; then every window is
    // zero: the published rows, the ids and the answer go, the pending row stays.
    emit_sold(&uow).await;
    uow.run(|w| {
        Box::pin(async move {
            let now = w.now_ms();
            w.sql(
                "INSERT INTO idempotency_keys
                     (user_id, idempotency_key, request, status, body, created_at)
                 VALUES ('ann', 'k-1', 'r', 200, '{}', $1)",
            )
            .bind(now)
            .execute()
            .await?;
            Ok(())
        })
    })
    .await
    .unwrap();
    let none = Retention {
        outbox: Duration::ZERO,
        inbox: Duration::ZERO,
        keys: Duration::ZERO,
    };
    // "Older than zero" is older than the millisecond the rows were marked in.
    let marked = db.clock().now_ms();
    while db.clock().now_ms() <= marked {
        tokio::task::yield_now().await;
    }
    let swept = housekeeping::sweep(&uow, none).await.unwrap();
    assert_eq!((swept.outbox_rows, swept.inbox_ids, swept.keys), (3, 3, 1));
    let pending = outbox::pending(&mut db.reader().await.unwrap(), 10)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1, "the row not published yet stays");
    assert!(
        Retention {
            outbox: Duration::from_secs(10),
            inbox: Duration::from_secs(5),
            ..Retention::default()
        }
        .checked()
        .is_err(),
        "an inbox that forgets before the outbox would let a re-published event apply twice"
    );
}

/// The `Nats-Msg-Id`s in SEAT, in stream order.
async fn stream_ids(js: &jetstream::Context) -> Vec<String> {
    let stream = js.get_stream("SEAT").await.unwrap();
    let mut ids = Vec::new();
    for seq in 1..=stream_len(js, "SEAT").await {
        let msg = stream.get_raw_message(seq).await.unwrap();
        ids.push(
            msg.headers
                .get("Nats-Msg-Id")
                .map(|v| v.to_string())
                .unwrap_or_default(),
        );
    }
    ids
}

/// A full stream refuses new events (`discard: new`: a rebuild needs the old ones) and the
/// relay keeps them, in order, until an operator raises the limit; nothing is set aside.
#[tokio::test]
async fn a_full_stream_holds_events_back_in_the_outbox_until_it_has_room() {
    let s = setup().await;
    let db = database(&s.db_url).await;
    let uow = UnitOfWork::new(db.clone(), "test");
    let mut seat = s.js.get_stream("SEAT").await.unwrap();
    let mut config = seat.info().await.unwrap().config.clone();
    assert_eq!(config.discard, jetstream::stream::DiscardPolicy::New);
    assert!(config.max_bytes > 0, "streams are bounded");
    config.max_bytes = 2048;
    s.js.update_stream(config.clone()).await.unwrap();
    for _ in 0..20 {
        emit_sold(&uow).await;
    }
    let relay = Relay::new(uow.clone());
    for _ in 0..10 {
        let _ = relay.relay_once(&s.js).await;
    }
    let stored = stream_len(&s.js, "SEAT").await;
    assert!(stored < 20, "a 2 KiB stream took {stored} events");
    let mut read = db.reader().await.unwrap();
    let parked = read
        .sql("SELECT COUNT(*) AS n FROM outbox_parked")
        .fetch_one()
        .await
        .unwrap()
        .get::<i64>("n")
        .unwrap();
    assert_eq!(parked, 0, "a full stream is not the rows' fault");

    config.max_bytes = 1 << 20;
    s.js.update_stream(config).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while stream_len(&s.js, "SEAT").await < 20 {
        assert!(
            Instant::now() < deadline,
            "the held-back events never went out"
        );
        let _ = relay.relay_once(&s.js).await;
    }
}

/// A service creates its own stream when it is missing and never changes one that exists: one
/// started with `NATS_REPLICAS=1` against the R3 stream of a cluster is refused, and the stream
/// stays R3. (On main every service updated every stream to its own replica count.)
#[tokio::test]
async fn a_service_does_not_turn_an_r3_stream_into_r1() {
    use nats::messaging::topology::{TopologyError, ensure_own_streams};
    let cluster = harness::NatsCluster::start(3, "pw").unwrap();
    let admin = async_nats::ConnectOptions::with_user_and_password("admin".into(), "pw".into())
        .connect(cluster.nodes[0].url())
        .await
        .unwrap();
    let js = jetstream::new(admin);
    let limits = Default::default();
    // Created R3 by seat-svc as configured (the cluster takes a moment to elect).
    harness::eventually("SEAT created R3", Duration::from_secs(30), async || {
        Ok(ensure_own_streams(&js, contracts::Context::Seat, 3, limits)
            .await
            .ok())
    })
    .await
    .unwrap();
    let refused = ensure_own_streams(&js, contracts::Context::Seat, 1, limits).await;
    match refused {
        Err(TopologyError::Mismatch(why)) => assert!(why.contains("3 replicas"), "{why}"),
        other => panic!("expected a refusal for the replica count, got {other:?}"),
    }
    let info = js
        .get_stream("SEAT")
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap();
    assert_eq!(info.config.num_replicas, 3);
    // Streams of other contexts are not its to create.
    assert!(js.get_stream("PAYMENT").await.is_err());
}
