//! audit: what reservation-svc holds, read for the whole-system checks (the invariant checker,
//! the chaos tool, the bench) so that none of them needs to know its tables.

use crate::store::{self, Summary};
use nats::db::Db;

/// Every reservation's status.
pub async fn reservations(db: &Db) -> anyhow::Result<Vec<Summary>> {
    store::summaries(&mut db.reader().await?).await
}

/// How many sagas have ended, and when the last one changed (ms since the epoch): cheap enough
/// to ask often while a load runs.
pub async fn ended(db: &Db) -> anyhow::Result<(i64, i64)> {
    store::ended(&mut db.reader().await?).await
}
