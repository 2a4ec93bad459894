//! inbox: the ids of handled events, written in the same transaction as their effects, so a
//! redelivered event is recognised and only acked.

use crate::db::Tx;
use uuid::Uuid;

pub(crate) const DDL: &[&str] = &["CREATE TABLE IF NOT EXISTS inbox (
        consumer TEXT NOT NULL,
        event_id TEXT NOT NULL,
        handled_at BIGINT NOT NULL,
        PRIMARY KEY (consumer, event_id)
    )"];

/// Records that `consumer` handles `event_id` now; `false` means it already had (a redelivery)
/// and the caller must not apply the event again.
pub async fn first_delivery(
    tx: &mut Tx,
    consumer: &str,
    event_id: Uuid,
    now_ms: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO inbox (consumer, event_id, handled_at) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(consumer)
    .bind(event_id.to_string())
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Takes back a record made in this transaction, for an event that is to be retried.
pub async fn forget(tx: &mut Tx, consumer: &str, event_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM inbox WHERE consumer = $1 AND event_id = $2")
        .bind(consumer)
        .bind(event_id.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
