//! holds: a user holds seats with an active queue token (all of them or none), for a while; the
//! hold is then sold when its payment completes, or released when its payment fails, its
//! reservation is cancelled or its deadline passes. Every hold emits `seat.held` and ends with
//! `seat.sold` or `seat.released` (or its sale is refused with `seat.sale_rejected`).

pub mod domain;
pub mod http;
pub mod settle;
pub mod store;

pub use domain::HoldStatus;

use crate::inventory;
use crate::queue::{self, domain::QueueToken, domain::TokenStatus, domain::standing};
use contracts::events::SeatHeld;
use contracts::{Points, ReservationId, ScheduleId, SeatEvent, SeatId, UserId};
use nats::unit_of_work::{Error, Rejection, Work};
use std::time::Duration;
use time::OffsetDateTime;

/// Why a hold is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldRefused {
    /// seat-svc has no such schedule (maybe not yet).
    UnknownSchedule,
    /// The token is someone else's or for another schedule.
    NotYourToken,
    NotActive(TokenStatus),
    /// The token already holds seats for this reservation.
    AlreadyHolding(ReservationId),
    UnknownSeats,
    SeatsTaken,
    /// The seats' prices add up to more points than exist.
    TooExpensive,
    /// The show has started.
    SchedulePast,
}

impl Rejection for HoldRefused {}

/// What a user asks to hold.
#[derive(Clone)]
pub struct HoldRequest {
    pub user: UserId,
    pub schedule: ScheduleId,
    pub token: QueueToken,
    pub seats: Vec<SeatId>,
    pub ttl: Duration,
    /// The first this many live tokens of a schedule are active.
    pub active_limit: i64,
}

/// A hold that was taken.
#[derive(Debug, Clone)]
pub struct Held {
    pub reservation: ReservationId,
    pub seats: Vec<SeatId>,
    pub amount: Points,
    pub expires_at: OffsetDateTime,
}

/// Holds the seats of `req` for a new reservation, or refuses (keeping nothing).
pub async fn hold(w: &mut Work, req: HoldRequest) -> Result<Held, Error<HoldRefused>> {
    // A token is only ever issued for an existing schedule, so a matching token proves the
    // schedule exists; only without one does the schedule need looking up (404 rather than 403).
    let for_hold = queue::store::for_hold(w, &req.token, req.active_limit).await?;
    let (live_hold, starts_at_ms) = match for_hold {
        Some(q) if q.token.user == req.user && q.token.schedule == req.schedule => {
            let (status, _) = standing(q.token.state, q.ahead, req.active_limit);
            if status != TokenStatus::Active {
                return Err(HoldRefused::NotActive(status).into());
            }
            (q.live_hold, q.starts_at_ms)
        }
        _ if !inventory::store::schedule_exists(w, req.schedule).await? => {
            return Err(HoldRefused::UnknownSchedule.into());
        }
        _ => return Err(HoldRefused::NotYourToken.into()),
    };
    let now_ms = w.now_ms();
    if starts_at_ms.is_some_and(|starts_at| starts_at <= now_ms) {
        return Err(HoldRefused::SchedulePast.into());
    }
    // One live hold per token: a second would let one admission take seats twice.
    if let Some(r) = live_hold {
        return Err(HoldRefused::AlreadyHolding(r).into());
    }
    let reservation = ReservationId::new();
    let claimed = inventory::store::claim(w, req.schedule, reservation, &req.seats).await?;
    if claimed.prices.len() != req.seats.len() {
        let known = inventory::store::count_known(w, req.schedule, &req.seats).await?;
        return Err(if known < req.seats.len() as i64 {
            HoldRefused::UnknownSeats
        } else {
            HoldRefused::SeatsTaken
        }
        .into());
    }
    let amount = claimed
        .prices
        .into_iter()
        .try_fold(Points::ZERO, |sum, p| sum.checked_add(Points::new(p).ok()?))
        .ok_or(HoldRefused::TooExpensive)?;
    let expires_at = w.now() + req.ttl;
    // Writes whose outcome nothing here reads: sent later, all in one statement.
    queue::store::touch(w, &req.token, now_ms).await?;
    store::insert(
        w,
        &store::NewHold {
            reservation,
            user: &req.user,
            schedule: req.schedule,
            token: &req.token,
            seats: &req.seats,
            amount,
            expires_at_ms: nats::db::to_millis(expires_at),
            now_ms,
        },
    )
    .await?;
    w.emit(&SeatEvent::Held(SeatHeld {
        reservation_id: reservation,
        user_id: req.user,
        schedule_id: req.schedule,
        seat_ids: req.seats.clone(),
        amount,
        expires_at,
        starts_at: starts_at_ms.map(nats::db::from_millis),
        versions: claimed.versions,
    }));
    Ok(Held {
        reservation,
        seats: req.seats,
        amount,
        expires_at,
    })
}
