//! rebuild: replays the `SEAT` stream from its start through the view's own [`update`] into a
//! fresh view, reports where the live view differs, and on request merges the rebuilt rows in
//! (a live row the replay has not reached yet, because it changed after the replay's end, is
//! newer and kept).

use super::domain::{SeatStatus, ViewSeat};
use super::store::{self, View};
use super::updater::{SUBSCRIPTION, update};
use anyhow::Context as _;
use async_nats::jetstream::{self, consumer};
use contracts::{Context, SeatEvent, SeatId};
use futures::StreamExt;
use nats::db::Db;
use nats::messaging::consumer::decode;
use nats::messaging::users::rebuild_consumer;
use nats::unit_of_work::UnitOfWork;
use serde::Serialize;
use std::time::Instant;

/// What a rebuild of the view found (and did, with `apply`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Report {
    /// Stream messages replayed.
    pub events: u64,
    /// Messages that could not be read (they went to the DLQ in the live path too).
    pub unreadable: u64,
    /// Copies of an event already replayed (same envelope id: a relay published its row twice),
    /// skipped.
    pub duplicates: u64,
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

/// A seat whose live status differs from the one its events give.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Difference {
    pub seat_id: SeatId,
    pub live: SeatStatus,
    pub rebuilt: SeatStatus,
}

/// What a replay gave.
struct Replayed {
    view: View,
    events: u64,
    unreadable: u64,
    duplicates: u64,
}

/// Every seat of `live` as it was before any seat event: available.
fn fresh(live: &View) -> View {
    let available = ViewSeat {
        status: SeatStatus::Available,
        reservation: None,
        version: 0,
    };
    live.iter()
        .map(|(id, (schedule, _))| (*id, (*schedule, available.clone())))
        .collect()
}

/// Replays `stream` up to sequence `up_to` into `view`.
async fn replay(
    stream: &jetstream::stream::Stream,
    up_to: u64,
    mut view: View,
) -> anyhow::Result<Replayed> {
    let (mut events, mut unreadable, mut duplicates) = (0u64, 0u64, 0u64);
    if up_to == 0 {
        return Ok(Replayed {
            view,
            events,
            unreadable,
            duplicates,
        });
    }
    let mut seen = std::collections::HashSet::new();
    let name = rebuild_consumer(Context::Concert.service());
    let replay = stream
        .create_consumer(consumer::pull::OrderedConfig {
            name: Some(name.clone()),
            deliver_policy: consumer::DeliverPolicy::All,
            filter_subjects: SUBSCRIPTION.filters(),
            ..Default::default()
        })
        .await
        .context("create the replay consumer")?;
    let mut messages = replay.messages().await.context("replay SEAT")?;
    while let Some(msg) = messages.next().await {
        let msg = msg.context("replay message")?;
        let info = msg.info().ok();
        let seq = info.as_ref().map(|i| i.stream_sequence).unwrap_or(0);
        events += 1;
        match decode::<SeatEvent>(&msg) {
            Ok((envelope, _)) if !seen.insert(envelope.id) => duplicates += 1,
            Ok((_, event)) => update(&mut view, &event).await?,
            Err(_) => unreadable += 1,
        }
        // The replay ends where the stream ended when it began (filtered subjects may skip
        // the last sequences, so also stop when nothing is left pending).
        if seq >= up_to || info.is_none_or(|i| i.pending == 0) {
            break;
        }
    }
    drop(messages);
    // Gone now rather than when the server notices it idle: the next rebuild may start at once.
    if let Err(e) = stream.delete_consumer(&name).await {
        tracing::warn!(error = %e, "delete the replay consumer (the server removes it when idle)");
    }
    Ok(Replayed {
        view,
        events,
        unreadable,
        duplicates,
    })
}

/// Whether another replica's rebuild is replaying SEAT now (its consumer lives until a few
/// seconds after the replay).
pub async fn running_elsewhere(js: &jetstream::Context, service: &str) -> anyhow::Result<bool> {
    let stream = js
        .get_stream(Context::Seat.stream())
        .await
        .context("get SEAT")?;
    Ok(stream
        .consumer_info(rebuild_consumer(service))
        .await
        .is_ok())
}

/// Rebuilds the view from the `SEAT` stream and compares it with the live one; `merge` writes
/// it into the live view.
pub async fn rebuild(
    uow: &UnitOfWork,
    db: &Db,
    js: &jetstream::Context,
    merge: bool,
) -> anyhow::Result<Report> {
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

    let live = store::all(&mut db.reader().await?).await?;
    let replay_started = Instant::now();
    let Replayed {
        view,
        events,
        unreadable,
        duplicates,
    } = replay(&stream, up_to, fresh(&live)).await?;
    let replay = replay_started.elapsed();

    let differences: Vec<Difference> = view
        .iter()
        .filter_map(|(id, (_, rebuilt))| {
            let (_, now) = live.get(id)?;
            // A live row newer than the rebuilt one changed after the replay: not a difference.
            (now.version <= rebuilt.version
                && (now.status, now.reservation) != (rebuilt.status, rebuilt.reservation))
                .then_some(Difference {
                    seat_id: *id,
                    live: now.status,
                    rebuilt: rebuilt.status,
                })
        })
        .collect();

    let seats = view.len();
    uow.run(move |w| {
        Box::pin(async move {
            store::write_rebuilt(w, &view).await?;
            if merge {
                store::merge(w, &view).await?;
            }
            Ok(())
        })
    })
    .await?;

    let elapsed = started.elapsed();
    let rate = |d: std::time::Duration| (events as f64 / d.as_secs_f64().max(1e-6)) as u64;
    Ok(Report {
        events,
        unreadable,
        duplicates,
        seats,
        up_to_seq: up_to,
        differences,
        applied: merge,
        elapsed_ms: elapsed.as_millis() as u64,
        events_per_sec: rate(elapsed),
        replay_ms: replay.as_millis() as u64,
        replay_events_per_sec: rate(replay),
    })
}
