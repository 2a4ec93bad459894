//! store: holds and the seats each took, in SQL.

use super::domain::{HOLD, Hold, HoldStatus};
use crate::inventory::store::Owned;
use crate::queue::domain::{QueueToken, TOKEN};
use contracts::{Points, ReleaseReason, ReservationId, ScheduleId, SeatId, UserId};
use nats::db::{Sql, from_millis};

pub struct NewHold<'a> {
    pub reservation: ReservationId,
    pub user: &'a UserId,
    pub schedule: ScheduleId,
    pub token: &'a QueueToken,
    pub seats: &'a [SeatId],
    pub amount: Points,
    pub expires_at_ms: i64,
    pub now_ms: i64,
}

/// Inserts the hold and its seats (writes sent later: `Statement::execute_later`), as writes of
/// its token's record: the next check of that token must see the hold (one live hold per token),
/// and among decisions they may wait for the next one's check of another token.
pub async fn insert(sql: &mut impl Sql, h: &NewHold<'_>) -> anyhow::Result<()> {
    sql.sql(
        "INSERT INTO holds (reservation_id, user_id, schedule_id, token, amount, status, expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(h.reservation)
    .bind(h.user)
    .bind(h.schedule)
    .bind(h.token)
    .bind(h.amount)
    .bind(HoldStatus::Held.as_str())
    .bind(h.expires_at_ms)
    .bind(h.now_ms)
    .record(TOKEN, h.token)
    .execute_later()
    .await?;
    for seat in h.seats {
        sql.sql("INSERT INTO hold_seats (reservation_id, seat_id) VALUES ($1, $2)")
            .bind(h.reservation)
            .bind(seat)
            .record(TOKEN, h.token)
            .execute_later()
            .await?;
    }
    Ok(())
}

/// A hold as settling reads it.
pub struct Taken {
    pub hold: Hold,
    /// The seats it took (one at least).
    pub seats: Vec<SeatId>,
    /// Those still its own (held, or bought), with their versions.
    pub owned: Vec<Owned>,
}

/// The hold, locked for the rest of the unit of work, the seats it took, and those still its own
/// with their versions, in one statement: what settling changes is then known without asking
/// back, so its writes need no answer ([`crate::inventory::store::sell`]).
pub async fn get(sql: &mut impl Sql, reservation: ReservationId) -> anyhow::Result<Option<Taken>> {
    let rows = sql
        .sql(
            "SELECT h.status, h.expires_at, h.release_reason, s.seat_id,
                    (SELECT st.status FROM seats st
                     WHERE st.id = s.seat_id AND st.reservation_id = h.reservation_id) AS seat_status,
                    (SELECT st.version FROM seats st
                     WHERE st.id = s.seat_id AND st.reservation_id = h.reservation_id) AS seat_version
             FROM holds h JOIN hold_seats s ON s.reservation_id = h.reservation_id
             WHERE h.reservation_id = $1 ORDER BY s.seat_id",
        )
        .bind(reservation)
        .for_update()
        .record(HOLD, reservation)
        .fetch_all()
        .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let hold = Hold {
        status: row.parse("status")?,
        expires_at: from_millis(row.get("expires_at")?),
        release_reason: row.parse_opt("release_reason")?,
    };
    let mut seats = Vec::with_capacity(rows.len());
    let mut owned = Vec::with_capacity(rows.len());
    for r in &rows {
        let id: SeatId = r.parse("seat_id")?;
        seats.push(id);
        if let Some(status) = r.parse_opt("seat_status")? {
            owned.push(Owned {
                id,
                status,
                version: r.get::<i64>("seat_version")? as u64,
            });
        }
    }
    Ok(Some(Taken { hold, seats, owned }))
}

/// Holds whose deadline has passed and that are still live (oldest first).
pub async fn due(
    sql: &mut impl Sql,
    now_ms: i64,
    limit: i64,
) -> anyhow::Result<Vec<ReservationId>> {
    sql.sql(
        "SELECT reservation_id FROM holds WHERE status = $1 AND expires_at <= $2
         ORDER BY expires_at LIMIT $3",
    )
    .bind(HoldStatus::Held.as_str())
    .bind(now_ms)
    .bind(limit)
    .fetch_all()
    .await?
    .iter()
    .map(|r| r.parse("reservation_id"))
    .collect()
}

/// Marks a live hold sold (a write sent later: `Statement::execute_later`).
pub async fn sell(sql: &mut impl Sql, reservation: ReservationId) -> anyhow::Result<()> {
    sql.sql("UPDATE holds SET status = $1 WHERE reservation_id = $2 AND status = $3")
        .bind(HoldStatus::Sold.as_str())
        .bind(reservation)
        .bind(HoldStatus::Held.as_str())
        .record(HOLD, reservation)
        .execute_later()
        .await
}

/// Marks a held or sold hold released, and why (a write sent later:
/// `Statement::execute_later`).
pub async fn release(
    sql: &mut impl Sql,
    reservation: ReservationId,
    reason: ReleaseReason,
) -> anyhow::Result<()> {
    sql.sql(
        "UPDATE holds SET status = $1, release_reason = $2
         WHERE reservation_id = $3 AND status IN ($4, $5)",
    )
    .bind(HoldStatus::Released.as_str())
    .bind(reason)
    .bind(reservation)
    .bind(HoldStatus::Held.as_str())
    .bind(HoldStatus::Sold.as_str())
    .record(HOLD, reservation)
    .execute_later()
    .await
}

/// One hold as the audit reads it.
#[derive(Debug, Clone)]
pub struct HoldRow {
    pub reservation: ReservationId,
    pub status: HoldStatus,
    pub amount: Points,
    pub seats: Vec<SeatId>,
}

/// Every hold with its seats.
pub async fn all(sql: &mut impl Sql) -> anyhow::Result<Vec<HoldRow>> {
    let mut holds: std::collections::BTreeMap<ReservationId, HoldRow> = sql
        .sql("SELECT reservation_id, status, amount FROM holds")
        .fetch_all()
        .await?
        .iter()
        .map(|r| {
            let reservation = r.parse("reservation_id")?;
            let hold = HoldRow {
                reservation,
                status: r.parse("status")?,
                amount: r.get("amount")?,
                seats: Vec::new(),
            };
            Ok((reservation, hold))
        })
        .collect::<anyhow::Result<_>>()?;
    for r in sql
        .sql("SELECT reservation_id, seat_id FROM hold_seats")
        .fetch_all()
        .await?
    {
        if let Some(h) = holds.get_mut(&r.parse("reservation_id")?) {
            h.seats.push(r.parse("seat_id")?);
        }
    }
    Ok(holds.into_values().collect())
}
