//! store: reservations in SQL.

use crate::domain::Status;
use contracts::events::SeatHeld;
use contracts::{ReservationId, UserId};
use platform::db::Tx;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

#[derive(Debug, Clone, Serialize)]
pub struct Reservation {
    pub id: String,
    pub user_id: String,
    pub schedule_id: String,
    pub seat_ids: Vec<String>,
    pub amount: i64,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: time::OffsetDateTime,
}

const COLUMNS: &str = "id, user_id, schedule_id, seat_ids, amount, status, reason, expires_at, created_at, updated_at";

fn from_row(r: &AnyRow) -> sqlx::Result<Reservation> {
    let seat_ids: String = r.try_get("seat_ids")?;
    let status: String = r.try_get("status")?;
    Ok(Reservation {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        schedule_id: r.try_get("schedule_id")?,
        seat_ids: serde_json::from_str(&seat_ids).unwrap_or_default(),
        amount: r.try_get("amount")?,
        status: Status::parse(&status)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown status {status:?}").into()))?,
        reason: r.try_get("reason")?,
        expires_at: platform::from_millis(r.try_get("expires_at")?),
        created_at: platform::from_millis(r.try_get("created_at")?),
        updated_at: platform::from_millis(r.try_get("updated_at")?),
    })
}

/// Creates the reservation from its hold; a repeat changes nothing.
pub async fn insert_from_hold(tx: &mut Tx, held: &SeatHeld, now_ms: i64) -> sqlx::Result<()> {
    let seat_ids = serde_json::to_string(&held.seat_ids).expect("ids always serialise");
    sqlx::query(
        "INSERT INTO reservations (id, user_id, schedule_id, seat_ids, amount, status, reason, expires_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'awaiting_payment', NULL, $6, $7, $7) ON CONFLICT DO NOTHING",
    )
    .bind(held.reservation_id.to_string())
    .bind(&held.user_id.0)
    .bind(held.schedule_id.to_string())
    .bind(seat_ids)
    .bind(held.amount.value())
    .bind(platform::to_millis(held.expires_at))
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn get(tx: &mut Tx, id: ReservationId) -> sqlx::Result<Option<Reservation>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM reservations WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(&mut **tx)
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}

pub async fn get_for_user(
    pool: &AnyPool,
    id: ReservationId,
    user: &UserId,
) -> sqlx::Result<Option<Reservation>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM reservations WHERE id = $1 AND user_id = $2"
    )))
    .bind(id.to_string())
    .bind(&user.0)
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}

pub async fn list_for_user(pool: &AnyPool, user: &UserId) -> sqlx::Result<Vec<Reservation>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM reservations WHERE user_id = $1 ORDER BY created_at DESC, id"
    )))
    .bind(&user.0)
    .fetch_all(pool)
    .await?
    .iter()
    .map(from_row)
    .collect()
}

pub async fn set_status(
    tx: &mut Tx,
    id: ReservationId,
    status: Status,
    reason: Option<&str>,
    now_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE reservations SET status = $1, reason = $2, updated_at = $3 WHERE id = $4")
        .bind(status.as_str())
        .bind(reason)
        .bind(now_ms)
        .bind(id.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
