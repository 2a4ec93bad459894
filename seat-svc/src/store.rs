//! store: inventory, holds and queue tokens in SQL. Seat claims are one conditional UPDATE so
//! exactly one concurrent hold wins a seat, across processes and replicas.

use crate::domain::{Hold, HoldStatus, TokenStatus};
use contracts::events::ScheduleOpened;
use contracts::{ReservationId, ScheduleId, SeatId, UserId};
use platform::db::Tx;
use sqlx::Row;

/// `$first, $first+1, …` for `n` values: an IN list of bind parameters.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Builds the inventory of a newly opened schedule; a repeat changes nothing.
pub async fn insert_schedule(tx: &mut Tx, s: &ScheduleOpened) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO schedules (id, concert_id, starts_at) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(s.schedule_id.to_string())
    .bind(s.concert_id.to_string())
    .bind(platform::to_millis(s.starts_at))
    .execute(&mut **tx)
    .await?;
    for seat in &s.seats {
        sqlx::query(
            "INSERT INTO seats (id, schedule_id, label, grade, price, status, reservation_id)
             VALUES ($1, $2, $3, $4, $5, 'available', NULL) ON CONFLICT DO NOTHING",
        )
        .bind(seat.seat_id.to_string())
        .bind(s.schedule_id.to_string())
        .bind(&seat.label)
        .bind(&seat.grade)
        .bind(seat.price.value())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

pub async fn schedule_exists(tx: &mut Tx, id: ScheduleId) -> sqlx::Result<bool> {
    Ok(sqlx::query("SELECT 1 FROM schedules WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await?
        .is_some())
}

#[derive(Debug, Clone)]
pub struct Token {
    pub token: String,
    pub schedule_id: String,
    pub user_id: String,
    pub status: TokenStatus,
    pub created_at: i64,
}

fn token_from(r: &sqlx::any::AnyRow) -> sqlx::Result<Token> {
    let status: String = r.try_get("status")?;
    Ok(Token {
        token: r.try_get("token")?,
        schedule_id: r.try_get("schedule_id")?,
        user_id: r.try_get("user_id")?,
        status: TokenStatus::parse(&status).unwrap_or(TokenStatus::Expired),
        created_at: r.try_get("created_at")?,
    })
}

pub async fn get_token(tx: &mut Tx, token: &str) -> sqlx::Result<Option<Token>> {
    sqlx::query(
        "SELECT token, schedule_id, user_id, status, created_at FROM queue_tokens WHERE token = $1",
    )
    .bind(token)
    .fetch_optional(&mut **tx)
    .await?
    .as_ref()
    .map(token_from)
    .transpose()
}

/// The user's live (waiting or active) token for the schedule, if any.
pub async fn live_token(
    tx: &mut Tx,
    user: &UserId,
    schedule: ScheduleId,
) -> sqlx::Result<Option<Token>> {
    sqlx::query(
        "SELECT token, schedule_id, user_id, status, created_at FROM queue_tokens
         WHERE user_id = $1 AND schedule_id = $2 AND status IN ('waiting', 'active')",
    )
    .bind(&user.0)
    .bind(schedule.to_string())
    .fetch_optional(&mut **tx)
    .await?
    .as_ref()
    .map(token_from)
    .transpose()
}

pub async fn insert_token(
    tx: &mut Tx,
    token: &str,
    schedule: ScheduleId,
    user: &UserId,
    now_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO queue_tokens (token, schedule_id, user_id, status, created_at, last_seen_at)
         VALUES ($1, $2, $3, 'waiting', $4, $4)",
    )
    .bind(token)
    .bind(schedule.to_string())
    .bind(&user.0)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn count_active(tx: &mut Tx, schedule: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM queue_tokens WHERE schedule_id = $1 AND status = 'active'",
    )
    .bind(schedule)
    .fetch_one(&mut **tx)
    .await
}

/// Activates the `n` longest-waiting tokens of the schedule.
pub async fn activate_waiting(tx: &mut Tx, schedule: &str, n: i64) -> sqlx::Result<()> {
    if n <= 0 {
        return Ok(());
    }
    sqlx::query(
        "UPDATE queue_tokens SET status = 'active' WHERE token IN (
            SELECT token FROM queue_tokens WHERE schedule_id = $1 AND status = 'waiting'
            ORDER BY created_at, token LIMIT $2)",
    )
    .bind(schedule)
    .bind(n)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// 1 for the first in line; 0 when not waiting.
pub async fn position(tx: &mut Tx, t: &Token) -> sqlx::Result<i64> {
    if t.status != TokenStatus::Waiting {
        return Ok(0);
    }
    let ahead: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM queue_tokens WHERE schedule_id = $1 AND status = 'waiting'
         AND (created_at < $2 OR (created_at = $2 AND token < $3))",
    )
    .bind(&t.schedule_id)
    .bind(t.created_at)
    .bind(&t.token)
    .fetch_one(&mut **tx)
    .await?;
    Ok(ahead + 1)
}

/// Marks `seats` held by `reservation` where every one of them is still available in the
/// schedule; returns how many rows changed (the caller rolls back unless all of them did).
pub async fn claim_seats(
    tx: &mut Tx,
    schedule: ScheduleId,
    reservation: ReservationId,
    seats: &[SeatId],
) -> sqlx::Result<u64> {
    let sql = format!(
        "UPDATE seats SET status = 'held', reservation_id = $1
         WHERE schedule_id = $2 AND status = 'available' AND id IN ({})",
        placeholders(3, seats.len())
    );
    // Only fixed text and numbered placeholders went into `sql`; the values are bound.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(reservation.to_string())
        .bind(schedule.to_string());
    for s in seats {
        q = q.bind(s.to_string());
    }
    Ok(q.execute(&mut **tx).await?.rows_affected())
}

/// How many of `seats` exist in the schedule.
pub async fn count_known_seats(
    tx: &mut Tx,
    schedule: ScheduleId,
    seats: &[SeatId],
) -> sqlx::Result<i64> {
    let sql = format!(
        "SELECT COUNT(*) FROM seats WHERE schedule_id = $1 AND id IN ({})",
        placeholders(2, seats.len())
    );
    // Only fixed text and numbered placeholders went into `sql`; the values are bound.
    let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(schedule.to_string());
    for s in seats {
        q = q.bind(s.to_string());
    }
    q.fetch_one(&mut **tx).await
}

pub async fn held_amount(tx: &mut Tx, reservation: ReservationId) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COALESCE(SUM(price), 0) FROM seats WHERE reservation_id = $1")
        .bind(reservation.to_string())
        .fetch_one(&mut **tx)
        .await
}

pub struct NewHold<'a> {
    pub reservation: ReservationId,
    pub user: &'a UserId,
    pub schedule: ScheduleId,
    pub token: &'a str,
    pub seats: &'a [SeatId],
    pub amount: i64,
    pub expires_at_ms: i64,
    pub now_ms: i64,
}

pub async fn insert_hold(tx: &mut Tx, h: &NewHold<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO holds (reservation_id, user_id, schedule_id, token, amount, status, expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5, 'held', $6, $7)",
    )
    .bind(h.reservation.to_string())
    .bind(&h.user.0)
    .bind(h.schedule.to_string())
    .bind(h.token)
    .bind(h.amount)
    .bind(h.expires_at_ms)
    .bind(h.now_ms)
    .execute(&mut **tx)
    .await?;
    for seat in h.seats {
        sqlx::query("INSERT INTO hold_seats (reservation_id, seat_id) VALUES ($1, $2)")
            .bind(h.reservation.to_string())
            .bind(seat.to_string())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The hold and the seats it took.
pub async fn get_hold(
    tx: &mut Tx,
    reservation: ReservationId,
) -> sqlx::Result<Option<(Hold, Vec<SeatId>)>> {
    let Some(row) = sqlx::query("SELECT status, expires_at FROM holds WHERE reservation_id = $1")
        .bind(reservation.to_string())
        .fetch_optional(&mut **tx)
        .await?
    else {
        return Ok(None);
    };
    let status: String = row.try_get("status")?;
    let hold = Hold {
        status: HoldStatus::parse(&status).unwrap_or(HoldStatus::Released),
        expires_at: platform::from_millis(row.try_get("expires_at")?),
    };
    let seats: Vec<String> = sqlx::query_scalar(
        "SELECT seat_id FROM hold_seats WHERE reservation_id = $1 ORDER BY seat_id",
    )
    .bind(reservation.to_string())
    .fetch_all(&mut **tx)
    .await?;
    let seats = seats.iter().filter_map(|s| SeatId::parse(s).ok()).collect();
    Ok(Some((hold, seats)))
}

/// Ends a live hold: its seats become `sold` or `available` again, and the hold records how.
pub async fn end_hold(
    tx: &mut Tx,
    reservation: ReservationId,
    outcome: HoldStatus,
) -> sqlx::Result<()> {
    let seats_sql = match outcome {
        HoldStatus::Sold => {
            "UPDATE seats SET status = 'sold' WHERE reservation_id = $1 AND status = 'held'"
        }
        _ => {
            "UPDATE seats SET status = 'available', reservation_id = NULL
              WHERE reservation_id = $1 AND status = 'held'"
        }
    };
    sqlx::query(seats_sql)
        .bind(reservation.to_string())
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE holds SET status = $1 WHERE reservation_id = $2 AND status = 'held'")
        .bind(outcome.as_str())
        .bind(reservation.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
