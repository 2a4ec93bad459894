//! expiry: the deadlines of holds and queue tokens. They live in the database and a periodic
//! scan enforces them, so they survive restarts and any replica may run the scan: each release
//! re-checks the hold inside its unit of work, so a hold expires exactly once.

use crate::holds::{domain::is_due, settle::release, store as holds};
use crate::queue::store as tokens;
use contracts::ReleaseReason;
use nats::db::{Db, to_millis};
use nats::unit_of_work::UnitOfWork;

/// Most holds released by one scan; the next scan takes the rest.
const SCAN_LIMIT: i64 = 256;

/// Releases live holds past their deadline with `seat.released` (expired); answers how many.
pub async fn expire_holds(uow: &UnitOfWork, db: &Db) -> anyhow::Result<usize> {
    let now = db.clock().now_ms();
    let due = holds::due(&mut db.reader().await?, now, SCAN_LIMIT).await?;
    if due.is_empty() {
        return Ok(0);
    }
    uow.run(move |w| {
        Box::pin(async move {
            let mut released = 0;
            for r in due {
                // Sold, released or expired by someone else since the scan read it: leave it.
                if let Some(taken) = holds::get(w, r).await?
                    && is_due(&taken.hold, w.now())
                {
                    release(w, r, taken, ReleaseReason::Expired).await?;
                    released += 1;
                }
            }
            // Counted once the releases are durable (a failed scan is run again).
            let counted = released as u64;
            w.after_commit(move || metrics::counter!("holds_expired_total").increment(counted));
            Ok(released)
        })
    })
    .await
}

/// Expires queue tokens idle for longer than their time to live: the ones behind move up.
pub async fn expire_tokens(uow: &UnitOfWork, ttl: std::time::Duration) -> anyhow::Result<()> {
    uow.run(move |w| {
        Box::pin(async move {
            let cutoff = to_millis(w.now() - ttl);
            tokens::expire_idle(w, cutoff).await.map(drop)
        })
    })
    .await
}
