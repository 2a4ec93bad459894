//! events: moves reservations along the saga from seat and payment events, and announces a
//! confirmed reservation.

use crate::domain::{Status, Transition, on_payment_event, on_seat_event};
use crate::{SERVICE, store};
use contracts::events::ReservationConfirmed;
use contracts::{Event, PaymentEvent, ReservationEvent, ReservationId, SeatEvent};
use platform::apply::Apply;
use platform::consumer::{Delivery, Outcome, retry_delay};
use platform::db::Tx;
use platform::outbox::emit;
use time::OffsetDateTime;

pub const SEAT_EVENTS: &[&str] = &["held", "sold", "released", "sale_rejected"];
pub const PAYMENT_EVENTS: &[&str] = &["failed"];

pub struct SagaTracker;

/// Applies `decide`'s transition to the reservation the event is about. An event that arrives
/// before the reservation exists (before its `seat.held`) is retried until that one is in.
async fn advance<E: Event>(
    tx: &mut Tx,
    d: &Delivery<E>,
    now: OffsetDateTime,
    decide: impl Fn(Status) -> Option<Transition>,
) -> anyhow::Result<Outcome> {
    let Some(id) = d.event.reservation_id() else {
        return Ok(Outcome::Reject {
            reason: "event carries no reservation id".into(),
        });
    };
    let Some(current) = store::get(tx, id).await? else {
        return Ok(Outcome::Retry {
            after: retry_delay(d.delivered),
            reason: format!("reservation {id} not known yet"),
        });
    };
    if let Some(t) = decide(current.status) {
        store::set_status(
            tx,
            id,
            t.status,
            t.reason.as_deref(),
            platform::to_millis(now),
        )
        .await?;
        if t.status == Status::Confirmed {
            confirm(tx, id, d.envelope.id, now).await?;
        }
    }
    Ok(Outcome::Done)
}

async fn confirm(
    tx: &mut Tx,
    id: ReservationId,
    cause: uuid::Uuid,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    let confirmed = ReservationEvent::Confirmed(ReservationConfirmed { reservation_id: id });
    emit(tx, SERVICE, &confirmed, Some(cause), now).await?;
    Ok(())
}

impl Apply<SeatEvent> for SagaTracker {
    async fn apply(
        &self,
        tx: &mut Tx,
        d: &Delivery<SeatEvent>,
        now: OffsetDateTime,
    ) -> anyhow::Result<Outcome> {
        if let SeatEvent::Held(held) = &d.event {
            store::insert_from_hold(tx, held, platform::to_millis(now)).await?;
            return Ok(Outcome::Done);
        }
        advance(tx, d, now, |status| on_seat_event(status, &d.event)).await
    }
}

impl Apply<PaymentEvent> for SagaTracker {
    async fn apply(
        &self,
        tx: &mut Tx,
        d: &Delivery<PaymentEvent>,
        now: OffsetDateTime,
    ) -> anyhow::Result<Outcome> {
        advance(tx, d, now, |status| on_payment_event(status, &d.event)).await
    }
}
