//! tracker: follows each saga from seat and payment events — a `seat.held` creates the
//! reservation, every later event adds a fact — and announces a reservation once it is
//! confirmed.

use crate::domain::{Fact, Status};
use crate::store;
use crate::watchers::Watchers;
use contracts::events::ReservationConfirmed;
use contracts::{Event, PaymentEvent, PaymentKind, ReservationEvent, SeatEvent, SeatKind};
use nats::messaging::consumer::{Delivery, EventHandler, NotHandled};
use nats::messaging::topology::Subscription;
use nats::unit_of_work::{Error, Work};

/// The seat events of a saga.
pub const SEATS: Subscription<SeatEvent> = Subscription::to(&[
    SeatKind::Held,
    SeatKind::Sold,
    SeatKind::Released,
    SeatKind::SaleRejected,
]);
/// The payment events of a saga.
pub const PAYMENTS: Subscription<PaymentEvent> = Subscription::to(&[
    PaymentKind::Completed,
    PaymentKind::Failed,
    PaymentKind::Refunded,
]);

/// The consumer of a saga's events; it wakes the status streams of the reservations it changes.
#[derive(Clone)]
pub struct SagaTracker {
    pub watchers: Watchers,
}

/// Adds `fact` to the reservation the event is about. An event that arrives before the
/// reservation exists (before its `seat.held`, only possible on redelivery) is retried.
async fn learn<E: Event>(
    w: &mut Work,
    d: &Delivery<E>,
    fact: Fact,
    watchers: &Watchers,
) -> Result<(), Error<NotHandled>> {
    let Some(id) = d.event.reservation_id() else {
        return Err(NotHandled::Never("event carries no reservation id".into()).into());
    };
    let Some(mut r) = store::get(w, id).await? else {
        return Err(NotHandled::NotYet(format!("reservation {id} not known yet")).into());
    };
    let before = r.facts.status().0;
    r.facts.learn(&fact);
    store::save_facts(w, id, &r.facts, before).await?;
    let watchers = watchers.clone();
    w.after_commit(move || watchers.changed(id));
    if before != Status::Confirmed && r.facts.status().0 == Status::Confirmed {
        w.emit(&ReservationEvent::Confirmed(ReservationConfirmed {
            reservation_id: id,
        }));
    }
    Ok(())
}

/// The reservations that `events` add facts to, read ahead in one statement.
async fn read_ahead<E: Event>(
    w: &mut Work,
    events: &[&Delivery<E>],
    learns: impl Fn(&E) -> bool,
) -> anyhow::Result<()> {
    let mut ids: Vec<_> = events
        .iter()
        .filter(|d| learns(&d.event))
        .filter_map(|d| d.event.reservation_id())
        .collect();
    store::read_ahead(w, &mut ids).await
}

impl EventHandler<SeatEvent> for SagaTracker {
    async fn read_ahead(
        &self,
        w: &mut Work,
        events: &[&Delivery<SeatEvent>],
    ) -> anyhow::Result<()> {
        // A hold creates its reservation: there is nothing to read.
        read_ahead(w, events, |e| {
            !matches!(e, SeatEvent::Held(_)) && Fact::from_seat(e).is_some()
        })
        .await
    }

    async fn handle(&self, w: &mut Work, d: &Delivery<SeatEvent>) -> Result<(), Error<NotHandled>> {
        match (&d.event, Fact::from_seat(&d.event)) {
            (SeatEvent::Held(held), _) => {
                let now = w.now_ms();
                store::insert_from_hold(w, held, now).await?;
                // Requests waiting for it to arrive ([`crate::arrival`]) go on at once.
                let (watchers, id) = (self.watchers.clone(), held.reservation_id);
                w.after_commit(move || watchers.changed(id));
                Ok(())
            }
            (_, Some(fact)) => learn(w, d, fact, &self.watchers).await,
            (_, None) => Ok(()),
        }
    }
}

impl EventHandler<PaymentEvent> for SagaTracker {
    async fn read_ahead(
        &self,
        w: &mut Work,
        events: &[&Delivery<PaymentEvent>],
    ) -> anyhow::Result<()> {
        read_ahead(w, events, |_| true).await
    }

    async fn handle(
        &self,
        w: &mut Work,
        d: &Delivery<PaymentEvent>,
    ) -> Result<(), Error<NotHandled>> {
        learn(w, d, Fact::from_payment(&d.event), &self.watchers).await
    }
}
