//! store: queue tokens in SQL. Queue order is (created_at, token); where a token stands is
//! counted from the live tokens ahead of it (see [`super::domain::standing`]), unless a bound
//! kept at its join already says it is admitted.

use super::domain::{QueueToken, TOKEN, TokenState};
use crate::holds::domain::{HOLD, HoldStatus};
use contracts::{ReservationId, ScheduleId, UserId};
use nats::db::{Row, Sql};

/// The columns `token_from` reads.
const TOKEN_COLUMNS: &str =
    "token, schedule_id, user_id, status, created_at, last_seen_at, admitted";

#[derive(Debug, Clone)]
pub struct Token {
    pub token: QueueToken,
    pub schedule: ScheduleId,
    pub user: UserId,
    pub state: TokenState,
    pub created_at: i64,
    /// When its user last asked for it (an idle token expires).
    pub last_seen_at: i64,
    /// Known to be active while live: fewer than the limit were ahead of it once, and tokens
    /// only ever leave the line ahead of it. Its place need not be counted again.
    pub admitted: bool,
}

fn token_from(r: &Row) -> anyhow::Result<Token> {
    Ok(Token {
        token: r.parse("token")?,
        schedule: r.parse("schedule_id")?,
        user: r.parse("user_id")?,
        state: r.parse("status")?,
        created_at: r.get("created_at")?,
        last_seen_at: r.get("last_seen_at")?,
        admitted: r.get("admitted")?,
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
    // `live` written out, not bound: the planner then knows the one-live-token index answers.
    sql.sql_built(format!(
        "SELECT {TOKEN_COLUMNS} FROM queue_tokens
         WHERE user_id = $1 AND schedule_id = $2 AND status = '{LIVE}'",
        LIVE = TokenState::Live.as_str()
    ))
    .bind(user)
    .bind(schedule)
    .fetch_optional()
    .await?
    .as_ref()
    .map(token_from)
    .transpose()
}

/// What a join needs to know, read in one statement: when the schedule's show starts, the
/// user's live token for it if any, and how many live tokens are ahead of a token taken now at
/// most ([`Ahead`]).
pub struct Joining {
    pub starts_at_ms: i64,
    pub live: Option<Token>,
    pub ahead: Ahead,
}

/// The live tokens ahead of a token joining now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ahead {
    /// At most this many: the bound kept by the last token in line, plus that token (0 exactly
    /// when the line is empty).
    AtMost(i64),
    /// The last token in line keeps no bound (it joined before bounds were kept): count them.
    Unknown,
}

/// `None` for a schedule this service does not know.
pub async fn joining(
    sql: &mut impl Sql,
    user: &UserId,
    schedule: ScheduleId,
) -> anyhow::Result<Option<Joining>> {
    // `live` written out, not bound: the planner then knows the one-live-token index answers,
    // and that the last token in line is the end of the line index (`queue_tokens_line`), so a
    // join reads one entry of it however long the line is.
    let Some(row) = sql
        .sql_built(format!(
            "SELECT s.starts_at, {TOKEN_COLUMNS},
                 (SELECT COALESCE(a.ahead_bound, -1) FROM queue_tokens a
                  WHERE a.schedule_id = s.id AND a.status = '{LIVE}'
                  ORDER BY a.created_at DESC, a.token DESC LIMIT 1) AS last_bound
             FROM schedules s LEFT JOIN queue_tokens t
                 ON t.user_id = $1 AND t.schedule_id = s.id AND t.status = '{LIVE}'
             WHERE s.id = $2",
            LIVE = TokenState::Live.as_str()
        ))
        .bind(user)
        .bind(schedule)
        .fetch_optional()
        .await?
    else {
        return Ok(None);
    };
    let live = match row.get::<Option<String>>("token")? {
        Some(_) => Some(token_from(&row)?),
        None => None,
    };
    let ahead = match row.get::<Option<i64>>("last_bound")? {
        None => Ahead::AtMost(0),
        Some(bound) if bound < 0 => Ahead::Unknown,
        Some(bound) => Ahead::AtMost(bound + 1),
    };
    Ok(Some(Joining {
        starts_at_ms: row.get("starts_at")?,
        live,
        ahead,
    }))
}

/// What a hold needs to know of its token: the token (locked like [`get`]), how many live
/// tokens are ahead of it (counted up to the active limit at most; 0 when it was admitted), the
/// reservation it currently holds seats for, if any, and when its schedule's show starts.
pub struct ForHold {
    pub token: Token,
    pub ahead: i64,
    pub live_hold: Option<ReservationId>,
    pub starts_at_ms: Option<i64>,
}

pub async fn for_hold(
    sql: &mut impl Sql,
    token: &QueueToken,
    active_limit: i64,
) -> anyhow::Result<Option<ForHold>> {
    let Some(row) = sql
        .sql_built(format!(
            "SELECT {TOKEN_COLUMNS},
                 CASE WHEN t.admitted = 1 THEN 0 ELSE (SELECT COUNT(*) FROM (
                     SELECT 1 FROM queue_tokens a
                     WHERE a.schedule_id = t.schedule_id AND a.status = $3 AND {AHEAD_OF_T}
                     LIMIT $4) ahead) END AS ahead,
                 (SELECT reservation_id FROM holds h WHERE h.token = t.token AND h.status = $2
                  LIMIT 1) AS live_hold,
                 (SELECT starts_at FROM schedules s WHERE s.id = t.schedule_id) AS starts_at
             FROM queue_tokens t WHERE token = $1"
        ))
        .bind(token)
        .bind(HoldStatus::Held.as_str())
        .bind(TokenState::Live.as_str())
        .bind(active_limit)
        .for_update()
        // About the token and its holds. It counts other tokens ahead, by their state and
        // place, which no write of another token's record waiting changes (a hold's writes
        // touch its token's `last_seen_at` only), so those may go with it.
        .record(TOKEN, token)
        .fetch_optional()
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(ForHold {
        token: token_from(&row)?,
        ahead: row.get("ahead")?,
        live_hold: row.parse_opt("live_hold")?,
        starts_at_ms: row.get("starts_at")?,
    }))
}

/// Puts a new token in line, with at most `ahead` live tokens ahead of it (the bound the next
/// join reads); `false` if the user already has a live one for the schedule (a unique index
/// says so, whichever replica took it first).
pub async fn insert(sql: &mut impl Sql, t: &Token, ahead: i64) -> anyhow::Result<bool> {
    let inserted = sql
        .sql(
            "INSERT INTO queue_tokens
                 (token, schedule_id, user_id, status, created_at, last_seen_at, admitted,
                  ahead_bound)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(&t.token)
        .bind(t.schedule)
        .bind(&t.user)
        .bind(t.state.as_str())
        .bind(t.created_at)
        .bind(t.last_seen_at)
        .bind(t.admitted)
        .bind(ahead)
        .execute()
        .await?;
    Ok(inserted == 1)
}

/// Marks the token as just used, so it does not expire as idle (a write sent later:
/// `Statement::execute_later`).
pub async fn touch(sql: &mut impl Sql, token: &QueueToken, now_ms: i64) -> anyhow::Result<()> {
    sql.sql("UPDATE queue_tokens SET last_seen_at = $1 WHERE token = $2")
        .bind(now_ms)
        .bind(token)
        .record(TOKEN, token)
        .execute_later()
        .await
}

/// Expires live tokens unused since `cutoff_ms` (a token with a live hold stays until its hold
/// ends): the tokens behind them move up.
pub async fn expire_idle(sql: &mut impl Sql, cutoff_ms: i64) -> anyhow::Result<u64> {
    sql.sql(
        "UPDATE queue_tokens SET status = $4 WHERE status = $2 AND last_seen_at < $1
         AND token NOT IN (SELECT token FROM holds WHERE status = $3)",
    )
    .bind(cutoff_ms)
    .bind(TokenState::Live.as_str())
    .bind(HoldStatus::Held.as_str())
    .bind(TokenState::Expired.as_str())
    .execute()
    .await
}

/// `a` is ahead of `t` in line (`t`'s columns as `t.…`).
const AHEAD_OF_T: &str =
    "(a.created_at < t.created_at OR (a.created_at = t.created_at AND a.token < t.token))";

/// The live tokens ahead of `t` in its schedule's line, all of them: a waiting token's position
/// needs every one (a hold, which only asks whether fewer than the limit are, counts in
/// [`for_hold`] up to the limit).
pub async fn ahead(sql: &mut impl Sql, t: &Token) -> anyhow::Result<i64> {
    sql.sql(
        "SELECT COUNT(*) AS n FROM queue_tokens
         WHERE schedule_id = $1 AND status = $2
         AND (created_at < $3 OR (created_at = $3 AND token < $4))",
    )
    .bind(t.schedule)
    .bind(TokenState::Live.as_str())
    .bind(t.created_at)
    .bind(&t.token)
    .fetch_one()
    .await?
    .get("n")
}

/// The token of `reservation`'s hold is used up once the hold ends: it leaves the line, and the
/// next waiting token moves up (a write sent later: `Statement::execute_later`).
pub async fn finish_for(sql: &mut impl Sql, reservation: ReservationId) -> anyhow::Result<()> {
    sql.sql(
        "UPDATE queue_tokens SET status = $1
         WHERE token = (SELECT token FROM holds WHERE reservation_id = $2) AND status = $3",
    )
    .bind(TokenState::Done.as_str())
    .bind(reservation)
    .bind(TokenState::Live.as_str())
    .record(HOLD, reservation)
    .execute_later()
    .await
}
