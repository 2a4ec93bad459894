//! audit: what concert-svc shows, read for the whole-system checks (the invariant checker
//! compares the availability view with seat-svc's truth) so that none of them needs to know its
//! tables.

use crate::view::domain::SeatStatus;
use crate::view::store;
use contracts::SeatId;
use nats::db::Db;

/// Each seat's status as the availability view shows it.
pub async fn view(db: &Db) -> anyhow::Result<Vec<(SeatId, SeatStatus)>> {
    let view = store::all(&mut db.reader().await?).await?;
    Ok(view
        .into_iter()
        .map(|(seat, (_, shown))| (seat, shown.status))
        .collect())
}
