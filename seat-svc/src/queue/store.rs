//! store: queue tokens in SQL. Queue order is (created_at, token).

use super::domain::{QueueToken, TokenStatus, admissions};
use crate::holds::domain::HoldStatus;
use crate::inventory;
use contracts::{ReservationId, ScheduleId, UserId};
use nats::db::{Row, Sql};

/// The columns `token_from` reads.
const TOKEN_COLUMNS: &str = "token, schedule_id, user_id, status, created_at, last_seen_at";

#[derive(Debug, Clone)]
pub struct Token {
    pub token: QueueToken,
    pub schedule: ScheduleId,
    pub user: UserId,
    pub status: TokenStatus,
    pub created_at: i64,
    /// When its user last asked for it (an idle token expires).
    pub last_seen_at: i64,
}

fn token_from(r: &Row) -> anyhow::Result<Token> {
    Ok(Token {
        token: r.parse("token")?,
        schedule: r.parse("schedule_id")?,
        user: r.parse("user_id")?,
        status: r.parse("status")?,
        created_at: r.get("created_at")?,
        last_seen_at: r.get("last_seen_at")?,
    })
}

/// The token as it is now, read without a lock (a status poll).
pub async fn read(sql: &mut impl Sql, token: &QueueToken) -> anyhow::Result<Option<Token>> {
    sql.sql_built(format!(
        "SELECT {TOKEN_COLUMNS} FROM queue_tokens WHERE token = $1"
    ))
    .bind(token)
    .fetch_optional()
    .await?
    .as_ref()
    .map(token_from)
    .transpose()
}

/// Active tokens of `schedule`.
pub async fn active(sql: &mut impl Sql, schedule: ScheduleId) -> anyhow::Result<i64> {
    sql.sql("SELECT COUNT(*) AS n FROM queue_tokens WHERE schedule_id = $1 AND status = $2")
        .bind(schedule)
        .bind(TokenStatus::Active.as_str())
        .fetch_one()
        .await?
        .get("n")
}

/// The token, locked for the rest of the unit of work (it is checked, then used).
pub async fn get(sql: &mut impl Sql, token: &QueueToken) -> anyhow::Result<Option<Token>> {
    sql.sql_built(format!(
        "SELECT {TOKEN_COLUMNS} FROM queue_tokens WHERE token = $1"
    ))
    .bind(token)
    .for_update()
    .fetch_optional()
    .await?
    .as_ref()
    .map(token_from)
    .transpose()
}

/// The user's live (waiting or active) token for the schedule, if any.
pub async fn live(
    sql: &mut impl Sql,
    user: &UserId,
    schedule: ScheduleId,
) -> anyhow::Result<Option<Token>> {
    let [waiting, active] = TokenStatus::LIVE;
    sql.sql_built(format!(
        "SELECT {TOKEN_COLUMNS} FROM queue_tokens
         WHERE user_id = $1 AND schedule_id = $2 AND status IN ($3, $4)"
    ))
    .bind(user)
    .bind(schedule)
    .bind(waiting.as_str())
    .bind(active.as_str())
    .fetch_optional()
    .await?
    .as_ref()
    .map(token_from)
    .transpose()
}

/// What a hold needs to know of its token: the token (locked like [`get`]), the reservation it
/// currently holds seats for, if any, and when its schedule's show starts.
pub struct ForHold {
    pub token: Token,
    pub live_hold: Option<ReservationId>,
    pub starts_at_ms: Option<i64>,
}

pub async fn for_hold(sql: &mut impl Sql, token: &QueueToken) -> anyhow::Result<Option<ForHold>> {
    let Some(row) = sql
        .sql_built(format!(
            "SELECT {TOKEN_COLUMNS},
                 (SELECT reservation_id FROM holds h WHERE h.token = t.token AND h.status = $2
                  LIMIT 1) AS live_hold,
                 (SELECT starts_at FROM schedules s WHERE s.id = t.schedule_id) AS starts_at
             FROM queue_tokens t WHERE token = $1"
        ))
        .bind(token)
        .bind(HoldStatus::Held.as_str())
        .for_update()
        .fetch_optional()
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(ForHold {
        token: token_from(&row)?,
        live_hold: row.parse_opt("live_hold")?,
        starts_at_ms: row.get("starts_at")?,
    }))
}

/// Puts a new token in line; `false` if the user already has a live one for the schedule (a
/// unique index says so, whichever replica took it first).
pub async fn insert(
    sql: &mut impl Sql,
    token: &QueueToken,
    schedule: ScheduleId,
    user: &UserId,
    now_ms: i64,
) -> anyhow::Result<bool> {
    let inserted = sql
        .sql(
            "INSERT INTO queue_tokens (token, schedule_id, user_id, status, created_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT DO NOTHING",
        )
        .bind(token)
        .bind(schedule)
        .bind(user)
        .bind(TokenStatus::Waiting.as_str())
        .bind(now_ms)
        .execute()
        .await?;
    Ok(inserted == 1)
}

/// Fills the schedule's free active places with the longest-waiting tokens.
pub async fn admit(
    sql: &mut impl Sql,
    schedule: ScheduleId,
    active_limit: i64,
) -> anyhow::Result<()> {
    // Admissions of one schedule take turns, so two replicas never both fill the last place.
    inventory::store::lock_schedule(sql, schedule).await?;
    let n = admissions(active(sql, schedule).await?, active_limit);
    if n == 0 {
        return Ok(());
    }
    sql.sql(
        "UPDATE queue_tokens SET status = $1 WHERE token IN (
            SELECT token FROM queue_tokens WHERE schedule_id = $2 AND status = $3
            ORDER BY created_at, token LIMIT $4)",
    )
    .bind(TokenStatus::Active.as_str())
    .bind(schedule)
    .bind(TokenStatus::Waiting.as_str())
    .bind(n)
    .execute()
    .await?;
    Ok(())
}

/// Marks the token as just used, so it does not expire as idle.
pub async fn touch(sql: &mut impl Sql, token: &QueueToken, now_ms: i64) -> anyhow::Result<()> {
    sql.sql("UPDATE queue_tokens SET last_seen_at = $1 WHERE token = $2")
        .bind(now_ms)
        .bind(token)
        .execute()
        .await?;
    Ok(())
}

/// Expires waiting or active tokens unused since `cutoff_ms` (a token with a live hold stays
/// until its hold ends); answers the schedules that now have room.
pub async fn expire_idle(sql: &mut impl Sql, cutoff_ms: i64) -> anyhow::Result<Vec<ScheduleId>> {
    let [waiting, active] = TokenStatus::LIVE;
    let idle = "status IN ($2, $3) AND last_seen_at < $1
         AND token NOT IN (SELECT token FROM holds WHERE status = $4)";
    let schedules = sql
        .sql_built(format!(
            "SELECT DISTINCT schedule_id FROM queue_tokens WHERE {idle}"
        ))
        .bind(cutoff_ms)
        .bind(waiting.as_str())
        .bind(active.as_str())
        .bind(HoldStatus::Held.as_str())
        .fetch_all()
        .await?
        .iter()
        .map(|r| r.parse("schedule_id"))
        .collect::<anyhow::Result<Vec<ScheduleId>>>()?;
    if schedules.is_empty() {
        return Ok(schedules);
    }
    sql.sql_built(format!("UPDATE queue_tokens SET status = $5 WHERE {idle}"))
        .bind(cutoff_ms)
        .bind(waiting.as_str())
        .bind(active.as_str())
        .bind(HoldStatus::Held.as_str())
        .bind(TokenStatus::Expired.as_str())
        .execute()
        .await?;
    Ok(schedules)
}

/// 1 for the first in line; 0 when not waiting.
pub async fn position(sql: &mut impl Sql, t: &Token) -> anyhow::Result<i64> {
    if t.status != TokenStatus::Waiting {
        return Ok(0);
    }
    let ahead: i64 = sql
        .sql(
            "SELECT COUNT(*) AS n FROM queue_tokens WHERE schedule_id = $1 AND status = $2
             AND (created_at < $3 OR (created_at = $3 AND token < $4))",
        )
        .bind(t.schedule)
        .bind(TokenStatus::Waiting.as_str())
        .bind(t.created_at)
        .bind(&t.token)
        .fetch_one()
        .await?
        .get("n")?;
    Ok(ahead + 1)
}

/// The token of `reservation`'s hold is used up once the hold ends: it leaves the line and the
/// next waiting token is admitted.
pub async fn finish_for(
    sql: &mut impl Sql,
    reservation: ReservationId,
    active_limit: i64,
) -> anyhow::Result<()> {
    let schedule = sql
        .sql(
            "UPDATE queue_tokens SET status = $1
             WHERE token = (SELECT token FROM holds WHERE reservation_id = $2) AND status = $3
             RETURNING schedule_id",
        )
        .bind(TokenStatus::Done.as_str())
        .bind(reservation)
        .bind(TokenStatus::Active.as_str())
        .fetch_optional()
        .await?;
    // Only a token that was active frees a place for the next in line.
    match schedule {
        Some(row) => admit(sql, row.parse("schedule_id")?, active_limit).await,
        None => Ok(()),
    }
}
