//! store: the catalog and the availability view in SQL (plain functions over a pool or a
//! transaction; `$n` placeholders serve SQLite and PostgreSQL alike).

use crate::domain::{NewSeat, SeatStatus, ViewSeat};
use contracts::{ConcertId, ReservationId, ScheduleId, SeatId};
use platform::db::Tx;
use serde::Serialize;
use sqlx::{AnyPool, Row};

pub async fn insert_concert(
    tx: &mut Tx,
    id: ConcertId,
    title: &str,
    now_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO concerts (id, title, created_at) VALUES ($1, $2, $3)")
        .bind(id.to_string())
        .bind(title)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn concert_exists(tx: &mut Tx, id: ConcertId) -> sqlx::Result<bool> {
    let found = sqlx::query("SELECT 1 FROM concerts WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    Ok(found.is_some())
}

#[derive(Debug, Serialize)]
pub struct ConcertRow {
    pub id: String,
    pub title: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
}

pub async fn list_concerts(pool: &AnyPool) -> sqlx::Result<Vec<ConcertRow>> {
    let rows = sqlx::query("SELECT id, title, created_at FROM concerts ORDER BY created_at, id")
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(ConcertRow {
                id: r.try_get("id")?,
                title: r.try_get("title")?,
                created_at: platform::from_millis(r.try_get("created_at")?),
            })
        })
        .collect()
}

/// The schedule, its seats and their view rows (all `available`), in one go.
pub async fn insert_schedule(
    tx: &mut Tx,
    id: ScheduleId,
    concert: ConcertId,
    starts_at_ms: i64,
    seats: &[NewSeat],
    now_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO schedules (id, concert_id, starts_at, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(id.to_string())
    .bind(concert.to_string())
    .bind(starts_at_ms)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    for (position, seat) in seats.iter().enumerate() {
        sqlx::query(
            "INSERT INTO seats (id, schedule_id, position, label, grade, price)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(seat.id.to_string())
        .bind(id.to_string())
        .bind(position as i64)
        .bind(&seat.label)
        .bind(&seat.grade)
        .bind(seat.price.value())
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "INSERT INTO seat_view (seat_id, schedule_id, status, reservation_id, last_seq)
             VALUES ($1, $2, 'available', NULL, 0)",
        )
        .bind(seat.id.to_string())
        .bind(id.to_string())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

#[derive(Debug, Serialize)]
pub struct ScheduleRow {
    pub id: String,
    pub concert_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: time::OffsetDateTime,
    pub total_seats: i64,
    pub available_seats: i64,
}

/// The concert's schedules with live seat counts (only those with seats left unless
/// `include_sold_out`); `None` if the concert is unknown.
pub async fn list_schedules(
    pool: &AnyPool,
    concert: ConcertId,
    include_sold_out: bool,
) -> sqlx::Result<Option<Vec<ScheduleRow>>> {
    let exists = sqlx::query("SELECT 1 FROM concerts WHERE id = $1")
        .bind(concert.to_string())
        .fetch_optional(pool)
        .await?;
    if exists.is_none() {
        return Ok(None);
    }
    let rows = sqlx::query(
        "SELECT s.id, s.concert_id, s.starts_at,
                COUNT(v.seat_id) AS total_seats,
                COALESCE(SUM(CASE WHEN v.status = 'available' THEN 1 ELSE 0 END), 0) AS available_seats
         FROM schedules s LEFT JOIN seat_view v ON v.schedule_id = s.id
         WHERE s.concert_id = $1
         GROUP BY s.id, s.concert_id, s.starts_at
         HAVING $2 = 1 OR SUM(CASE WHEN v.status = 'available' THEN 1 ELSE 0 END) > 0
         ORDER BY s.starts_at, s.id",
    )
    .bind(concert.to_string())
    .bind(i64::from(include_sold_out))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ScheduleRow {
                id: r.try_get("id")?,
                concert_id: r.try_get("concert_id")?,
                starts_at: platform::from_millis(r.try_get("starts_at")?),
                total_seats: r.try_get("total_seats")?,
                available_seats: r.try_get("available_seats")?,
            })
        })
        .collect::<sqlx::Result<_>>()
        .map(Some)
}

#[derive(Debug, Serialize)]
pub struct SeatRow {
    pub seat_id: String,
    pub label: String,
    pub grade: String,
    pub price: i64,
    pub status: SeatStatus,
}

/// The schedule's seat map with each seat's status from the view; `None` if unknown.
pub async fn schedule_seats(
    pool: &AnyPool,
    schedule: ScheduleId,
) -> sqlx::Result<Option<Vec<SeatRow>>> {
    let exists = sqlx::query("SELECT 1 FROM schedules WHERE id = $1")
        .bind(schedule.to_string())
        .fetch_optional(pool)
        .await?;
    if exists.is_none() {
        return Ok(None);
    }
    let rows = sqlx::query(
        "SELECT s.id, s.label, s.grade, s.price, v.status
         FROM seats s JOIN seat_view v ON v.seat_id = s.id
         WHERE s.schedule_id = $1 ORDER BY s.position",
    )
    .bind(schedule.to_string())
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let status: String = r.try_get("status")?;
            Ok(SeatRow {
                seat_id: r.try_get("id")?,
                label: r.try_get("label")?,
                grade: r.try_get("grade")?,
                price: r.try_get("price")?,
                status: SeatStatus::parse(&status).unwrap_or(SeatStatus::Available),
            })
        })
        .collect::<sqlx::Result<_>>()
        .map(Some)
}

pub async fn view_seat(tx: &mut Tx, seat: SeatId) -> sqlx::Result<Option<ViewSeat>> {
    let lock = platform::db::for_update(tx);
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT status, reservation_id, last_seq FROM seat_view WHERE seat_id = $1{lock}"
    )))
    .bind(seat.to_string())
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| {
        let status: String = r.try_get("status")?;
        let reservation: Option<String> = r.try_get("reservation_id")?;
        let last_seq: i64 = r.try_get("last_seq")?;
        Ok(ViewSeat {
            status: SeatStatus::parse(&status).unwrap_or(SeatStatus::Available),
            reservation: reservation.and_then(|s| ReservationId::parse(&s).ok()),
            last_seq: last_seq as u64,
        })
    })
    .transpose()
}

pub async fn set_view_seat(tx: &mut Tx, seat: SeatId, view: &ViewSeat) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE seat_view SET status = $1, reservation_id = $2, last_seq = $3 WHERE seat_id = $4",
    )
    .bind(view.status.as_str())
    .bind(view.reservation.map(|r| r.to_string()))
    .bind(view.last_seq as i64)
    .bind(seat.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
