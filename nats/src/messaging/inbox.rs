//! inbox: the ids of handled events, written in the same unit of work as their effects, so a
//! redelivered event is recognised and only acked.

use crate::db::Sql;
use std::borrow::Cow;
use uuid::Uuid;

pub fn ddl() -> Vec<Cow<'static, str>> {
    vec![Cow::Borrowed(
        "CREATE TABLE IF NOT EXISTS inbox (
            consumer TEXT NOT NULL,
            event_id TEXT NOT NULL,
            handled_at BIGINT NOT NULL,
            PRIMARY KEY (consumer, event_id)
        )",
    )]
}

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
