//! arrival: read-your-writes for reservations. seat-svc hands out a reservation's id in its
//! hold's 201 before this service has consumed the `seat.held` that creates the reservation
//! here, so a client that asks at once must not hear 404. A request about a fresh id that is not
//! here yet waits briefly for it; if it still has not arrived, 503 with `Retry-After`. Only an id
//! that is neither here nor fresh is unknown.

use crate::store;
use crate::watchers::Watchers;
use axum::http::StatusCode;
use contracts::{ReservationId, UserId};
use nats::runtime::AppState;
use nats::web::{Problem, ProblemType};
use std::future::Future;
use std::time::Duration;
use time::OffsetDateTime;

/// How long after its id was made a reservation may still be on its way here. Ids are UUIDv7,
/// made by seat-svc's clock: this also absorbs clocks that disagree by less than a minute.
pub const FRESH: time::Duration = time::Duration::minutes(1);
/// How long a request waits for a fresh reservation before it answers 503.
const WAIT: Duration = Duration::from_secs(2);
/// How often a waiting request looks again: another replica may create the reservation, and
/// only the commits of this process wake it at once.
const LOOK_AGAIN: Duration = Duration::from_millis(250);

/// Whether `id` was made recently enough that its reservation may not have arrived yet.
pub fn fresh(id: ReservationId, now: OffsetDateTime) -> bool {
    id.made_within(FRESH, now)
}

/// Runs `ask` (a read, or a command, that finds nothing for an id that is not here); when it
/// finds nothing for a fresh id, waits until the reservation has arrived and asks once more.
/// `None` in the end: 404 for an id that is not fresh (or is here but not the caller's), 503
/// with `Retry-After` for one that has not arrived in time.
pub async fn read_your_writes<T, F, Fut>(
    s: &AppState<Watchers>,
    user: &UserId,
    id: ReservationId,
    mut ask: F,
) -> Result<T, Problem>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, Problem>>,
{
    if let Some(found) = ask().await? {
        return Ok(found);
    }
    if fresh(id, OffsetDateTime::now_utc()) && !arrived(s, user, id).await? {
        return Err(not_yet(id));
    }
    ask().await?.ok_or_else(|| unknown(id))
}

/// Before a command about a fresh id: waits until its reservation is here (503 with
/// `Retry-After` if it does not come in time). A command is a unit of work, run by the
/// service's one committer; one about a reservation not here yet would run there for nothing
/// and then wait anyway, while this looks with a read.
pub async fn before_command(
    s: &AppState<Watchers>,
    user: &UserId,
    id: ReservationId,
) -> Result<(), Problem> {
    if fresh(id, OffsetDateTime::now_utc()) && !arrived(s, user, id).await? {
        return Err(not_yet(id));
    }
    Ok(())
}

/// Waits up to [`WAIT`] until reservation `id` is here (anyone's); whether it came. A user
/// may have a few such requests waiting at once (429 beyond).
async fn arrived(
    s: &AppState<Watchers>,
    user: &UserId,
    id: ReservationId,
) -> Result<bool, Problem> {
    let deadline = tokio::time::Instant::now() + WAIT;
    // Woken by this process's commit of the reservation; listening before the first look, so a
    // commit in between is not missed.
    let mut awaiting = s.settings.await_arrival(user, id)?;
    loop {
        if store::exists(&mut s.db.reader().await?, id).await? {
            return Ok(true);
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return Ok(false),
            _ = s.stopping.cancelled() => return Ok(false),
            // This process committed a change of it: it is here, no need to look.
            _ = awaiting.signal.changed() => return Ok(true),
            _ = tokio::time::sleep(LOOK_AGAIN) => {}
        }
    }
}

/// No such reservation of the caller's.
pub const UNKNOWN_RESERVATION: ProblemType = ProblemType::new(
    "unknown-reservation",
    StatusCode::NOT_FOUND,
    "Unknown reservation",
);
/// A reservation whose hold was just made and that has not reached this service yet.
pub const RESERVATION_NOT_READY: ProblemType = ProblemType::new(
    "reservation-not-ready",
    StatusCode::SERVICE_UNAVAILABLE,
    "Reservation not ready",
);

pub fn unknown(id: ReservationId) -> Problem {
    Problem::new(
        UNKNOWN_RESERVATION,
        crate::domain::Rejection::Unknown(id).to_string(),
    )
}

fn not_yet(id: ReservationId) -> Problem {
    Problem::new(
        RESERVATION_NOT_READY,
        format!(
            "reservation {id} is still being set up (its hold was just made); try again in a \
             moment"
        ),
    )
    .retry_after(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_made_now_is_fresh_and_one_made_long_ago_is_not() {
        let id = ReservationId::new();
        let now = OffsetDateTime::now_utc();
        assert!(fresh(id, now));
        assert!(fresh(id, now - time::Duration::seconds(30)));
        assert!(!fresh(id, now + time::Duration::minutes(5)));
        assert!(!fresh(id, now - time::Duration::minutes(5)));
        // Not a UUIDv7: no time in it, never fresh.
        assert!(!fresh(ReservationId(uuid::Uuid::new_v4()), now));
    }
}
