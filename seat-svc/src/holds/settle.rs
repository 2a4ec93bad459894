//! settle: what payment and cancel events do to a hold — a completed payment sells it (or, when
//! the hold is gone, the sale is refused so the payment is refunded); a failed payment or a
//! cancel releases it.

use super::domain::{OnPaid, on_payment_completed, releases_on_cancel, releases_on_payment_failed};
use super::store;
use crate::{inventory, queue};
use contracts::events::{SeatReleased, SeatSaleRejected, SeatSold};
use contracts::{
    PaymentEvent, PaymentKind, ReleaseReason, ReservationEvent, ReservationId, ReservationKind,
    SeatEvent, SeatId,
};
use nats::messaging::consumer::{Delivery, EventHandler, NotHandled};
use nats::messaging::topology::Subscription;
use nats::unit_of_work::{Error, Work};

/// The payment outcomes that settle a hold.
pub const PAYMENTS: Subscription<PaymentEvent> =
    Subscription::to(&[PaymentKind::Completed, PaymentKind::Failed]);
/// The cancels that release one.
pub const CANCELS: Subscription<ReservationEvent> = Subscription::to(&[ReservationKind::Cancelled]);

/// Ends the hold of `r` by releasing its seats for `reason`: frees them, ends its queue token,
/// and announces `seat.released`.
pub async fn release(
    w: &mut Work,
    r: ReservationId,
    seat_ids: Vec<SeatId>,
    reason: ReleaseReason,
) -> anyhow::Result<()> {
    // The hold's and the token's changes are sent with the seats' (one statement).
    store::release(w, r, reason).await?;
    queue::store::finish_for(w, r).await?;
    let versions = inventory::store::free(w, r).await?;
    w.emit(&SeatEvent::Released(SeatReleased {
        reservation_id: r,
        seat_ids,
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
                let hold = store::get(w, r).await?;
                let seats = || hold.as_ref().map(|(_, s)| s.clone()).unwrap_or_default();
                let reject = |reason| {
                    SeatEvent::SaleRejected(SeatSaleRejected {
                        reservation_id: r,
                        reason,
                    })
                };
                match on_payment_completed(hold.as_ref().map(|(h, _)| h), w.now()) {
                    OnPaid::Sell => {
                        // Sent with the seats' change (one statement).
                        store::sell(w, r).await?;
                        queue::store::finish_for(w, r).await?;
                        let versions = inventory::store::sell(w, r).await?;
                        w.emit(&SeatEvent::Sold(SeatSold {
                            reservation_id: r,
                            seat_ids: seats(),
                            versions,
                        }));
                    }
                    OnPaid::ExpireAndReject => {
                        release(w, r, seats(), ReleaseReason::Expired).await?;
                        w.emit(&reject(contracts::SaleRejection::HoldExpired));
                    }
                    OnPaid::Reject(reason) => w.emit(&reject(reason)),
                    OnPaid::Nothing => {}
                }
            }
            PaymentEvent::Failed(failed) => {
                let r = failed.reservation_id;
                if let Some((hold, seats)) = store::get(w, r).await?
                    && releases_on_payment_failed(Some(&hold))
                {
                    release(w, r, seats, ReleaseReason::PaymentFailed).await?;
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
            if let Some((hold, seats)) = store::get(w, r).await?
                && releases_on_cancel(Some(&hold))
            {
                release(w, r, seats, ReleaseReason::Cancelled).await?;
            }
        }
        Ok(())
    }
}
