//! queue: the waiting line of each schedule. A user takes a token; the first
//! `QUEUE_ACTIVE_LIMIT` live tokens of a schedule are active (may hold seats), the rest wait in
//! order. A token is done when its hold ends and expires when unused; either way the ones
//! behind it move up.

pub mod domain;
pub mod http;
pub mod store;

use contracts::{ScheduleId, UserId};
use domain::{QueueToken, TokenState, TokenStatus, standing};
use nats::db::Sql;
use nats::unit_of_work::{Error, Rejection, Work};
use store::Token;

/// Why a queue request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueRefused {
    /// seat-svc has no such schedule (maybe not yet).
    UnknownSchedule,
    /// No such token, or not the caller's (the same answer, so tokens cannot be probed).
    UnknownToken,
    /// The show has started: its line is closed.
    SchedulePast,
}

impl Rejection for QueueRefused {}

/// A token and where it stands.
#[derive(Debug, Clone)]
pub struct Place {
    pub token: Token,
    pub status: TokenStatus,
    /// 1 for the first waiting; 0 when not waiting.
    pub position: i64,
    /// Whether the token was taken now (rather than asked for again).
    pub new: bool,
}

async fn place(
    sql: &mut impl Sql,
    token: Token,
    new: bool,
    active_limit: i64,
) -> anyhow::Result<Place> {
    let ahead = match token.state {
        TokenState::Live if !token.admitted => store::ahead(sql, &token).await?,
        TokenState::Live | TokenState::Expired | TokenState::Done => 0,
    };
    Ok(placed(token, ahead, new, active_limit))
}

/// Where `token` stands with `ahead` live tokens ahead of it.
fn placed(token: Token, ahead: i64, new: bool, active_limit: i64) -> Place {
    let (status, position) = standing(token.state, ahead, active_limit);
    Place {
        token,
        status,
        position,
        new,
    }
}

/// Takes a place in the schedule's line; a user asking again gets their live token back.
pub async fn join(
    w: &mut Work,
    user: UserId,
    schedule: ScheduleId,
    active_limit: i64,
) -> Result<Place, Error<QueueRefused>> {
    let now = w.now_ms();
    let mut t = Token {
        token: QueueToken::new(),
        schedule,
        user,
        state: TokenState::Live,
        created_at: now,
        last_seen_at: now,
        admitted: false,
    };
    // One read tells whether the line is open, whether the user is in it already and, if not,
    // how many are ahead of the new token at most.
    let joining = match store::joining(w, &t.user, schedule).await? {
        None => return Err(QueueRefused::UnknownSchedule.into()),
        Some(j) if j.starts_at_ms <= now => return Err(QueueRefused::SchedulePast.into()),
        Some(j) => j,
    };
    // One live token per user and schedule: asking again answers the same token.
    if let Some(live) = joining.live {
        return Ok(place(w, live, false, active_limit).await?);
    }
    // A bound under the limit admits the token without counting (a join costs one entry of
    // the line's index, however long the line); one that reaches it is counted exactly, since a
    // waiting token's position needs every token ahead, and the count is the next bound.
    let ahead = match joining.ahead {
        store::Ahead::AtMost(bound) if bound < active_limit => bound,
        store::Ahead::AtMost(_) | store::Ahead::Unknown => store::ahead(w, &t).await?,
    };
    t.admitted = ahead < active_limit;
    if !store::insert(w, &t, ahead).await? {
        // Another request of the same user took one meanwhile (PostgreSQL; on SQLite writes
        // take turns): that one is the answer.
        let t = store::live(w, &t.user, schedule)
            .await?
            .ok_or_else(|| anyhow::anyhow!("a live token conflicted, then vanished"))?;
        return Ok(place(w, t, false, active_limit).await?);
    }
    Ok(placed(t, ahead, true, active_limit))
}

/// Where the user's token stands, from a read alone, when nothing needs writing: the token was
/// kept alive less than `touch_every` ago. `None` when the unit of work of [`status`] has to
/// run. Polling the line then costs reads, not turns on the database's one writer (SQLite)
/// that holds and payments wait for.
pub async fn peek(
    read: &mut impl Sql,
    user: &UserId,
    token: QueueToken,
    now_ms: i64,
    touch_every_ms: i64,
    active_limit: i64,
) -> Result<Option<Place>, Error<QueueRefused>> {
    let t = match store::read(read, &token).await? {
        Some(t) if t.user == *user => t,
        _ => return Err(QueueRefused::UnknownToken.into()),
    };
    if t.state == TokenState::Live && now_ms - t.last_seen_at >= touch_every_ms {
        return Ok(None);
    }
    Ok(Some(place(read, t, false, active_limit).await?))
}

/// Where the user's token stands. Asking keeps it alive.
pub async fn status(
    w: &mut Work,
    user: UserId,
    token: QueueToken,
    active_limit: i64,
) -> Result<Place, Error<QueueRefused>> {
    let t = match store::get(w, &token).await? {
        // Someone else's token is not theirs to look at: same answer as a wrong token.
        Some(t) if t.user == user => t,
        _ => return Err(QueueRefused::UnknownToken.into()),
    };
    let now = w.now_ms();
    store::touch(w, &token, now).await?;
    Ok(place(w, t, false, active_limit).await?)
}
