//! store: inventory, holds and queue tokens in SQL. Seat claims are one conditional UPDATE so
//! exactly one concurrent hold wins a seat, across processes and replicas.

use crate::domain::{Hold, HoldStatus, TokenStatus};
use contracts::events::ScheduleOpened;
use contracts::{ReleaseReason, ReservationId, ScheduleId, SeatId, UserId};
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

/// The columns `token_from` reads.
const TOKEN_COLUMNS: &str = "token, schedule_id, user_id, status, created_at";

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

/// The token, locked for the rest of the transaction (a hold checks, then uses it).
pub async fn get_token(tx: &mut Tx, token: &str) -> sqlx::Result<Option<Token>> {
    let lock = platform::db::for_update(tx);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TOKEN_COLUMNS} FROM queue_tokens WHERE token = $1{lock}"
    )))
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
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TOKEN_COLUMNS} FROM queue_tokens
         WHERE user_id = $1 AND schedule_id = $2 AND status IN ('waiting', 'active')"
    )))
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

/// Fills the schedule's free active places with the longest-waiting tokens.
pub async fn admit(tx: &mut Tx, schedule: &str, active_limit: i64) -> sqlx::Result<()> {
    // Admissions of one schedule take turns, so two replicas never both fill the last place.
    // (SQLite's write transactions are serial already: nothing to lock there.)
    let lock = platform::db::for_update(tx);
    if !lock.is_empty() {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM schedules WHERE id = $1{lock}"
        )))
        .bind(schedule)
        .fetch_optional(&mut **tx)
        .await?;
    }
    let active = count_active(tx, schedule).await?;
    activate_waiting(
        tx,
        schedule,
        crate::domain::admissions(active, active_limit),
    )
    .await
}

/// Marks the token as just used, so it does not expire as idle.
pub async fn touch_token(tx: &mut Tx, token: &str, now_ms: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE queue_tokens SET last_seen_at = $1 WHERE token = $2")
        .bind(now_ms)
        .bind(token)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The token, locked like `get_token`, and the reservation it currently holds seats for, if any.
pub async fn token_with_live_hold(
    tx: &mut Tx,
    token: &str,
) -> sqlx::Result<Option<(Token, Option<String>)>> {
    let lock = platform::db::for_update(tx);
    let Some(row) = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TOKEN_COLUMNS},
             (SELECT reservation_id FROM holds h WHERE h.token = t.token AND h.status = 'held'
              LIMIT 1) AS live_hold
         FROM queue_tokens t WHERE token = $1{lock}"
    )))
    .bind(token)
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some((token_from(&row)?, row.try_get("live_hold")?)))
}

/// Expires waiting or active tokens unused since `cutoff_ms` (a token with a live hold stays
/// until its hold ends); answers the schedules that now have room.
pub async fn expire_idle_tokens(tx: &mut Tx, cutoff_ms: i64) -> sqlx::Result<Vec<String>> {
    let schedules: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT schedule_id FROM queue_tokens
         WHERE status IN ('waiting', 'active') AND last_seen_at < $1
         AND token NOT IN (SELECT token FROM holds WHERE status = 'held')",
    )
    .bind(cutoff_ms)
    .fetch_all(&mut **tx)
    .await?;
    if schedules.is_empty() {
        return Ok(schedules);
    }
    sqlx::query(
        "UPDATE queue_tokens SET status = 'expired'
         WHERE status IN ('waiting', 'active') AND last_seen_at < $1
         AND token NOT IN (SELECT token FROM holds WHERE status = 'held')",
    )
    .bind(cutoff_ms)
    .execute(&mut **tx)
    .await?;
    Ok(schedules)
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
/// schedule; returns the prices of the seats it took (the caller rolls back unless it took all).
pub async fn claim_seats(
    tx: &mut Tx,
    schedule: ScheduleId,
    reservation: ReservationId,
    seats: &[SeatId],
) -> sqlx::Result<Vec<i64>> {
    let sql = format!(
        "UPDATE seats SET status = 'held', reservation_id = $1
         WHERE schedule_id = $2 AND status = 'available' AND id IN ({}) RETURNING price",
        placeholders(3, seats.len())
    );
    // Only fixed text and numbered placeholders went into `sql`; the values are bound.
    let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(reservation.to_string())
        .bind(schedule.to_string());
    for s in seats {
        q = q.bind(s.to_string());
    }
    q.fetch_all(&mut **tx).await
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
    let lock = platform::db::for_update(tx);
    let Some(row) = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT status, expires_at, release_reason FROM holds WHERE reservation_id = $1{lock}"
    )))
    .bind(reservation.to_string())
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(None);
    };
    let status: String = row.try_get("status")?;
    let reason: Option<String> = row.try_get("release_reason")?;
    let hold = Hold {
        status: HoldStatus::parse(&status).unwrap_or(HoldStatus::Released),
        expires_at: platform::from_millis(row.try_get("expires_at")?),
        release_reason: reason.as_deref().and_then(release_reason),
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

fn release_reason(s: &str) -> Option<ReleaseReason> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
}

fn reason_str(r: ReleaseReason) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Holds whose deadline has passed and that are still live (oldest first).
pub async fn due_holds(
    pool: &sqlx::AnyPool,
    now_ms: i64,
    limit: i64,
) -> sqlx::Result<Vec<ReservationId>> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT reservation_id FROM holds WHERE status = 'held' AND expires_at <= $1
         ORDER BY expires_at LIMIT $2",
    )
    .bind(now_ms)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(ids
        .iter()
        .filter_map(|s| ReservationId::parse(s).ok())
        .collect())
}

/// Sells a live hold's seats.
pub async fn sell(tx: &mut Tx, reservation: ReservationId) -> sqlx::Result<()> {
    sqlx::query("UPDATE seats SET status = 'sold' WHERE reservation_id = $1 AND status = 'held'")
        .bind(reservation.to_string())
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE holds SET status = 'sold' WHERE reservation_id = $1 AND status = 'held'")
        .bind(reservation.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Gives a hold's seats back (held or sold) and records why.
pub async fn release(
    tx: &mut Tx,
    reservation: ReservationId,
    reason: ReleaseReason,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE seats SET status = 'available', reservation_id = NULL
         WHERE reservation_id = $1 AND status IN ('held', 'sold')",
    )
    .bind(reservation.to_string())
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE holds SET status = 'released', release_reason = $1
         WHERE reservation_id = $2 AND status IN ('held', 'sold')",
    )
    .bind(reason_str(reason))
    .bind(reservation.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The hold's queue token is used up once its hold ends: it leaves the line and the next
/// waiting token is admitted.
pub async fn finish_token(
    tx: &mut Tx,
    reservation: ReservationId,
    active_limit: i64,
) -> sqlx::Result<()> {
    let schedule: Option<String> = sqlx::query_scalar(
        "UPDATE queue_tokens SET status = 'done'
         WHERE token = (SELECT token FROM holds WHERE reservation_id = $1) AND status = 'active'
         RETURNING schedule_id",
    )
    .bind(reservation.to_string())
    .fetch_optional(&mut **tx)
    .await?;
    // Only a token that was active frees a place for the next in line.
    match schedule {
        Some(schedule) => admit(tx, &schedule, active_limit).await,
        None => Ok(()),
    }
}
