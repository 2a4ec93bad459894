//! events: debits a wallet when a reservation asks to be paid (`payment.completed` or
//! `payment.failed`), and refunds a debited reservation that is cancelled or whose sale seat-svc
//! refused (`payment.refunded`).

use crate::SERVICE;
use crate::domain::{PaymentStatus, Step, on_cancelled, on_payment_requested, on_sale_rejected};
use crate::store::{self, Payment};
use contracts::events::{PaymentCompleted, PaymentFailed, PaymentRefunded};
use contracts::{PaymentEvent, Points, ReservationEvent, ReservationId, SeatEvent};
use platform::apply::Apply;
use platform::consumer::{Delivery, Outcome};
use platform::db::Tx;
use platform::outbox::emit;
use time::OffsetDateTime;
use uuid::Uuid;

pub const RESERVATION_EVENTS: &[&str] = &["payment_requested", "cancelled"];
pub const SEAT_EVENTS: &[&str] = &["sale_rejected"];

pub struct Cashier;

/// A decision about a payment nobody had decided on must be the first: if another replica's
/// transaction decided meanwhile, fail this one so it is retried and sees that decision.
fn claim(first: bool, r: ReservationId) -> anyhow::Result<()> {
    anyhow::ensure!(
        first,
        "the payment of {r} was decided concurrently; retrying"
    );
    Ok(())
}

struct Ctx<'a> {
    tx: &'a mut Tx,
    cause: Option<Uuid>,
    now: OffsetDateTime,
}

impl Ctx<'_> {
    fn ms(&self) -> i64 {
        platform::to_millis(self.now)
    }

    async fn emit(&mut self, event: PaymentEvent) -> anyhow::Result<()> {
        emit(self.tx, SERVICE, &event, self.cause, self.now).await?;
        Ok(())
    }

    async fn fail(
        &mut self,
        r: ReservationId,
        user: &contracts::UserId,
        amount: Points,
        reason: &str,
    ) -> anyhow::Result<()> {
        let now = self.ms();
        // The first decision about this payment, or one replacing a remembered cancel.
        let failed = PaymentStatus::Failed;
        if !store::claim_payment(self.tx, r, user, amount, failed, Some(reason), now).await? {
            store::set_payment_status(self.tx, r, failed, Some(reason), now).await?;
        }
        self.emit(PaymentEvent::Failed(PaymentFailed {
            reservation_id: r,
            reason: reason.to_owned(),
        }))
        .await
    }

    async fn refund(&mut self, r: ReservationId, payment: Option<Payment>) -> anyhow::Result<()> {
        let Some(p) = payment else { return Ok(()) };
        let now = self.ms();
        store::refund(self.tx, r, &p, now).await?;
        self.emit(PaymentEvent::Refunded(PaymentRefunded {
            reservation_id: r,
            amount: p.amount,
        }))
        .await
    }
}

impl Apply<ReservationEvent> for Cashier {
    async fn apply(
        &self,
        tx: &mut Tx,
        d: &Delivery<ReservationEvent>,
        now: OffsetDateTime,
    ) -> anyhow::Result<Outcome> {
        let mut cx = Ctx {
            tx,
            cause: Some(d.envelope.id),
            now,
        };
        match &d.event {
            ReservationEvent::PaymentRequested(req) => {
                let r = req.reservation_id;
                let existing = store::payment(cx.tx, r).await?.map(|p| p.status);
                let balance = store::points(cx.tx, &req.user_id).await?;
                match on_payment_requested(existing, balance, req.amount) {
                    Step::Debit => {
                        let at = cx.ms();
                        let first = store::claim_payment(
                            cx.tx,
                            r,
                            &req.user_id,
                            req.amount,
                            PaymentStatus::Debited,
                            None,
                            at,
                        )
                        .await?;
                        claim(first, r)?;
                        if store::debit(cx.tx, &req.user_id, r, req.amount, at).await? {
                            cx.emit(PaymentEvent::Completed(PaymentCompleted {
                                reservation_id: r,
                                user_id: req.user_id.clone(),
                                amount: req.amount,
                            }))
                            .await?;
                        } else {
                            // The balance moved between the read and the update (another replica).
                            cx.fail(r, &req.user_id, req.amount, "insufficient_points")
                                .await?;
                        }
                    }
                    Step::Fail(reason) => cx.fail(r, &req.user_id, req.amount, reason).await?,
                    _ => {}
                }
            }
            ReservationEvent::Cancelled(c) => {
                let r = c.reservation_id;
                let payment = store::payment(cx.tx, r).await?;
                match on_cancelled(payment.as_ref().map(|p| p.status)) {
                    Step::Refund => cx.refund(r, payment).await?,
                    Step::RememberCancel => {
                        let at = cx.ms();
                        let first = store::claim_payment(
                            cx.tx,
                            r,
                            &c.user_id,
                            Points::ZERO,
                            PaymentStatus::CancelledUnpaid,
                            None,
                            at,
                        )
                        .await?;
                        claim(first, r)?;
                    }
                    _ => {}
                }
            }
            // Not subscribed; harmless if it ever arrives.
            ReservationEvent::Confirmed(_) => {}
        }
        Ok(Outcome::Done)
    }
}

impl Apply<SeatEvent> for Cashier {
    async fn apply(
        &self,
        tx: &mut Tx,
        d: &Delivery<SeatEvent>,
        now: OffsetDateTime,
    ) -> anyhow::Result<Outcome> {
        let mut cx = Ctx {
            tx,
            cause: Some(d.envelope.id),
            now,
        };
        if let SeatEvent::SaleRejected(rejected) = &d.event {
            let r = rejected.reservation_id;
            let payment = store::payment(cx.tx, r).await?;
            if on_sale_rejected(payment.as_ref().map(|p| p.status)) == Step::Refund {
                cx.refund(r, payment).await?;
            }
        }
        Ok(Outcome::Done)
    }
}
