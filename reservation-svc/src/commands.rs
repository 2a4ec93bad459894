//! commands: the user's pay and cancel. Each decides on the reservation's facts; an accepted
//! command adds its fact and announces its event in one unit of work, and the saga carries it
//! out from there (even while the services that do so are down).

use crate::domain::{self, Fact, Rejection, Status};
use crate::store;
use crate::store::Reservation;
use contracts::events::{PaymentRequested, ReservationCancelled};
use contracts::{ReservationEvent, ReservationId, UserId};
use nats::unit_of_work::{Error, Work};

/// A command on a reservation: who asks, which one, and what it decides from the reservation
/// and the time.
#[derive(Clone)]
pub struct Command {
    pub user: UserId,
    pub id: ReservationId,
    pub decide: fn(&Reservation, time::OffsetDateTime) -> Result<Fact, Rejection>,
}

/// Runs `c` on the caller's reservation; answers the status it leaves the reservation in.
pub async fn run(w: &mut Work, c: Command) -> Result<Status, Error<Rejection>> {
    let mut r = store::get(w, c.id)
        .await?
        .filter(|r| r.user_id == c.user)
        .ok_or(Rejection::Unknown(c.id))?;
    let fact = (c.decide)(&r, w.now())?;
    r.facts.learn(&fact);
    store::save_facts(w, c.id, &r.facts, r.status).await?;
    let event = match fact {
        Fact::PaymentRequested => ReservationEvent::PaymentRequested(PaymentRequested {
            reservation_id: c.id,
            user_id: c.user,
            amount: r.amount,
        }),
        Fact::Cancelled => ReservationEvent::Cancelled(ReservationCancelled {
            reservation_id: c.id,
            user_id: c.user,
        }),
        other => {
            let e = anyhow::anyhow!("a command decided {other:?}, which no command announces");
            return Err(e.into());
        }
    };
    w.emit(&event);
    Ok(r.facts.status().0)
}

/// The pay command.
pub fn pay(user: UserId, id: ReservationId) -> Command {
    Command {
        user,
        id,
        decide: |r, _| domain::request_payment(&r.facts),
    }
}

/// The cancel command.
pub fn cancel(user: UserId, id: ReservationId) -> Command {
    Command {
        user,
        id,
        decide: |r, now| domain::cancel(&r.facts, r.starts_at.is_some_and(|s| now >= s)),
    }
}
