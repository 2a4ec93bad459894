//! outbox: the table of events waiting to be published. The unit of work writes a unit's events
//! here in the same transaction as its effects; the relay ([`crate::messaging::relay`]) reads
//! them back in commit order and publishes them; the next commit marks them published
//! ([`Published`]).

use crate::db::{Backend, Sql, padded_to_power_of_two, placeholders};
use contracts::Message;
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// The outbox and the relay's lease, created if missing.
pub fn ddl(backend: Backend) -> Vec<Cow<'static, str>> {
    // The only difference between the backends: how the publish order is generated.
    let seq = match backend {
        Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
        Backend::Postgres => "BIGSERIAL PRIMARY KEY",
    };
    vec![
        Cow::Owned(format!(
            "CREATE TABLE IF NOT EXISTS outbox (
                seq {seq},
                id TEXT NOT NULL UNIQUE,
                subject TEXT NOT NULL,
                headers TEXT NOT NULL,
                payload TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                published_at BIGINT
            )"
        )),
        Cow::Borrowed(
            "CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (seq) WHERE published_at IS NULL",
        ),
        // Published rows are deleted once older than the retention window (see `sweep`).
        Cow::Borrowed(
            "CREATE INDEX IF NOT EXISTS outbox_published ON outbox (published_at)
             WHERE published_at IS NOT NULL",
        ),
        Cow::Borrowed(
            "CREATE TABLE IF NOT EXISTS outbox_lease (
                name TEXT PRIMARY KEY,
                holder TEXT NOT NULL,
                until_ms BIGINT NOT NULL
            )",
        ),
        Cow::Borrowed(
            "INSERT INTO outbox_lease (name, holder, until_ms) VALUES ('relay', '', 0)
             ON CONFLICT DO NOTHING",
        ),
        // Rows the broker keeps refusing, set aside so they do not hold the others back.
        Cow::Borrowed(
            "CREATE TABLE IF NOT EXISTS outbox_parked (
                seq BIGINT PRIMARY KEY,
                reason TEXT NOT NULL,
                parked_at BIGINT NOT NULL
            )",
        ),
    ]
}

/// Rows per INSERT: 5 parameters a row, well under every backend's limit.
const INSERT_ROWS: usize = 256;

/// Splits `rows` into runs whose lengths are powers of two (largest first, at most `most`, a
/// power of two too): statements of a few shapes only. Each shape is a statement PostgreSQL
/// prepares and each connection caches (sqlx keeps a hundred); a shape for every count of rows
/// made 139 shapes of the insert, and as many of the marks, in one sale.
fn runs<T>(mut rows: &[T], most: usize) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if rows.is_empty() {
            return None;
        }
        let take = most.min(1 << rows.len().ilog2());
        let (run, rest) = rows.split_at(take);
        rows = rest;
        Some(run)
    })
}

/// Writes `messages` to the outbox, in order, inside the caller's transaction; answers them as
/// rows, with the order each was given (for the relay to publish once they are committed).
pub async fn insert(
    sql: &mut impl Sql,
    messages: &[Message],
    now: i64,
) -> anyhow::Result<Vec<Pending>> {
    let mut written = Vec::with_capacity(messages.len());
    for chunk in runs(messages, INSERT_ROWS) {
        let rows = (0..chunk.len())
            .map(|i| format!("({})", placeholders(i * 5 + 1, 5)))
            .collect::<Vec<_>>()
            .join(", ");
        let mut insert = sql.sql_built(format!(
            "INSERT INTO outbox (id, subject, headers, payload, created_at) VALUES {rows}
             RETURNING seq, id"
        ));
        // Payloads are JSON written by contracts, hence valid UTF-8.
        let payloads: Vec<String> = chunk
            .iter()
            .map(|msg| String::from_utf8_lossy(&msg.payload).into_owned())
            .collect();
        for (msg, payload) in chunk.iter().zip(&payloads) {
            let headers = serde_json::to_string(&msg.headers)?;
            insert = insert
                .bind(msg.id)
                .bind(&msg.subject)
                .bind(headers)
                .bind(payload)
                .bind(now);
        }
        // RETURNING gives no order: each row is matched to its message by id.
        let mut seqs = std::collections::HashMap::with_capacity(chunk.len());
        for row in insert.fetch_all().await? {
            seqs.insert(row.parse::<uuid::Uuid>("id")?, row.get::<i64>("seq")?);
        }
        for (msg, payload) in chunk.iter().zip(payloads) {
            let seq = *seqs
                .get(&msg.id)
                .ok_or_else(|| anyhow::anyhow!("the outbox did not return event {}", msg.id))?;
            written.push(Pending {
                seq,
                subject: msg.subject.clone(),
                headers: msg.headers.clone(),
                payload,
            });
        }
    }
    Ok(written)
}

/// A row waiting to be published, as read back by the relay.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub seq: i64,
    pub subject: String,
    pub headers: Vec<(String, String)>,
    pub payload: String,
}

/// Up to `limit` rows not yet published, in commit order.
pub async fn pending(sql: &mut impl Sql, limit: i64) -> anyhow::Result<Vec<Pending>> {
    let rows = sql
        .sql(
            "SELECT seq, subject, headers, payload FROM outbox
             WHERE published_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM outbox_parked p WHERE p.seq = outbox.seq)
             ORDER BY seq LIMIT $1",
        )
        .bind(limit)
        .fetch_all()
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Pending {
                seq: row.get("seq")?,
                subject: row.get("subject")?,
                headers: serde_json::from_str(&row.get::<String>("headers")?)?,
                payload: row.get("payload")?,
            })
        })
        .collect()
}

/// Rows not published yet, and of those the ones set aside: zero and zero once a service has
/// handed everything it committed to the broker.
pub async fn backlog(sql: &mut impl Sql) -> anyhow::Result<(i64, i64)> {
    let row = sql
        .sql(
            "SELECT (SELECT COUNT(*) FROM outbox WHERE published_at IS NULL) AS pending,
                    (SELECT COUNT(*) FROM outbox_parked) AS parked",
        )
        .fetch_one()
        .await?;
    Ok((row.get("pending")?, row.get("parked")?))
}

/// Rows not published yet, and when the oldest of them was committed (ms since the epoch).
pub async fn oldest(sql: &mut impl Sql) -> anyhow::Result<(i64, Option<i64>)> {
    let row = sql
        .sql("SELECT COUNT(*) AS pending, MIN(created_at) AS oldest FROM outbox WHERE published_at IS NULL")
        .fetch_one()
        .await?;
    Ok((row.get("pending")?, row.get("oldest")?))
}

/// Sets row `seq` aside: the relay publishes the rows after it.
pub async fn park(sql: &mut impl Sql, seq: i64, reason: &str, now_ms: i64) -> anyhow::Result<()> {
    sql.sql(
        "INSERT INTO outbox_parked (seq, reason, parked_at) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(seq)
    .bind(reason)
    .bind(now_ms)
    .execute()
    .await?;
    Ok(())
}

/// Rows deleted per statement of a sweep: short transactions, so the units of work waiting for
/// the writer are not held up.
pub const SWEEP_ROWS: i64 = 5_000;

/// Deletes up to [`SWEEP_ROWS`] rows published before `cutoff_ms`; returns how many. Rows never
/// published (pending or set aside) stay whatever their age.
pub async fn sweep(sql: &mut impl Sql, cutoff_ms: i64) -> anyhow::Result<u64> {
    sql.sql(
        "DELETE FROM outbox WHERE seq IN (
             SELECT seq FROM outbox WHERE published_at < $1 LIMIT $2)",
    )
    .bind(cutoff_ms)
    .bind(SWEEP_ROWS)
    .execute()
    .await
}

/// Marks the published rows committed in `[from_ms, to_ms)` as not published, so the relay
/// publishes them again, in their order, with their ids (consumers recognise the ones they have
/// handled); returns how many. For a broker that lost acknowledged events (a power cut with
/// lazy fsync, a restored backup): the rows are there for as long as the retention window.
pub async fn republish(sql: &mut impl Sql, from_ms: i64, to_ms: i64) -> anyhow::Result<u64> {
    sql.sql(
        "UPDATE outbox SET published_at = NULL
         WHERE created_at >= $1 AND created_at < $2 AND published_at IS NOT NULL",
    )
    .bind(from_ms)
    .bind(to_ms)
    .execute()
    .await
}

/// Rows marked per UPDATE at most (a power of two).
const MARK_ROWS: usize = 512;

/// Marks rows published: an `IN` list whose length is a power of two, the last row repeated
/// to fill it (see [`runs`] for why the shapes are few). One such UPDATE is a write sent later
/// (`Statement::execute_later`): before a commit's [`insert`] it goes with it, one round trip
/// for both. More are sent at once: one statement with them all could pass a backend's limit
/// of parameters.
pub async fn mark_published(sql: &mut impl Sql, seqs: &[i64], now_ms: i64) -> anyhow::Result<()> {
    let later = seqs.len() <= MARK_ROWS;
    for chunk in seqs.chunks(MARK_ROWS) {
        let update = sql
            .sql_built(format!(
                "UPDATE outbox SET published_at = $1 WHERE seq IN ({})",
                placeholders(2, chunk.len().next_power_of_two())
            ))
            .bind(now_ms)
            .bind_all(padded_to_power_of_two(chunk));
        if later {
            update.execute_later().await?;
        } else {
            update.execute().await?;
        }
    }
    Ok(())
}

/// Rows the relay has published and that are not marked published yet. Marking them costs a
/// write, so the next commit of any unit of work marks them in its own transaction; the relay
/// marks them itself only when no commit comes soon. Until then the relay does not publish them
/// again. (A crash before they are marked re-publishes them: the broker drops the copies inside
/// its duplicate window and consumers' inboxes after it.)
#[derive(Clone, Default)]
pub struct Published(Arc<Mutex<Rows>>);

#[derive(Default)]
struct Rows {
    /// Published, waiting for a commit to mark them.
    waiting: BTreeSet<i64>,
    /// Being marked by a commit under way.
    marking: BTreeSet<i64>,
}

impl Published {
    fn rows(&self) -> std::sync::MutexGuard<'_, Rows> {
        // A panic while holding this lock leaves the sets consistent: each method changes them
        // in one step.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The broker has stored these rows.
    pub fn add(&self, seqs: &[i64]) {
        self.rows().waiting.extend(seqs);
    }

    /// How many rows wait to be marked, or are being marked.
    pub fn unmarked(&self) -> usize {
        let rows = self.rows();
        rows.waiting.len() + rows.marking.len()
    }

    /// Whether rows wait for a commit to mark them.
    pub fn waiting(&self) -> bool {
        !self.rows().waiting.is_empty()
    }

    /// `pending` without the rows already published.
    pub fn unpublished(&self, pending: Vec<Pending>) -> Vec<Pending> {
        let rows = self.rows();
        pending
            .into_iter()
            .filter(|p| !rows.waiting.contains(&p.seq) && !rows.marking.contains(&p.seq))
            .collect()
    }

    /// The rows a commit is about to mark.
    pub(super) fn take(&self) -> Vec<i64> {
        let mut rows = self.rows();
        let seqs = std::mem::take(&mut rows.waiting);
        rows.marking.extend(&seqs);
        seqs.into_iter().collect()
    }

    /// The commit that marked `seqs` is durable.
    pub(super) fn marked(&self, seqs: &[i64]) {
        let mut rows = self.rows();
        for seq in seqs {
            rows.marking.remove(seq);
        }
    }

    /// The commit that was to mark `seqs` failed: the next one will.
    pub(super) fn put_back(&self, seqs: &[i64]) {
        let mut rows = self.rows();
        for seq in seqs {
            rows.marking.remove(seq);
        }
        rows.waiting.extend(seqs);
    }
}

/// Said after a commit that wrote events, with the rows it wrote: the relay waits on it and
/// publishes them from memory instead of reading them back.
#[derive(Clone, Default)]
pub struct Committed(Arc<CommittedRows>);

#[derive(Default)]
struct CommittedRows {
    told: Notify,
    rows: std::sync::Mutex<std::collections::VecDeque<Pending>>,
}

/// Committed rows the relay has not taken at most; beyond it they are dropped, and the relay
/// reads them from the table instead (a relay that does not lead takes none).
const COMMITTED_ROWS: usize = 50_000;

impl Committed {
    /// Resolves after the next commit that wrote events (or at once if one came since the last
    /// wait).
    pub async fn wait(&self) {
        self.0.told.notified().await
    }

    /// The rows committed since the last call, in commit order (with a gap in their order
    /// where rows were dropped).
    pub fn take(&self) -> Vec<Pending> {
        self.rows().drain(..).collect()
    }

    fn rows(&self) -> std::sync::MutexGuard<'_, std::collections::VecDeque<Pending>> {
        self.0
            .rows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn tell(&self, written: Vec<Pending>) {
        {
            let mut rows = self.rows();
            if rows.len() + written.len() <= COMMITTED_ROWS {
                rows.extend(written);
            }
        }
        self.0.told.notify_one();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rows_go_in_runs_of_a_few_shapes_and_in_order() {
        let rows: Vec<u32> = (0..13).collect();
        let lens = |most| {
            super::runs(&rows, most)
                .map(<[u32]>::len)
                .collect::<Vec<_>>()
        };
        assert_eq!(lens(256), [8, 4, 1]);
        assert_eq!(lens(4), [4, 4, 4, 1]);
        assert_eq!(
            super::runs(&rows, 4).flatten().copied().collect::<Vec<_>>(),
            rows
        );
        assert_eq!(super::runs(&rows[..0], 8).count(), 0);
    }
}
