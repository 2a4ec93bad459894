//! cashier: debits a wallet when a reservation asks to be paid (`payment.completed`, or
//! `payment.failed` with the reason), and refunds a debited reservation that is cancelled or
//! whose sale seat-svc refused (`payment.refunded`).

use super::domain::{PaymentStatus, Step, on_cancelled, on_payment_requested, on_sale_rejected};
use super::store::{self, Payment};
use crate::wallet::domain::EntryKind;
use crate::wallet::store as wallet;
use contracts::events::{PaymentCompleted, PaymentFailed, PaymentRefunded};
use contracts::{
    PaymentEvent, PaymentFailure, Points, ReservationEvent, ReservationId, ReservationKind,
    SeatEvent, SeatKind,
};
use nats::messaging::consumer::{Delivery, EventHandler, NotHandled};
use nats::messaging::topology::Subscription;
use nats::unit_of_work::{Error, Work};

/// Payment requests and cancels.
pub const RESERVATIONS: Subscription<ReservationEvent> = Subscription::to(&[
    ReservationKind::PaymentRequested,
    ReservationKind::Cancelled,
]);
/// Sales seat-svc refused.
pub const REFUSED_SALES: Subscription<SeatEvent> = Subscription::to(&[SeatKind::SaleRejected]);

pub struct Cashier;

/// A decision about a payment nobody had decided on must be the first: if another replica's
/// unit of work decided meanwhile, fail this one so it is retried and sees that decision.
fn claimed(first: bool, r: ReservationId) -> anyhow::Result<()> {
    anyhow::ensure!(
        first,
        "the payment of {r} was decided concurrently; retrying"
    );
    Ok(())
}

/// Records that the payment of `r` failed for `reason` over its recorded state (this unit's
/// own claim, or a remembered cancel, locked by this unit), and announces it.
async fn fail(w: &mut Work, r: ReservationId, reason: PaymentFailure) -> anyhow::Result<()> {
    let now = w.now_ms();
    store::set_status(w, r, PaymentStatus::Failed, Some(reason), now).await?;
    w.emit(&PaymentEvent::Failed(PaymentFailed {
        reservation_id: r,
        reason,
    }));
    Ok(())
}

/// Gives the points of a debited payment back and announces it.
async fn refund(w: &mut Work, r: ReservationId, p: Payment) -> anyhow::Result<()> {
    let now = w.now_ms();
    let refunded = wallet::settle(w, &p.user, EntryKind::Refund, r, p.amount, now).await?;
    anyhow::ensure!(refunded.is_some(), "no wallet of {} to refund", p.user);
    store::set_status(w, r, PaymentStatus::Refunded, None, now).await?;
    w.emit(&PaymentEvent::Refunded(PaymentRefunded {
        reservation_id: r,
        amount: p.amount,
    }));
    Ok(())
}

impl EventHandler<ReservationEvent> for Cashier {
    async fn handle(
        &self,
        w: &mut Work,
        d: &Delivery<ReservationEvent>,
    ) -> Result<(), Error<NotHandled>> {
        let now = w.now_ms();
        match &d.event {
            ReservationEvent::PaymentRequested(req) => {
                let r = req.reservation_id;
                let (user, amount) = (&req.user_id, req.amount);
                // A request that finds no payment debits (`on_payment_requested(None)`), and
                // nearly every request is such a first one: its claim is tried before any read,
                // so that a payment is two statements (claim, debit), not three.
                let debited = PaymentStatus::Debited;
                if store::claim(w, r, user, amount, debited, now).await? {
                    // The debit's conditional update says whether the wallet covers the
                    // amount, with no read of the balance before it.
                    match wallet::settle(w, user, EntryKind::Debit, r, amount, now).await? {
                        Some(_) => w.emit(&PaymentEvent::Completed(PaymentCompleted {
                            reservation_id: r,
                            user_id: user.clone(),
                            amount,
                        })),
                        None => fail(w, r, PaymentFailure::InsufficientPoints).await?,
                    }
                    return Ok(());
                }
                // Decided before (a redelivery, or a cancel first), or by another replica
                // meanwhile: its recorded state says what this request does.
                let existing = store::get(w, r).await?.map(|p| p.status);
                match on_payment_requested(existing) {
                    // Only over a recorded state (a remembered cancel).
                    Step::Fail(reason) => fail(w, r, reason).await?,
                    // A claim refused finds a payment: only one that was rolled back since
                    // would not, and this unit is then retried.
                    Step::Debit => claimed(false, r)?,
                    _ => {}
                }
            }
            ReservationEvent::Cancelled(c) => {
                let r = c.reservation_id;
                let payment = store::get(w, r).await?;
                match (on_cancelled(payment.as_ref().map(|p| p.status)), payment) {
                    (Step::Refund, Some(p)) => refund(w, r, p).await?,
                    (Step::RememberCancel, _) => {
                        let unpaid = PaymentStatus::CancelledUnpaid;
                        let first =
                            store::claim(w, r, &c.user_id, Points::ZERO, unpaid, now).await?;
                        claimed(first, r)?;
                    }
                    _ => {}
                }
            }
            // Not subscribed; harmless if it ever arrives.
            ReservationEvent::Confirmed(_) => {}
        }
        Ok(())
    }
}

impl EventHandler<SeatEvent> for Cashier {
    async fn handle(&self, w: &mut Work, d: &Delivery<SeatEvent>) -> Result<(), Error<NotHandled>> {
        if let SeatEvent::SaleRejected(rejected) = &d.event {
            let r = rejected.reservation_id;
            let payment = store::get(w, r).await?;
            if let (Step::Refund, Some(p)) = (
                on_sale_rejected(payment.as_ref().map(|p| p.status)),
                payment,
            ) {
                refund(w, r, p).await?;
            }
        }
        Ok(())
    }
}
