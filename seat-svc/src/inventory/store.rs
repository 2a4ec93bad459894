//! store: schedules and their seats in SQL. Seat claims are one conditional UPDATE, so exactly
//! one concurrent hold wins a seat, across processes and replicas.

use super::domain::SeatStatus;
use crate::holds::domain::HOLD;
use contracts::events::ScheduleOpened;
use contracts::{ReservationId, ScheduleId, SeatId, SeatVersions};
use nats::db::{Row, Sql, placeholders, to_millis};

/// Builds the inventory of a newly opened schedule; a repeat changes nothing.
pub async fn insert_schedule(sql: &mut impl Sql, s: &ScheduleOpened) -> anyhow::Result<()> {
    sql.sql(
        "INSERT INTO schedules (id, concert_id, starts_at) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(s.schedule_id)
    .bind(s.concert_id)
    .bind(to_millis(s.starts_at))
    .execute()
    .await?;
    for seat in &s.seats {
        sql.sql(
            "INSERT INTO seats (id, schedule_id, label, grade, price, status, reservation_id)
             VALUES ($1, $2, $3, $4, $5, $6, NULL) ON CONFLICT DO NOTHING",
        )
        .bind(seat.seat_id)
        .bind(s.schedule_id)
        .bind(&seat.label)
        .bind(&seat.grade)
        .bind(seat.price)
        .bind(SeatStatus::Available.as_str())
        .execute()
        .await?;
    }
    Ok(())
}

pub async fn schedule_exists(sql: &mut impl Sql, id: ScheduleId) -> anyhow::Result<bool> {
    Ok(starts_at(sql, id).await?.is_some())
}

/// When the schedule's show starts (ms); `None` for a schedule this service does not know.
pub async fn starts_at(sql: &mut impl Sql, id: ScheduleId) -> anyhow::Result<Option<i64>> {
    sql.sql("SELECT starts_at FROM schedules WHERE id = $1")
        .bind(id)
        .fetch_optional()
        .await?
        .map(|r| r.get("starts_at"))
        .transpose()
}

/// The seats a change took, with their prices and their versions after it.
pub struct Changed {
    pub prices: Vec<i64>,
    pub versions: SeatVersions,
}

fn changed(rows: &[Row]) -> anyhow::Result<Changed> {
    let mut c = Changed {
        prices: Vec::with_capacity(rows.len()),
        versions: SeatVersions::new(),
    };
    for r in rows {
        c.prices.push(r.get("price")?);
        c.versions
            .insert(r.parse("id")?, r.get::<i64>("version")? as u64);
    }
    Ok(c)
}

/// Marks `seats` held by `reservation` where every one of them is still available in the
/// schedule; answers the seats it took (the caller keeps nothing unless it took all).
pub async fn claim(
    sql: &mut impl Sql,
    schedule: ScheduleId,
    reservation: ReservationId,
    seats: &[SeatId],
) -> anyhow::Result<Changed> {
    let rows = sql
        .sql_built(format!(
            "UPDATE seats SET status = $1, reservation_id = $2, version = version + 1
             WHERE schedule_id = $3 AND status = $4 AND id IN ({}) RETURNING id, price, version",
            placeholders(5, seats.len())
        ))
        .bind(SeatStatus::Held.as_str())
        .bind(reservation)
        .bind(schedule)
        .bind(SeatStatus::Available.as_str())
        .bind_all(seats)
        .fetch_all()
        .await?;
    changed(&rows)
}

/// How many of `seats` exist in the schedule.
pub async fn count_known(
    sql: &mut impl Sql,
    schedule: ScheduleId,
    seats: &[SeatId],
) -> anyhow::Result<i64> {
    sql.sql_built(format!(
        "SELECT COUNT(*) AS n FROM seats WHERE schedule_id = $1 AND id IN ({})",
        placeholders(2, seats.len())
    ))
    .bind(schedule)
    .bind_all(seats)
    .fetch_one()
    .await?
    .get("n")
}

/// A seat the hold of a reservation still has (held, or bought), as settling reads it with the
/// hold (`holds::store::get`).
#[derive(Debug, Clone)]
pub struct Owned {
    pub id: SeatId,
    pub status: SeatStatus,
    pub version: u64,
}

/// The versions the seats among `owned` whose status is one of `from` have once changed: one
/// more each (the hold's row lock, taken when they were read, keeps anyone else from changing
/// them meanwhile).
fn next_versions(owned: &[Owned], from: &[SeatStatus]) -> SeatVersions {
    owned
        .iter()
        .filter(|seat| from.contains(&seat.status))
        .map(|seat| (seat.id, seat.version + 1))
        .collect()
}

/// Marks the seats `reservation` holds sold (a write sent later: `Statement::execute_later`,
/// about the hold's record, so in a consumer's batch it goes with the next hold's read); answers
/// their versions after it.
pub async fn sell(
    sql: &mut impl Sql,
    reservation: ReservationId,
    owned: &[Owned],
) -> anyhow::Result<SeatVersions> {
    sql.sql(
        "UPDATE seats SET status = $1, version = version + 1
         WHERE reservation_id = $2 AND status = $3",
    )
    .bind(SeatStatus::Sold.as_str())
    .bind(reservation)
    .bind(SeatStatus::Held.as_str())
    .record(HOLD, reservation)
    .execute_later()
    .await?;
    Ok(next_versions(owned, &[SeatStatus::Held]))
}

/// Makes the seats `reservation` holds or bought available again (a write sent later, as
/// [`sell`]); answers their versions after it.
pub async fn free(
    sql: &mut impl Sql,
    reservation: ReservationId,
    owned: &[Owned],
) -> anyhow::Result<SeatVersions> {
    sql.sql(
        "UPDATE seats SET status = $1, reservation_id = NULL, version = version + 1
         WHERE reservation_id = $2 AND status IN ($3, $4)",
    )
    .bind(SeatStatus::Available.as_str())
    .bind(reservation)
    .bind(SeatStatus::Held.as_str())
    .bind(SeatStatus::Sold.as_str())
    .record(HOLD, reservation)
    .execute_later()
    .await?;
    Ok(next_versions(owned, &[SeatStatus::Held, SeatStatus::Sold]))
}

/// One seat as the audit reads it.
#[derive(Debug, Clone)]
pub struct SeatRow {
    pub id: SeatId,
    pub status: SeatStatus,
    pub reservation: Option<ReservationId>,
}

/// Every seat of every schedule.
pub async fn all_seats(sql: &mut impl Sql) -> anyhow::Result<Vec<SeatRow>> {
    let rows = sql
        .sql("SELECT id, status, reservation_id FROM seats")
        .fetch_all()
        .await?;
    rows.iter()
        .map(|r| {
            Ok(SeatRow {
                id: r.parse("id")?,
                status: r.parse("status")?,
                reservation: r.parse_opt("reservation_id")?,
            })
        })
        .collect()
}
