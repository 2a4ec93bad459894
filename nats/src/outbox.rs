//! outbox: events are written in the same transaction as the state change that caused them; a
//! relay publishes pending rows (pipelined, `Nats-Msg-Id` = event id) and marks them published.
//! A crash between commit and publish loses nothing; one between publish and mark re-publishes,
//! which the broker drops inside its duplicate window and consumers' inboxes drop after it.
//! Replicas of a service share one database and one outbox: a lease in the database lets one
//! relay at a time publish, so events reach the stream in commit order and once.

use crate::db::{Backend, Db, Tx};
use anyhow::Context as _;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage};
use contracts::Message;
use futures::future::join_all;
use sqlx::Row;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How many rows one relay pass publishes before it waits for their acks.
const RELAY_BATCH: i64 = 256;
/// How often the relay looks for rows without being woken (rows committed by another process).
const POLL: Duration = Duration::from_millis(250);
/// How long a relay's lease lasts without renewal: a crashed relay's replica takes over after it.
const LEASE_MS: i64 = 3_000;

pub(crate) fn ddl(backend: Backend) -> [String; 4] {
    // The only difference between the backends: how the publish order is generated.
    let seq = match backend {
        Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
        Backend::Postgres => "BIGSERIAL PRIMARY KEY",
    };
    [
        format!(
            "CREATE TABLE IF NOT EXISTS outbox (
                seq {seq},
                id TEXT NOT NULL UNIQUE,
                subject TEXT NOT NULL,
                headers TEXT NOT NULL,
                payload TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                published_at BIGINT
            )"
        ),
        "CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (seq) WHERE published_at IS NULL"
            .into(),
        "CREATE TABLE IF NOT EXISTS outbox_lease (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            until_ms BIGINT NOT NULL
        )"
        .into(),
        "INSERT INTO outbox_lease (name, holder, until_ms) VALUES ('relay', '', 0)
         ON CONFLICT DO NOTHING"
            .into(),
    ]
}

/// Adds `msg` to the outbox inside the caller's transaction.
pub async fn enqueue(tx: &mut Tx, msg: &Message, now_ms: i64) -> sqlx::Result<()> {
    let headers = serde_json::to_string(&msg.headers).expect("string pairs always serialise");
    // Payloads are JSON written by contracts, hence valid UTF-8.
    let payload = String::from_utf8_lossy(&msg.payload);
    sqlx::query(
        "INSERT INTO outbox (id, subject, headers, payload, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(msg.id.to_string())
    .bind(&msg.subject)
    .bind(headers)
    .bind(payload.as_ref())
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Message headers from name/value pairs.
pub fn header_map(pairs: &[(String, String)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.insert(name.as_str(), value.as_str());
    }
    headers
}

/// A pending row, as read back for publishing.
#[derive(Debug, Clone)]
pub struct Pending {
    pub seq: i64,
    pub subject: String,
    pub headers: Vec<(String, String)>,
    pub payload: String,
}

/// The relay of one service: wake it after a commit that wrote outbox rows.
#[derive(Clone)]
pub struct Outbox {
    db: Db,
    wake: Arc<Notify>,
    /// This process's name in the lease.
    holder: String,
}

impl Outbox {
    pub fn new(db: Db) -> Self {
        Outbox {
            db,
            wake: Arc::new(Notify::new()),
            holder: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// Takes or renews the relay lease; `true` while this process may publish.
    async fn lead(&self, now_ms: i64) -> anyhow::Result<bool> {
        let taken = sqlx::query(
            "UPDATE outbox_lease SET holder = $1, until_ms = $2
             WHERE name = 'relay' AND (holder = $1 OR until_ms < $3)",
        )
        .bind(&self.holder)
        .bind(now_ms + LEASE_MS)
        .bind(now_ms)
        .execute(self.db.writer())
        .await
        .context("take the relay lease")?;
        Ok(taken.rows_affected() == 1)
    }

    /// Gives the lease up at shutdown so a replica takes over at once.
    async fn resign(&self) {
        let _ = sqlx::query(
            "UPDATE outbox_lease SET until_ms = 0 WHERE name = 'relay' AND holder = $1",
        )
        .bind(&self.holder)
        .execute(self.db.writer())
        .await;
    }

    /// Tells the relay there is something to publish (call after commit).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub async fn pending(&self, limit: i64) -> anyhow::Result<Vec<Pending>> {
        let rows = sqlx::query(
            "SELECT seq, subject, headers, payload FROM outbox
             WHERE published_at IS NULL ORDER BY seq LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.db.pool())
        .await
        .context("read pending outbox rows")?;
        rows.into_iter()
            .map(|row| {
                let headers: String = row.try_get("headers")?;
                Ok(Pending {
                    seq: row.try_get("seq")?,
                    subject: row.try_get("subject")?,
                    headers: serde_json::from_str(&headers).context("outbox headers")?,
                    payload: row.try_get("payload")?,
                })
            })
            .collect()
    }

    /// Publishes `rows` with every ack in flight at once, then waits for the acks; returns the
    /// sequence numbers the broker stored (or recognised as duplicates).
    pub async fn publish(&self, js: &jetstream::Context, rows: &[Pending]) -> Vec<i64> {
        let mut in_flight = Vec::with_capacity(rows.len());
        for row in rows {
            let publish = PublishMessage::build()
                .headers(header_map(&row.headers))
                .payload(row.payload.clone().into());
            match js.send_publish(row.subject.clone(), publish).await {
                Ok(ack) => in_flight.push((row.seq, ack)),
                Err(e) => {
                    // Keep order: stop at the first row that could not be sent.
                    tracing::warn!(error = %e, subject = %row.subject, "outbox publish failed");
                    break;
                }
            }
        }
        let acks = join_all(in_flight.into_iter().map(|(seq, ack)| async move {
            match ack.await {
                Ok(_) => Some(seq),
                Err(e) => {
                    tracing::warn!(error = %e, seq, "outbox publish not acknowledged");
                    None
                }
            }
        }))
        .await;
        acks.into_iter().flatten().collect()
    }

    pub async fn mark_published(&self, seqs: &[i64], now_ms: i64) -> anyhow::Result<()> {
        if seqs.is_empty() {
            return Ok(());
        }
        // One statement for the whole batch: every statement is a round trip to the database
        // (on SQLite, to its worker thread), and this runs after every relay pass.
        let list = seqs
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE outbox SET published_at = $1 WHERE seq IN ({list})"
        )))
        .bind(now_ms)
        .execute(self.db.writer())
        .await
        .context("mark outbox rows published")?;
        metrics::counter!("outbox_published_total").increment(seqs.len() as u64);
        Ok(())
    }

    /// One relay pass: publish up to a batch of pending rows; returns how many were published.
    pub async fn relay_once(&self, js: &jetstream::Context) -> anyhow::Result<usize> {
        let rows = self.pending(RELAY_BATCH).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let done = self.publish(js, &rows).await;
        self.mark_published(&done, crate::to_millis(time::OffsetDateTime::now_utc()))
            .await?;
        if done.len() < rows.len() {
            anyhow::bail!(
                "{} of {} outbox rows not published yet",
                rows.len() - done.len(),
                rows.len()
            );
        }
        Ok(done.len())
    }

    /// Relays until `shutdown` while it holds the lease, then flushes what is pending once more.
    pub async fn run(self, js: jetstream::Context, shutdown: CancellationToken) {
        let mut failures = 0u32;
        // Until when this relay holds the lease, as far as it knows; renewed at half-time.
        let mut leading_until = 0i64;
        loop {
            let now = crate::to_millis(time::OffsetDateTime::now_utc());
            if now > leading_until - LEASE_MS / 2 {
                leading_until = match self.lead(now).await {
                    Ok(true) => now + LEASE_MS,
                    Ok(false) => 0,
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "outbox lease");
                        0
                    }
                };
            }
            if leading_until > 0 {
                match self.relay_once(&js).await {
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
            let wait = if failures == 0 {
                POLL
            } else {
                // Back off while the broker is unreachable, up to 2 s.
                Duration::from_millis(100u64 << failures.min(4)).min(Duration::from_secs(2))
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified(), if failures == 0 && leading_until > 0 => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        // Graceful shutdown: publish what the last requests committed, then hand over.
        let now = crate::to_millis(time::OffsetDateTime::now_utc());
        if self.lead(now).await.unwrap_or(false) {
            while let Ok(n) = self.relay_once(&js).await {
                if n == 0 {
                    break;
                }
            }
            self.resign().await;
        }
    }
}

/// Writes `event` (produced by `source`, caused by `causation_id`) to the outbox in `tx`.
pub async fn emit<E: contracts::Event>(
    tx: &mut Tx,
    source: &str,
    event: &E,
    causation_id: Option<uuid::Uuid>,
    now: time::OffsetDateTime,
) -> sqlx::Result<()> {
    let msg = Message::new(source, event, causation_id, now);
    enqueue(tx, &msg, crate::to_millis(now)).await
}
