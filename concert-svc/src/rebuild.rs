//! rebuild: replays the `SEAT` stream from its start into a fresh view table, reports where the
//! live view differs, and on request merges the rebuilt rows in (a live row the replay has not
//! reached yet, because it changed after the replay's end, is newer and kept).

use crate::domain::{SeatStatus, ViewSeat, apply, seats_of};
use crate::events::SEAT_EVENTS;
use anyhow::Context as _;
use async_nats::jetstream::{self, consumer};
use contracts::{Context, ReservationId, SeatEvent, SeatId};
use futures::StreamExt;
use platform::db::Db;
use serde::Serialize;
use sqlx::Row;
use std::collections::BTreeMap;
use std::time::Instant;

#[derive(Debug, Serialize)]
pub struct Report {
    /// Stream messages replayed.
    pub events: u64,
    /// Messages that could not be read (they went to the DLQ in the live path too).
    pub unreadable: u64,
    pub seats: usize,
    /// The last stream sequence the replay covered.
    pub up_to_seq: u64,
    pub differences: Vec<Difference>,
    pub applied: bool,
    pub elapsed_ms: u64,
    pub events_per_sec: u64,
    /// The replay alone, without reading the live view and writing the rebuilt one (fixed costs
    /// that depend on the number of seats, not of events).
    pub replay_ms: u64,
    pub replay_events_per_sec: u64,
}

#[derive(Debug, Serialize)]
pub struct Difference {
    pub seat_id: String,
    pub live: SeatStatus,
    pub rebuilt: SeatStatus,
}

type View = BTreeMap<String, (String, ViewSeat)>;

/// Rows per INSERT when the rebuilt view is written.
const INSERT_ROWS: usize = 200;

async fn load(db: &Db, table: &str) -> anyhow::Result<View> {
    // `table` is one of our two fixed table names.
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT seat_id, schedule_id, status, reservation_id, last_seq FROM {table}"
    )))
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            let status: String = r.try_get("status")?;
            let reservation: Option<String> = r.try_get("reservation_id")?;
            let seat = ViewSeat {
                status: SeatStatus::parse(&status).unwrap_or(SeatStatus::Available),
                reservation: reservation.and_then(|s| ReservationId::parse(&s).ok()),
                last_seq: r.try_get::<i64, _>("last_seq")? as u64,
            };
            Ok((r.try_get("seat_id")?, (r.try_get("schedule_id")?, seat)))
        })
        .collect()
}

pub async fn rebuild(db: &Db, js: &jetstream::Context, merge: bool) -> anyhow::Result<Report> {
    let started = Instant::now();
    let stream = js
        .get_stream(Context::Seat.stream())
        .await
        .context("get SEAT")?;
    let up_to = stream
        .get_info()
        .await
        .context("SEAT info")?
        .state
        .last_sequence;

    // Every seat of the catalog starts available; the replay moves it from there.
    let live = load(db, "seat_view").await?;
    let mut view: View = live
        .iter()
        .map(|(id, (schedule, _))| {
            let fresh = ViewSeat {
                status: SeatStatus::Available,
                reservation: None,
                last_seq: 0,
            };
            (id.clone(), (schedule.clone(), fresh))
        })
        .collect();

    let replay_started = Instant::now();
    let (mut events, mut unreadable) = (0u64, 0u64);
    if up_to > 0 {
        let replay = stream
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::All,
                filter_subjects: SEAT_EVENTS
                    .iter()
                    .map(|n| Context::Seat.filter(n))
                    .collect(),
                ..Default::default()
            })
            .await
            .context("create the replay consumer")?;
        let mut messages = replay.messages().await.context("replay SEAT")?;
        while let Some(msg) = messages.next().await {
            let msg = msg.context("replay message")?;
            let seq = msg.info().map(|i| i.stream_sequence).unwrap_or(0);
            events += 1;
            match platform::consumer::decode::<SeatEvent>(&msg) {
                Ok((_, event)) => {
                    for seat in seats_of(&event) {
                        if let Some((_, row)) = view.get_mut(&seat.to_string())
                            && let Some(next) = apply(row, &event, seq)
                        {
                            *row = next;
                        }
                    }
                }
                Err(_) => unreadable += 1,
            }
            // The replay ends where the stream ended when it began (filtered subjects may skip
            // the last sequences, so also stop when nothing is left pending).
            let pending = msg.info().map(|i| i.pending).unwrap_or(0);
            if seq >= up_to || pending == 0 {
                break;
            }
        }
    }

    let replay = replay_started.elapsed();
    let differences: Vec<Difference> = view
        .iter()
        .filter_map(|(id, (_, rebuilt))| {
            let (_, now) = live.get(id)?;
            // A live row newer than the replay changed after it: not a difference.
            (now.last_seq <= up_to
                && (now.status, now.reservation) != (rebuilt.status, rebuilt.reservation))
                .then(|| Difference {
                    seat_id: id.clone(),
                    live: now.status,
                    rebuilt: rebuilt.status,
                })
        })
        .collect();

    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM seat_view_rebuild")
        .execute(&mut *tx)
        .await?;
    // Many rows per INSERT: each statement is a round trip to the database, and a venue has
    // thousands of seats (5 parameters a row, well under every backend's limit).
    let rows: Vec<_> = view.iter().collect();
    for chunk in rows.chunks(INSERT_ROWS) {
        let values = (0..chunk.len())
            .map(|i| {
                let n = i * 5;
                format!(
                    "(${}, ${}, ${}, ${}, ${})",
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4,
                    n + 5
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO seat_view_rebuild (seat_id, schedule_id, status, reservation_id, last_seq) \
             VALUES {values}"
        );
        let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (id, (schedule, seat)) in chunk {
            insert = insert
                .bind(id.as_str())
                .bind(schedule.as_str())
                .bind(seat.status.as_str())
                .bind(seat.reservation.map(|r| r.to_string()))
                .bind(seat.last_seq as i64);
        }
        insert.execute(&mut *tx).await?;
    }
    // Merging updates only the rows the replay reached that are not newer live.
    for (id, (_, seat)) in view.iter().filter(|_| merge) {
        let seat_id = SeatId::parse(id).context("seat id in the view")?;
        sqlx::query(
            "UPDATE seat_view SET status = $1, reservation_id = $2, last_seq = $3
             WHERE seat_id = $4 AND last_seq <= $3",
        )
        .bind(seat.status.as_str())
        .bind(seat.reservation.map(|r| r.to_string()))
        .bind(seat.last_seq as i64)
        .bind(seat_id.to_string())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;

    let elapsed = started.elapsed();
    let rate = |d: std::time::Duration| (events as f64 / d.as_secs_f64().max(1e-6)) as u64;
    Ok(Report {
        events,
        unreadable,
        seats: view.len(),
        up_to_seq: up_to,
        differences,
        applied: merge,
        elapsed_ms: elapsed.as_millis() as u64,
        events_per_sec: rate(elapsed),
        replay_ms: replay.as_millis() as u64,
        replay_events_per_sec: rate(replay),
    })
}
