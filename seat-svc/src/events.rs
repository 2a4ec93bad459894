//! events: builds inventory from `concert.schedule_opened`, and settles holds on payment and
//! cancel events (sell, refuse the sale, or release).

use crate::domain::{OnPaid, on_payment_completed, releases_on_cancel, releases_on_payment_failed};
use crate::{SERVICE, store};
use contracts::events::{SeatReleased, SeatSaleRejected, SeatSold};
use contracts::{
    ConcertEvent, PaymentEvent, ReleaseReason, ReservationEvent, ReservationId, SeatEvent,
};
use platform::apply::Apply;
use platform::consumer::{Delivery, Outcome};
use platform::db::Tx;
use platform::outbox::emit;
use time::OffsetDateTime;
use uuid::Uuid;

pub const CONCERT_EVENTS: &[&str] = &["schedule_opened"];
pub const PAYMENT_EVENTS: &[&str] = &["completed", "failed"];
pub const RESERVATION_EVENTS: &[&str] = &["cancelled"];

pub struct InventoryBuilder;

impl Apply<ConcertEvent> for InventoryBuilder {
    async fn apply(
        &self,
        tx: &mut Tx,
        d: &Delivery<ConcertEvent>,
        _now: OffsetDateTime,
    ) -> anyhow::Result<Outcome> {
        match &d.event {
            ConcertEvent::ScheduleOpened(opened) => store::insert_schedule(tx, opened).await?,
        }
        Ok(Outcome::Done)
    }
}

/// Ends the hold of `r` by releasing its seats for `reason`: frees them, ends its queue token,
/// and announces `seat.released`.
pub async fn release(
    tx: &mut Tx,
    r: ReservationId,
    seat_ids: Vec<contracts::SeatId>,
    reason: ReleaseReason,
    cause: Option<Uuid>,
    now: OffsetDateTime,
    queue_active_limit: i64,
) -> anyhow::Result<()> {
    store::release(tx, r, reason).await?;
    store::finish_token(tx, r, queue_active_limit).await?;
    let released = SeatEvent::Released(SeatReleased {
        reservation_id: r,
        seat_ids,
        reason,
    });
    emit(tx, SERVICE, &released, cause, now).await?;
    Ok(())
}

/// Settles holds: payments sell or fail them, cancels release them.
pub struct HoldKeeper {
    pub queue_active_limit: i64,
}

impl Apply<PaymentEvent> for HoldKeeper {
    async fn apply(
        &self,
        tx: &mut Tx,
        d: &Delivery<PaymentEvent>,
        now: OffsetDateTime,
    ) -> anyhow::Result<Outcome> {
        let cause = Some(d.envelope.id);
        let limit = self.queue_active_limit;
        match &d.event {
            PaymentEvent::Completed(paid) => {
                let r = paid.reservation_id;
                let hold = store::get_hold(tx, r).await?;
                let reject = |reason: &str| {
                    SeatEvent::SaleRejected(SeatSaleRejected {
                        reservation_id: r,
                        reason: reason.to_owned(),
                    })
                };
                match on_payment_completed(hold.as_ref().map(|(h, _)| h), now) {
                    OnPaid::Sell => {
                        store::sell(tx, r).await?;
                        store::finish_token(tx, r, limit).await?;
                        let seat_ids = hold.map(|(_, seats)| seats).unwrap_or_default();
                        let sold = SeatEvent::Sold(SeatSold {
                            reservation_id: r,
                            seat_ids,
                        });
                        emit(tx, SERVICE, &sold, cause, now).await?;
                    }
                    OnPaid::ExpireAndReject => {
                        let seats = hold.map(|(_, seats)| seats).unwrap_or_default();
                        release(tx, r, seats, ReleaseReason::Expired, cause, now, limit).await?;
                        emit(tx, SERVICE, &reject("hold_expired"), cause, now).await?;
                    }
                    OnPaid::Reject(reason) => {
                        emit(tx, SERVICE, &reject(reason), cause, now).await?
                    }
                    OnPaid::Nothing => {}
                }
            }
            PaymentEvent::Failed(failed) => {
                let r = failed.reservation_id;
                let hold = store::get_hold(tx, r).await?;
                if releases_on_payment_failed(hold.as_ref().map(|(h, _)| h)) {
                    let seats = hold.map(|(_, seats)| seats).unwrap_or_default();
                    release(
                        tx,
                        r,
                        seats,
                        ReleaseReason::PaymentFailed,
                        cause,
                        now,
                        limit,
                    )
                    .await?;
                }
            }
            // Not subscribed; harmless if it ever arrives.
            PaymentEvent::Refunded(_) => {}
        }
        Ok(Outcome::Done)
    }
}

impl Apply<ReservationEvent> for HoldKeeper {
    async fn apply(
        &self,
        tx: &mut Tx,
        d: &Delivery<ReservationEvent>,
        now: OffsetDateTime,
    ) -> anyhow::Result<Outcome> {
        if let ReservationEvent::Cancelled(c) = &d.event {
            let r = c.reservation_id;
            let hold = store::get_hold(tx, r).await?;
            if releases_on_cancel(hold.as_ref().map(|(h, _)| h)) {
                let seats = hold.map(|(_, seats)| seats).unwrap_or_default();
                release(
                    tx,
                    r,
                    seats,
                    ReleaseReason::Cancelled,
                    Some(d.envelope.id),
                    now,
                    self.queue_active_limit,
                )
                .await?;
            }
        }
        Ok(Outcome::Done)
    }
}
