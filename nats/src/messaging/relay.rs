//! relay: publishes the outbox. Woken after every commit that wrote events, it publishes the
//! rows that commit handed over in memory when they follow the last row it published with
//! nothing between (rows just ahead of a gap wait for it a moment, see [`super::reorder`]);
//! otherwise (at start, after a failure, on a gap that does not fill, and polling as a fallback
//! for rows committed by another process) it reads the pending rows back from the table. Rows go
//! out pipelined with `Nats-Msg-Id` = event id; the next commit marks them published (or the
//! relay itself, when no commit comes soon). A crash between commit and publish loses nothing;
//! one between publish and mark re-publishes, which the broker drops inside its duplicate window
//! and consumers' inboxes drop after it. Replicas of a service share one database and one
//! outbox: a lease in the database lets one relay at a time publish, so events reach the stream
//! in commit order and once.

use super::reorder::{GAP_WAIT, Reorder, Take};
use crate::db::Sql;
use crate::traces;
use crate::unit_of_work::outbox::{self, Pending, Published};
use crate::unit_of_work::{Committed, UnitOfWork};
use async_nats::HeaderMap;
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::{self, message::PublishMessage};
use futures::future::join_all;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

/// How many rows one relay pass publishes before it waits for their acks.
const RELAY_BATCH: i64 = 256;
/// How often the relay looks for rows without being woken (rows committed by another process).
const POLL: Duration = Duration::from_millis(250);
/// How long a relay's lease lasts without renewal: a crashed relay's replica takes over after it.
const LEASE_MS: i64 = 3_000;
/// How long published rows wait for a commit to mark them before the relay marks them itself.
const MARK_AFTER: Duration = Duration::from_millis(100);
/// How many times in a row the broker may refuse one row before it is set aside.
const PARK_AFTER: u32 = 3;

/// What became of a relay pass's publishing.
pub struct Sent {
    /// The rows the broker stored (or recognised as duplicates).
    pub published: Vec<i64>,
    /// The first row that could not be published, why, and whether the fault is the row's own
    /// (larger than the broker takes) rather than the broker's.
    pub failed: Option<(i64, String, bool)>,
}

/// Whether a publish error is the row's own fault, so it will fail the same way every time: the
/// message is larger than the server's `max_payload` or the stream's `max_msg_size`. Anything else
/// is the broker's state and passes: no stream answering (a leader election, a node down, a stream
/// not created yet), a timeout, a full stream. Those rows wait, in order, however long it takes.
pub fn row_fault(e: &PublishError) -> bool {
    match e.kind() {
        PublishErrorKind::MaxPayloadExceeded => true,
        PublishErrorKind::Other => std::error::Error::source(e)
            .and_then(|source| source.downcast_ref::<jetstream::Error>())
            .is_some_and(|js| js.error_code() == ErrorCode::STREAM_MESSAGE_EXCEEDS_MAXIMUM),
        _ => false,
    }
}

/// Message headers from name/value pairs.
pub fn header_map(pairs: &[(String, String)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.insert(name.as_str(), value.as_str());
    }
    headers
}

/// The relay of one service process.
#[derive(Clone)]
pub struct Relay {
    uow: UnitOfWork,
    committed: Committed,
    published: Published,
    /// The row that failed last and how many times in a row.
    failing: Arc<Mutex<Option<(i64, u32)>>>,
    /// Committed rows in order, and where the published ones end.
    order: Arc<Mutex<Reorder>>,
    /// This process's name in the lease.
    holder: String,
}

impl Relay {
    pub fn new(uow: UnitOfWork) -> Self {
        Relay {
            committed: uow.committed(),
            published: uow.published(),
            failing: Arc::default(),
            order: Arc::default(),
            uow,
            holder: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// Marks the published rows in a unit of work of its own (any commit marks them).
    async fn mark(&self) -> anyhow::Result<()> {
        self.uow.run(|_| Box::pin(async { Ok(()) })).await
    }

    /// Takes or renews the relay lease; `true` while this process may publish.
    async fn lead(&self) -> anyhow::Result<bool> {
        let holder = self.holder.clone();
        let taken = self
            .uow
            .run(move |w| {
                Box::pin(async move {
                    let now = w.now_ms();
                    let rows = w
                        .sql(
                            "UPDATE outbox_lease SET holder = $1, until_ms = $2
                             WHERE name = 'relay' AND (holder = $1 OR until_ms < $3)",
                        )
                        .bind(&holder)
                        .bind(now + LEASE_MS)
                        .bind(now)
                        .execute()
                        .await?;
                    Ok(rows == 1)
                })
            })
            .await?;
        Ok(taken)
    }

    /// Gives the lease up at shutdown so a replica takes over at once.
    async fn resign(&self) {
        let holder = self.holder.clone();
        let resigned = self
            .uow
            .run(move |w| {
                Box::pin(async move {
                    w.sql(
                        "UPDATE outbox_lease SET until_ms = 0 WHERE name = 'relay' AND holder = $1",
                    )
                    .bind(&holder)
                    .execute()
                    .await?;
                    Ok(())
                })
            })
            .await;
        if let Err(e) = resigned {
            tracing::warn!(error = %format!("{e:#}"), "give up the relay lease");
        }
    }

    /// Publishes `rows` in order with every ack in flight at once, then waits for the acks; it
    /// stops sending at the first row that cannot be sent.
    pub async fn publish(js: &jetstream::Context, rows: &[Pending]) -> Sent {
        let mut in_flight = Vec::with_capacity(rows.len());
        let mut failed = None;
        for row in rows {
            let publish = PublishMessage::build()
                .headers(header_map(&row.headers))
                .payload(row.payload.clone().into());
            // A span in the event's trace, when spans are exported (nothing is parsed else).
            let span =
                tracing::info_span!(target: traces::TARGET, "publish", subject = %row.subject);
            let traceparent = row
                .headers
                .iter()
                .find(|(k, _)| k == contracts::envelope::header::TRACEPARENT);
            traces::follow(&span, traceparent.map(|(_, v)| v.as_str()));
            let sent = js
                .send_publish(row.subject.clone(), publish)
                .instrument(span)
                .await;
            match sent {
                Ok(ack) => in_flight.push((row.seq, ack)),
                Err(e) => {
                    // Keep order: stop at the first row that could not be sent.
                    tracing::warn!(error = %e, subject = %row.subject, "outbox publish failed");
                    failed = Some((row.seq, e.to_string(), row_fault(&e)));
                    break;
                }
            }
        }
        let acks = join_all(in_flight.into_iter().map(|(seq, ack)| async move {
            ack.await.map(|_| seq).map_err(|e| {
                tracing::warn!(error = %e, seq, "outbox publish not acknowledged");
                (seq, e.to_string(), row_fault(&e))
            })
        }))
        .await;
        let mut published = Vec::with_capacity(acks.len());
        for ack in acks {
            match ack {
                Ok(seq) => published.push(seq),
                // The first refused row is the one to blame.
                Err(f) if failed.as_ref().is_none_or(|(s, _, _)| f.0 < *s) => failed = Some(f),
                Err(_) => {}
            }
        }
        Sent { published, failed }
    }

    /// Counts a failure of row `seq`; sets the row aside once the broker has refused it the same
    /// way `PARK_AFTER` times in a row, so it no longer holds back the rows after it.
    async fn failed(&self, seq: i64, error: &str, row_fault: bool) -> anyhow::Result<()> {
        let times = {
            let mut failing = self
                .failing
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let times = match *failing {
                Some((s, n)) if s == seq && row_fault => n + 1,
                _ if row_fault => 1,
                _ => 0,
            };
            *failing = (times > 0).then_some((seq, times));
            times
        };
        if times < PARK_AFTER {
            return Ok(());
        }
        let reason = error.to_owned();
        self.uow
            .run(move |w| {
                Box::pin(async move {
                    let now = w.now_ms();
                    outbox::park(w, seq, &reason, now).await
                })
            })
            .await?;
        metrics::counter!("outbox_parked_total").increment(1);
        tracing::error!(seq, %error, "an outbox row the broker keeps refusing was set aside (table outbox_parked); the rows after it go on");
        Ok(())
    }

    /// One relay pass over the table: publish up to a batch of pending rows; returns how many
    /// were published.
    pub async fn relay_once(&self, js: &jetstream::Context) -> anyhow::Result<usize> {
        // Rows published but not marked yet are still pending in the table: skip them.
        let limit = RELAY_BATCH + self.published.unmarked() as i64;
        // The table holds every committed row, those waiting behind a gap too.
        self.order().reset();
        let pending = outbox::pending(&mut self.uow.db().reader().await?, limit).await?;
        let mut rows = self.published.unpublished(pending);
        rows.truncate(RELAY_BATCH as usize);
        self.send(js, rows).await
    }

    /// One relay pass over what this process committed since the last: the rows handed over
    /// in memory that follow the last row published with nothing between (no row of another
    /// process, none dropped); a pass over the table when a gap does not fill.
    async fn relay_committed(&self, js: &jetstream::Context) -> anyhow::Result<usize> {
        let committed = self.committed.take();
        let take = self.order().take(committed, std::time::Instant::now());
        match take {
            Take::Rows(rows) => self.send(js, rows).await,
            Take::Wait => Ok(0),
            Take::Scan => self.relay_once(js).await,
        }
    }

    fn order(&self) -> std::sync::MutexGuard<'_, Reorder> {
        self.order
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Publishes `rows` (in order) and notes them for marking; returns how many were published.
    async fn send(&self, js: &jetstream::Context, rows: Vec<Pending>) -> anyhow::Result<usize> {
        let Some(last) = rows.last().map(|r| r.seq) else {
            return Ok(0);
        };
        let sent = Self::publish(js, &rows).await;
        let published = sent.published.len();
        self.published.add(&sent.published);
        metrics::counter!("outbox_published_total").increment(published as u64);
        if published < rows.len() {
            // Back to reading the table, which knows which rows are still pending.
            self.order().reset();
            if let Some((seq, error, row_fault)) = &sent.failed {
                self.failed(*seq, error, *row_fault).await?;
            }
            anyhow::bail!(
                "{} of {} outbox rows not published yet",
                rows.len() - published,
                rows.len()
            );
        }
        self.order().published_through(last);
        Ok(published)
    }

    /// Relays until `shutdown` while it holds the lease, then flushes what is pending once more.
    pub async fn run(self, js: jetstream::Context, shutdown: CancellationToken) {
        let mut failures = 0u32;
        // Until when this relay holds the lease, as far as it knows; renewed at half-time.
        let mut leading_until = 0i64;
        // Whether the next pass reads the table rather than what this process committed, and
        // when it last did: at least every POLL, busy or not, for rows of other processes.
        let mut scan = true;
        let mut scanned = tokio::time::Instant::now();
        loop {
            let now = self.uow.db().clock().now_ms();
            if now > leading_until - LEASE_MS / 2 {
                leading_until = match self.lead().await {
                    Ok(true) => now + LEASE_MS,
                    Ok(false) => 0,
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "outbox lease");
                        0
                    }
                };
            }
            if leading_until == 0 {
                // Another process publishes: what this one commits is read from the table if
                // it leads again.
                self.committed.take();
                self.order().reset();
            } else {
                let pass = match scan || scanned.elapsed() >= POLL {
                    true => {
                        scanned = tokio::time::Instant::now();
                        self.relay_once(&js).await
                    }
                    false => self.relay_committed(&js).await,
                };
                match pass {
                    Ok(n) if n > 0 => {
                        failures = 0;
                        continue;
                    }
                    Ok(_) => failures = 0,
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        tracing::warn!(error = %format!("{e:#}"), "outbox relay");
                    }
                }
            }
            // Published rows are marked by the next commit; if none comes soon, by the relay.
            let marks_waiting = self.published.waiting();
            let wait = if failures > 0 {
                // Back off while the broker is unreachable, up to 2 s.
                Duration::from_millis(100u64 << failures.min(4)).min(Duration::from_secs(2))
            } else if self.order().holding() {
                GAP_WAIT
            } else if marks_waiting {
                MARK_AFTER
            } else {
                POLL
            };
            let timed_out = tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.committed.wait(), if failures == 0 && leading_until > 0 => false,
                _ = tokio::time::sleep(wait) => true,
            };
            scan = timed_out || failures > 0;
            if timed_out
                && self.published.waiting()
                && let Err(e) = self.mark().await
            {
                tracing::warn!(error = %format!("{e:#}"), "mark published outbox rows");
            }
        }
        // Graceful shutdown: publish what the last requests committed, mark it, then hand over.
        if self.lead().await.unwrap_or(false) {
            while let Ok(n) = self.relay_once(&js).await {
                if n == 0 {
                    break;
                }
            }
            if let Err(e) = self.mark().await {
                tracing::warn!(error = %format!("{e:#}"), "mark published outbox rows");
            }
            self.resign().await;
        }
    }
}
