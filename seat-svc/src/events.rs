//! events: builds inventory from `concert.schedule_opened` and settles holds on payment events
//! (sell, refuse the sale, or release).

use crate::domain::{HoldStatus, OnPaid, on_payment_completed, releases_on_payment_failed};
use crate::{SERVICE, store};
use contracts::events::{SeatReleased, SeatSaleRejected, SeatSold};
use contracts::{ConcertEvent, PaymentEvent, ReleaseReason, SeatEvent};
use platform::apply::Apply;
use platform::consumer::{Delivery, Outcome};
use platform::db::Tx;
use platform::outbox::emit;
use time::OffsetDateTime;

pub const CONCERT_EVENTS: &[&str] = &["schedule_opened"];
pub const PAYMENT_EVENTS: &[&str] = &["completed", "failed"];

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

pub struct PaymentReactions;

impl Apply<PaymentEvent> for PaymentReactions {
    async fn apply(
        &self,
        tx: &mut Tx,
        d: &Delivery<PaymentEvent>,
        now: OffsetDateTime,
    ) -> anyhow::Result<Outcome> {
        let cause = Some(d.envelope.id);
        match &d.event {
            PaymentEvent::Completed(paid) => {
                let r = paid.reservation_id;
                let hold = store::get_hold(tx, r).await?;
                match on_payment_completed(hold.as_ref().map(|(h, _)| h), now) {
                    OnPaid::Sell => {
                        store::end_hold(tx, r, HoldStatus::Sold).await?;
                        let seat_ids = hold.map(|(_, seats)| seats).unwrap_or_default();
                        let sold = SeatEvent::Sold(SeatSold {
                            reservation_id: r,
                            seat_ids,
                        });
                        emit(tx, SERVICE, &sold, cause, now).await?;
                    }
                    OnPaid::Reject(reason) => {
                        let rejected = SeatEvent::SaleRejected(SeatSaleRejected {
                            reservation_id: r,
                            reason: reason.to_owned(),
                        });
                        emit(tx, SERVICE, &rejected, cause, now).await?;
                    }
                    OnPaid::Nothing => {}
                }
            }
            PaymentEvent::Failed(failed) => {
                let r = failed.reservation_id;
                let hold = store::get_hold(tx, r).await?;
                if releases_on_payment_failed(hold.as_ref().map(|(h, _)| h)) {
                    store::end_hold(tx, r, HoldStatus::Released).await?;
                    let released = SeatEvent::Released(SeatReleased {
                        reservation_id: r,
                        seat_ids: hold.map(|(_, seats)| seats).unwrap_or_default(),
                        reason: ReleaseReason::PaymentFailed,
                    });
                    emit(tx, SERVICE, &released, cause, now).await?;
                }
            }
            // Not subscribed; harmless if it ever arrives.
            PaymentEvent::Refunded(_) => {}
        }
        Ok(Outcome::Done)
    }
}
