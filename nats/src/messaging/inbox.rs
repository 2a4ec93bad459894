//! inbox: the ids of handled events, written in the same unit of work as their effects, so a
//! redelivered event is recognised and only acked.

use crate::db::Sql;
use crate::db::sql::Retained;
use std::borrow::Cow;
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

/// Records that `consumer` handles `event_id` now; `false` means it already had (a redelivery)
/// and the caller must not apply the event again. If the unit of work does not succeed, the
/// record goes with it.
pub async fn first_delivery(
    sql: &mut impl Sql,
    consumer: &str,
    event_id: Uuid,
    now_ms: i64,
) -> anyhow::Result<bool> {
    let inserted = sql
        .sql(
            "INSERT INTO inbox (consumer, event_id, handled_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(consumer)
        .bind(event_id)
        .bind(now_ms)
        .execute()
        .await?;
    Ok(inserted == 1)
}
