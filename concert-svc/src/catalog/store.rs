//! store: the catalog in SQL — concerts, schedules and their seat maps — and the lists the
//! public reads, with live seat counts from the availability view.

use super::domain::NewSeat;
use crate::view::domain::SeatStatus;
use contracts::{ConcertId, Points, ScheduleId, SeatId};
use nats::db::{Sql, from_millis};
use serde::Serialize;

pub async fn insert_concert(
    sql: &mut impl Sql,
    id: ConcertId,
    title: &str,
    now_ms: i64,
) -> anyhow::Result<()> {
    sql.sql("INSERT INTO concerts (id, title, created_at) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(title)
        .bind(now_ms)
        .execute()
        .await?;
    Ok(())
}

pub async fn concert_exists(sql: &mut impl Sql, id: ConcertId) -> anyhow::Result<bool> {
    Ok(sql
        .sql("SELECT 1 AS found FROM concerts WHERE id = $1")
        .bind(id)
        .fetch_optional()
        .await?
        .is_some())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConcertRow {
    pub id: ConcertId,
    pub title: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
}

/// A page of concerts in the order they were registered; with `starting_after_ms`, only those
/// with a schedule starting after it.
pub async fn list_concerts(
    sql: &mut impl Sql,
    starting_after_ms: Option<i64>,
    limit: i64,
    offset: i64,
) -> anyhow::Result<Vec<ConcertRow>> {
    let rows = sql
        .sql(
            "SELECT id, title, created_at FROM concerts c
             WHERE $1 IS NULL
                OR EXISTS (SELECT 1 FROM schedules s WHERE s.concert_id = c.id AND s.starts_at > $1)
             ORDER BY created_at, id LIMIT $2 OFFSET $3",
        )
        .bind(starting_after_ms)
        .bind(limit)
        .bind(offset)
        .fetch_all()
        .await?;
    rows.iter()
        .map(|r| {
            Ok(ConcertRow {
                id: r.parse("id")?,
                title: r.get("title")?,
                created_at: from_millis(r.get("created_at")?),
            })
        })
        .collect()
}

/// The schedule and its seats.
pub async fn insert_schedule(
    sql: &mut impl Sql,
    id: ScheduleId,
    concert: ConcertId,
    starts_at_ms: i64,
    seats: &[NewSeat],
    now_ms: i64,
) -> anyhow::Result<()> {
    sql.sql(
        "INSERT INTO schedules (id, concert_id, starts_at, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(concert)
    .bind(starts_at_ms)
    .bind(now_ms)
    .execute()
    .await?;
    for (position, seat) in seats.iter().enumerate() {
        sql.sql(
            "INSERT INTO seats (id, schedule_id, position, label, grade, price)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(seat.id)
        .bind(id)
        .bind(position as i64)
        .bind(&seat.label)
        .bind(&seat.grade)
        .bind(seat.price)
        .execute()
        .await?;
    }
    Ok(())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScheduleRow {
    pub id: ScheduleId,
    pub concert_id: ConcertId,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: time::OffsetDateTime,
    pub total_seats: i64,
    pub available_seats: i64,
}

/// Which of a concert's schedules a listing shows.
pub struct Listing {
    /// Those without seats left too.
    pub include_sold_out: bool,
    /// Only those starting after this (`None`: those that have started too).
    pub starting_after_ms: Option<i64>,
}

/// The concert's schedules with live seat counts, as `listing` says; `None` if the concert is
/// unknown.
pub async fn list_schedules(
    sql: &mut impl Sql,
    concert: ConcertId,
    listing: Listing,
) -> anyhow::Result<Option<Vec<ScheduleRow>>> {
    if !concert_exists(sql, concert).await? {
        return Ok(None);
    }
    let rows = sql
        .sql(
            "SELECT s.id, s.concert_id, s.starts_at,
                COUNT(v.seat_id) AS total_seats,
                COALESCE(SUM(CASE WHEN v.status = $3 THEN 1 ELSE 0 END), 0) AS available_seats
         FROM schedules s LEFT JOIN seat_view v ON v.schedule_id = s.id
         WHERE s.concert_id = $1 AND ($4 IS NULL OR s.starts_at > $4)
         GROUP BY s.id, s.concert_id, s.starts_at
         HAVING $2 = 1 OR SUM(CASE WHEN v.status = $3 THEN 1 ELSE 0 END) > 0
         ORDER BY s.starts_at, s.id",
        )
        .bind(concert)
        .bind(listing.include_sold_out)
        .bind(SeatStatus::Available.as_str())
        .bind(listing.starting_after_ms)
        .fetch_all()
        .await?;
    rows.iter()
        .map(|r| {
            Ok(ScheduleRow {
                id: r.parse("id")?,
                concert_id: r.parse("concert_id")?,
                starts_at: from_millis(r.get("starts_at")?),
                total_seats: r.get("total_seats")?,
                available_seats: r.get("available_seats")?,
            })
        })
        .collect::<anyhow::Result<_>>()
        .map(Some)
}

/// One schedule as a page shows it: its concert's title, when it starts, live seat counts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScheduleDetail {
    pub id: ScheduleId,
    pub concert_id: ConcertId,
    pub concert_title: String,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: time::OffsetDateTime,
    pub total_seats: i64,
    pub available_seats: i64,
}

/// The schedule with its concert's title and live seat counts; `None` if unknown.
pub async fn schedule(
    sql: &mut impl Sql,
    schedule: ScheduleId,
) -> anyhow::Result<Option<ScheduleDetail>> {
    let row = sql
        .sql(
            "SELECT s.id, s.concert_id, c.title, s.starts_at,
                COUNT(v.seat_id) AS total_seats,
                COALESCE(SUM(CASE WHEN v.status = $2 THEN 1 ELSE 0 END), 0) AS available_seats
         FROM schedules s JOIN concerts c ON c.id = s.concert_id
              LEFT JOIN seat_view v ON v.schedule_id = s.id
         WHERE s.id = $1
         GROUP BY s.id, s.concert_id, c.title, s.starts_at",
        )
        .bind(schedule)
        .bind(SeatStatus::Available.as_str())
        .fetch_optional()
        .await?;
    row.map(|r| {
        Ok(ScheduleDetail {
            id: r.parse("id")?,
            concert_id: r.parse("concert_id")?,
            concert_title: r.get("title")?,
            starts_at: from_millis(r.get("starts_at")?),
            total_seats: r.get("total_seats")?,
            available_seats: r.get("available_seats")?,
        })
    })
    .transpose()
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SeatRow {
    pub seat_id: SeatId,
    pub label: String,
    pub grade: String,
    pub price: Points,
    pub status: SeatStatus,
}

/// The schedule's seat map with each seat's status from the view; `None` if unknown.
pub async fn schedule_seats(
    sql: &mut impl Sql,
    schedule: ScheduleId,
) -> anyhow::Result<Option<Vec<SeatRow>>> {
    let exists = sql
        .sql("SELECT 1 AS found FROM schedules WHERE id = $1")
        .bind(schedule)
        .fetch_optional()
        .await?;
    if exists.is_none() {
        return Ok(None);
    }
    let rows = sql
        .sql(
            "SELECT s.id, s.label, s.grade, s.price, v.status
             FROM seats s JOIN seat_view v ON v.seat_id = s.id
             WHERE s.schedule_id = $1 ORDER BY s.position",
        )
        .bind(schedule)
        .fetch_all()
        .await?;
    rows.iter()
        .map(|r| {
            Ok(SeatRow {
                seat_id: r.parse("id")?,
                label: r.get("label")?,
                grade: r.get("grade")?,
                price: r.get("price")?,
                status: r.parse("status")?,
            })
        })
        .collect::<anyhow::Result<_>>()
        .map(Some)
}
