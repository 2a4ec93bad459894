//! audit: what seat-svc holds, read for the whole-system checks (the invariant checker, the
//! chaos tool, the bench) so that none of them needs to know its tables.

use crate::holds::store::{self as holds, HoldRow};
use crate::inventory::store::{self as inventory, SeatRow};
use nats::db::Db;

/// Every seat, who holds or bought it, and every hold with its seats.
pub struct SeatAudit {
    pub seats: Vec<SeatRow>,
    pub holds: Vec<HoldRow>,
}

pub async fn read(db: &Db) -> anyhow::Result<SeatAudit> {
    let mut r = db.reader().await?;
    let seats = inventory::all_seats(&mut r).await?;
    Ok(SeatAudit {
        seats,
        holds: holds::all(&mut r).await?,
    })
}
