//! settle: what payment and cancel events do to a hold — a completed payment sells it (or, when
//! the hold is gone, the sale is refused so the payment is refunded); a failed payment or a
//! cancel releases it.

use super::domain::{OnPaid, on_payment_completed, releases_on_cancel, releases_on_payment_failed};
use super::store::{self, Taken};
use crate::{inventory, queue};
use contracts::events::{SeatReleased, SeatSaleRejected, SeatSold};
use contracts::{
    PaymentEvent, PaymentKind, ReleaseReason, ReservationEvent, ReservationId, ReservationKind,
    SeatEvent,
};
use nats::messaging::consumer::{Delivery, EventHandler, NotHandled};
use nats::messaging::topology::Subscription;
use nats::unit_of_work::{Error, Work};

/// The payment outcomes that settle a hold.
pub const PAYMENTS: Subscription<PaymentEvent> =
    Subscription::to(&[PaymentKind::Completed, PaymentKind::Failed]);
/// The cancels that release one.
pub const CANCELS: Subscription<ReservationEvent> = Subscription::to(&[ReservationKind::Cancelled]);

/// Ends the hold of `r` (as [`store::get`] read it) by releasing its seats for `reason`: frees
/// them, ends its queue token, and announces `seat.released`.
pub async fn release(
    w: &mut Work,
    r: ReservationId,
    taken: Taken,
    reason: ReleaseReason,
) -> anyhow::Result<()> {
    // The hold's, the token's and the seats' changes go as one statement, in a batch with the
    // next hold's read.
    store::release(w, r, reason).await?;
    queue::store::finish_for(w, r).await?;
    let versions = inventory::store::free(w, r, &taken.owned).await?;
    w.emit(&SeatEvent::Released(SeatReleased {
        reservation_id: r,
        seat_ids: taken.seats,
        reason,
        versions,
    }));
    Ok(())
}

/// Settles holds: payments sell or fail them, cancels release them.
#[derive(Clone)]
pub struct HoldKeeper;

impl EventHandler<PaymentEvent> for HoldKeeper {
    async fn handle(
        &self,
        w: &mut Work,
        d: &Delivery<PaymentEvent>,
    ) -> Result<(), Error<NotHandled>> {
        match &d.event {
            PaymentEvent::Completed(paid) => {
                let r = paid.reservation_id;
                let taken = store::get(w, r).await?;
                let reject = |reason| {
                    SeatEvent::SaleRejected(SeatSaleRejected {
                        reservation_id: r,
                        reason,
                    })
                };
                let paid = on_payment_completed(taken.as_ref().map(|t| &t.hold), w.now());
                match (paid, taken) {
                    (OnPaid::Sell, Some(taken)) => {
                        // One statement with the seats' change, in a batch with the next
                        // hold's read.
                        store::sell(w, r).await?;
                        queue::store::finish_for(w, r).await?;
                        let versions = inventory::store::sell(w, r, &taken.owned).await?;
                        w.emit(&SeatEvent::Sold(SeatSold {
                            reservation_id: r,
                            seat_ids: taken.seats,
                            versions,
                        }));
                    }
                    (OnPaid::ExpireAndReject, Some(taken)) => {
                        release(w, r, taken, ReleaseReason::Expired).await?;
                        w.emit(&reject(contracts::SaleRejection::HoldExpired));
                    }
                    // Not without a hold (the domain then says `UnknownHold`); said as much.
                    (OnPaid::Sell | OnPaid::ExpireAndReject, None) => {
                        w.emit(&reject(contracts::SaleRejection::UnknownHold));
                    }
                    (OnPaid::Reject(reason), _) => w.emit(&reject(reason)),
                    (OnPaid::Nothing, _) => {}
                }
            }
            PaymentEvent::Failed(failed) => {
                let r = failed.reservation_id;
                if let Some(taken) = store::get(w, r).await?
                    && releases_on_payment_failed(Some(&taken.hold))
                {
                    release(w, r, taken, ReleaseReason::PaymentFailed).await?;
                }
            }
            // Not subscribed; harmless if it ever arrives.
            PaymentEvent::Refunded(_) => {}
        }
        Ok(())
    }
}

impl EventHandler<ReservationEvent> for HoldKeeper {
    async fn handle(
        &self,
        w: &mut Work,
        d: &Delivery<ReservationEvent>,
    ) -> Result<(), Error<NotHandled>> {
        if let ReservationEvent::Cancelled(c) = &d.event {
            let r = c.reservation_id;
            if let Some(taken) = store::get(w, r).await?
                && releases_on_cancel(Some(&taken.hold))
            {
                release(w, r, taken, ReleaseReason::Cancelled).await?;
            }
        }
        Ok(())
    }
}
