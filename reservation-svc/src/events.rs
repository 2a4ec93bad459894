//! events: records what seat and payment events tell about each saga, and announces a
//! reservation once it is confirmed.

use crate::domain::{Fact, Status};
use crate::{SERVICE, store};
use contracts::events::ReservationConfirmed;
use contracts::{Event, PaymentEvent, ReservationEvent, SeatEvent};
use platform::apply::Apply;
use platform::consumer::{Delivery, Outcome, retry_delay};
use platform::db::Tx;
use platform::outbox::emit;
use time::OffsetDateTime;

pub const SEAT_EVENTS: &[&str] = &["held", "sold", "released", "sale_rejected"];
pub const PAYMENT_EVENTS: &[&str] = &["completed", "failed", "refunded"];

pub struct SagaTracker;

/// Adds `fact` to the reservation the event is about. An event that arrives before the
/// reservation exists (before its `seat.held`, only possible on redelivery) is retried.
async fn learn<E: Event>(
    tx: &mut Tx,
    d: &Delivery<E>,
    fact: Fact,
    now: OffsetDateTime,
) -> anyhow::Result<Outcome> {
    let Some(id) = d.event.reservation_id() else {
        return Ok(Outcome::Reject {
            reason: "event carries no reservation id".into(),
        });
    };
    let Some(mut r) = store::get(tx, id).await? else {
        return Ok(Outcome::Retry {
            after: retry_delay(d.delivered),
            reason: format!("reservation {id} not known yet"),
        });
    };
    let before = r.facts.status().0;
    r.facts.learn(&fact);
    store::save_facts(tx, id, &r.facts, platform::to_millis(now)).await?;
    if before != Status::Confirmed && r.facts.status().0 == Status::Confirmed {
        let confirmed = ReservationEvent::Confirmed(ReservationConfirmed { reservation_id: id });
        emit(tx, SERVICE, &confirmed, Some(d.envelope.id), now).await?;
    }
    Ok(Outcome::Done)
}

impl Apply<SeatEvent> for SagaTracker {
    async fn apply(
        &self,
        tx: &mut Tx,
        d: &Delivery<SeatEvent>,
        now: OffsetDateTime,
    ) -> anyhow::Result<Outcome> {
        match (&d.event, Fact::from_seat(&d.event)) {
            (SeatEvent::Held(held), _) => {
                store::insert_from_hold(tx, held, platform::to_millis(now)).await?;
                Ok(Outcome::Done)
            }
            (_, Some(fact)) => learn(tx, d, fact, now).await,
            (_, None) => Ok(Outcome::Done),
        }
    }
}

impl Apply<PaymentEvent> for SagaTracker {
    async fn apply(
        &self,
        tx: &mut Tx,
        d: &Delivery<PaymentEvent>,
        now: OffsetDateTime,
    ) -> anyhow::Result<Outcome> {
        learn(tx, d, Fact::from_payment(&d.event), now).await
    }
}
