//! store: reservations in SQL.

use crate::domain::{Facts, Status};
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
    #[serde(skip)]
    pub facts: Facts,
}

const COLUMNS: &str = "id, user_id, schedule_id, seat_ids, amount, status, reason, expires_at, \
                       created_at, updated_at, facts";

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
        facts: serde_json::from_str(&r.try_get::<String, _>("facts")?)
            .map_err(|e| sqlx::Error::Decode(e.into()))?,
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

/// The reservation, locked for the rest of the transaction (its facts are read, then written).
pub async fn get(tx: &mut Tx, id: ReservationId) -> sqlx::Result<Option<Reservation>> {
    let lock = platform::db::for_update(tx);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM reservations WHERE id = $1{lock}"
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

/// Stores the facts and the status and reason they amount to.
pub async fn save_facts(
    tx: &mut Tx,
    id: ReservationId,
    facts: &Facts,
    now_ms: i64,
) -> sqlx::Result<()> {
    let (status, reason) = facts.status();
    sqlx::query("UPDATE reservations SET facts = $1, status = $2, reason = $3, updated_at = $4 WHERE id = $5")
        .bind(serde_json::to_string(facts).expect("facts always serialise"))
        .bind(status.as_str())
        .bind(reason)
        .bind(now_ms)
        .bind(id.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
