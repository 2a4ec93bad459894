//! expiry: the deadlines of holds and queue tokens. They live in the database and a periodic
//! scan enforces them, so they survive restarts and any replica may run the scan: each release
//! re-checks the hold inside its write transaction, so a hold expires exactly once.

use crate::domain::is_due;
use crate::events::release;
use crate::http::Limits;
use crate::store;
use contracts::ReleaseReason;
use platform::db::Db;
use platform::outbox::Outbox;
use time::OffsetDateTime;

/// Most holds released by one scan; the next scan takes the rest.
const SCAN_LIMIT: i64 = 256;

/// Releases live holds past their deadline with `seat.released` (expired).
pub async fn expire_holds(db: &Db, outbox: &Outbox, limits: &Limits) -> anyhow::Result<usize> {
    let now = OffsetDateTime::now_utc();
    let due = store::due_holds(db.pool(), platform::to_millis(now), SCAN_LIMIT).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let mut tx = db.begin().await?;
    let mut released = 0;
    for r in due {
        // Sold, released or expired by someone else since the scan read it: leave it.
        if let Some((hold, seats)) = store::get_hold(&mut tx, r).await?
            && is_due(&hold, now)
        {
            release(
                &mut tx,
                r,
                seats,
                ReleaseReason::Expired,
                None,
                now,
                limits.queue_active_limit,
            )
            .await?;
            released += 1;
        }
    }
    tx.commit().await?;
    outbox.wake();
    Ok(released)
}

/// Expires queue tokens idle for longer than their time to live, and admits who is next.
pub async fn expire_tokens(db: &Db, limits: &Limits) -> anyhow::Result<()> {
    let cutoff = OffsetDateTime::now_utc() - limits.queue_token_ttl;
    let mut tx = db.begin().await?;
    for schedule in store::expire_idle_tokens(&mut tx, platform::to_millis(cutoff)).await? {
        store::admit(&mut tx, &schedule, limits.queue_active_limit).await?;
    }
    tx.commit().await?;
    Ok(())
}
