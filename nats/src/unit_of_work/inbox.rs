//! inbox: the ids of handled events, written in the same transaction as their effects, so a
//! redelivered event is recognised and only acked. A consumer's batch records all its ids in
//! one statement ([`batch`](super::batch)).

use crate::db::sql::Retained;
use crate::db::{Row, Sql, padded_to_power_of_two};
use std::borrow::Cow;
use std::collections::HashSet;
use uuid::Uuid;

pub fn ddl() -> Vec<Cow<'static, str>> {
    vec![
        Cow::Borrowed(
            "CREATE TABLE IF NOT EXISTS inbox (
                consumer TEXT NOT NULL,
                event_id TEXT NOT NULL,
                handled_at BIGINT NOT NULL,
                PRIMARY KEY (consumer, event_id)
            )",
        ),
        Cow::Borrowed("CREATE INDEX IF NOT EXISTS inbox_handled ON inbox (handled_at)"),
    ]
}

/// The handled ids, forgotten after their retention window. An event delivered again after its
/// id is forgotten would be applied again: the window must reach further back than any
/// redelivery, DLQ replay or outbox re-publish.
pub const RETAINED: Retained = Retained {
    table: "inbox",
    key: "consumer, event_id",
    written_at: "handled_at",
};

/// Ids recorded per statement at most (a power of two, like every length it is given).
const ROWS: usize = 256;

/// Records that `consumer` handles `ids` now; answers those it had not handled before (the
/// others are redeliveries, not to be applied again). If the transaction, or the savepoint
/// the caller took, is rolled back, the records go with it. One statement for a batch: its
/// `VALUES` list is as long as the next power of two, the last id repeated to fill it (a few
/// statement shapes; a repeated id is a conflict, so nothing).
pub async fn first_deliveries(
    sql: &mut impl Sql,
    consumer: &str,
    ids: &[Uuid],
    now_ms: i64,
) -> anyhow::Result<HashSet<Uuid>> {
    let mut first = HashSet::with_capacity(ids.len());
    for chunk in ids.chunks(ROWS) {
        let rows = (0..chunk.len().next_power_of_two())
            .map(|i| format!("($1, $2, ${})", i + 3))
            .collect::<Vec<_>>()
            .join(", ");
        let inserted = sql
            .sql_built(format!(
                "INSERT INTO inbox (consumer, handled_at, event_id) VALUES {rows}
                 ON CONFLICT DO NOTHING RETURNING event_id"
            ))
            .bind(consumer)
            .bind(now_ms)
            .bind_all(padded_to_power_of_two(chunk).map(|id| id.to_string()))
            .fetch_all()
            .await?;
        for row in inserted {
            first.insert(row_id(&row)?);
        }
    }
    Ok(first)
}

fn row_id(row: &Row) -> anyhow::Result<Uuid> {
    let id: String = row.get("event_id")?;
    Ok(Uuid::parse_str(&id)?)
}
