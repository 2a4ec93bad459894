//! domain: the reservation's state machine — which command is allowed when, and how each saga
//! event moves the status. A terminal status is never left because of a late event. Pure.

use contracts::{PaymentEvent, ReleaseReason, SeatEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    AwaitingPayment,
    PaymentPending,
    Confirmed,
    Failed,
    Expired,
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::AwaitingPayment => "awaiting_payment",
            Status::PaymentPending => "payment_pending",
            Status::Confirmed => "confirmed",
            Status::Failed => "failed",
            Status::Expired => "expired",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Status::AwaitingPayment,
            Status::PaymentPending,
            Status::Confirmed,
            Status::Failed,
            Status::Expired,
            Status::Cancelled,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        !matches!(self, Status::AwaitingPayment | Status::PaymentPending)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the reservation is {}, so it cannot be paid", .0.as_str())]
    NotAwaitingPayment(Status),
}

/// The pay command: only a reservation awaiting payment can be paid.
pub fn request_payment(status: Status) -> Result<Status, Rejection> {
    match status {
        Status::AwaitingPayment => Ok(Status::PaymentPending),
        other => Err(Rejection::NotAwaitingPayment(other)),
    }
}

/// A status change caused by an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub status: Status,
    pub reason: Option<String>,
}

impl Transition {
    fn to(status: Status) -> Self {
        Transition {
            status,
            reason: None,
        }
    }

    fn failed(reason: &str) -> Self {
        Transition {
            status: Status::Failed,
            reason: Some(reason.to_owned()),
        }
    }
}

/// What a seat event does to a reservation in `status`; `None` when nothing changes.
pub fn on_seat_event(status: Status, event: &SeatEvent) -> Option<Transition> {
    if status.is_terminal() {
        return None;
    }
    match event {
        SeatEvent::Held(_) => None,
        SeatEvent::Sold(_) => Some(Transition::to(Status::Confirmed)),
        SeatEvent::Released(r) => Some(match r.reason {
            ReleaseReason::PaymentFailed => Transition::failed("payment_failed"),
            ReleaseReason::Expired => Transition::to(Status::Expired),
            ReleaseReason::Cancelled => Transition::to(Status::Cancelled),
        }),
        SeatEvent::SaleRejected(r) => Some(Transition::failed(&r.reason)),
    }
}

/// What a payment event does to a reservation in `status`.
pub fn on_payment_event(status: Status, event: &PaymentEvent) -> Option<Transition> {
    if status.is_terminal() {
        return None;
    }
    match event {
        PaymentEvent::Failed(f) => Some(Transition::failed(&f.reason)),
        PaymentEvent::Completed(_) | PaymentEvent::Refunded(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contracts::ReservationId;
    use contracts::events::{PaymentFailed, SeatReleased, SeatSold};

    fn sold() -> SeatEvent {
        SeatEvent::Sold(SeatSold {
            reservation_id: ReservationId::new(),
            seat_ids: vec![],
        })
    }

    #[test]
    fn only_a_reservation_awaiting_payment_can_be_paid() {
        assert_eq!(
            request_payment(Status::AwaitingPayment),
            Ok(Status::PaymentPending)
        );
        for s in [Status::PaymentPending, Status::Confirmed, Status::Expired] {
            assert_eq!(request_payment(s), Err(Rejection::NotAwaitingPayment(s)));
        }
    }

    #[test]
    fn a_sale_confirms_a_pending_reservation() {
        let t = on_seat_event(Status::PaymentPending, &sold()).unwrap();
        assert_eq!(t.status, Status::Confirmed);
    }

    #[test]
    fn terminal_states_ignore_late_events() {
        let released = SeatEvent::Released(SeatReleased {
            reservation_id: ReservationId::new(),
            seat_ids: vec![],
            reason: ReleaseReason::Expired,
        });
        assert_eq!(on_seat_event(Status::Confirmed, &released), None);
        assert_eq!(on_seat_event(Status::Expired, &sold()), None);
        let failed = PaymentEvent::Failed(PaymentFailed {
            reservation_id: ReservationId::new(),
            reason: "insufficient_points".into(),
        });
        assert_eq!(on_payment_event(Status::Confirmed, &failed), None);
        assert_eq!(
            on_payment_event(Status::PaymentPending, &failed),
            Some(Transition::failed("insufficient_points"))
        );
    }
}
