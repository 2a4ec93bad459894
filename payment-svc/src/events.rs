//! events: debits a wallet when a reservation asks to be paid, answering with
//! `payment.completed` or `payment.failed`.

use crate::domain::{OnRequested, PaymentStatus, on_payment_requested};
use crate::{SERVICE, store};
use contracts::events::{PaymentCompleted, PaymentFailed};
use contracts::{PaymentEvent, ReservationEvent};
use platform::apply::Apply;
use platform::consumer::{Delivery, Outcome};
use platform::db::Tx;
use platform::outbox::emit;
use time::OffsetDateTime;

pub const RESERVATION_EVENTS: &[&str] = &["payment_requested"];

pub struct Cashier;

impl Apply<ReservationEvent> for Cashier {
    async fn apply(
        &self,
        tx: &mut Tx,
        d: &Delivery<ReservationEvent>,
        now: OffsetDateTime,
    ) -> anyhow::Result<Outcome> {
        let ReservationEvent::PaymentRequested(req) = &d.event else {
            return Ok(Outcome::Done);
        };
        let now_ms = platform::to_millis(now);
        let cause = Some(d.envelope.id);
        let r = req.reservation_id;
        let existing = store::payment_status(tx, r).await?;
        let balance = store::points(tx, &req.user_id).await?;
        let failure = match on_payment_requested(existing, balance, req.amount) {
            OnRequested::Nothing => return Ok(Outcome::Done),
            OnRequested::Debit => {
                if store::debit(tx, &req.user_id, r, req.amount, now_ms).await? {
                    store::record_payment(
                        tx,
                        r,
                        &req.user_id,
                        req.amount,
                        PaymentStatus::Debited,
                        None,
                        now_ms,
                    )
                    .await?;
                    let completed = PaymentEvent::Completed(PaymentCompleted {
                        reservation_id: r,
                        user_id: req.user_id.clone(),
                        amount: req.amount,
                    });
                    emit(tx, SERVICE, &completed, cause, now).await?;
                    return Ok(Outcome::Done);
                }
                // The balance moved between the read and the update (another replica).
                "insufficient_points"
            }
            OnRequested::Fail(reason) => reason,
        };
        store::record_payment(
            tx,
            r,
            &req.user_id,
            req.amount,
            PaymentStatus::Failed,
            Some(failure),
            now_ms,
        )
        .await?;
        let failed = PaymentEvent::Failed(PaymentFailed {
            reservation_id: r,
            reason: failure.to_owned(),
        });
        emit(tx, SERVICE, &failed, cause, now).await?;
        Ok(Outcome::Done)
    }
}
