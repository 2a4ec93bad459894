//! domain: the reservation as the set of facts learned about its saga (paid, sold, released, …).
//! Facts only accumulate, so any order and any duplicate of events gives the same set, and the
//! status is a function of that set: sagas converge, and a terminal status is final (the one
//! move out of a terminal status is the user's own cancel of a confirmed reservation). Pure.

use contracts::{
    PaymentEvent, PaymentFailure, ReleaseReason, ReservationId, SaleRejection, SeatEvent,
};
use serde::{Deserialize, Serialize};

contracts::string_enum! {
    /// Where a reservation stands, as its saga's facts say.
    pub enum Status {
        AwaitingPayment = "awaiting_payment", PaymentPending = "payment_pending",
        Confirmed = "confirmed", Failed = "failed", Expired = "expired", Cancelled = "cancelled",
    }
}

impl Status {
    /// Where a saga ends.
    pub const TERMINAL: [Status; 4] = [
        Status::Confirmed,
        Status::Failed,
        Status::Expired,
        Status::Cancelled,
    ];

    pub fn is_terminal(self) -> bool {
        Status::TERMINAL.contains(&self)
    }
}

/// Why a reservation failed: what the service that said no said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    Payment(PaymentFailure),
    Sale(SaleRejection),
    Released(ReleaseReason),
}

/// Every word a failure reason may be, for the API's schema: the words of the three.
impl utoipa::PartialSchema for FailureReason {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        let words = PaymentFailure::ALL.iter().map(|r| r.as_str());
        let words = words.chain(SaleRejection::ALL.iter().map(|r| r.as_str()));
        let words = words.chain(ReleaseReason::ALL.iter().map(|r| r.as_str()));
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(words))
            .into()
    }
}

impl utoipa::ToSchema for FailureReason {}

impl FailureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Payment(r) => r.as_str(),
            FailureReason::Sale(r) => r.as_str(),
            FailureReason::Released(r) => r.as_str(),
        }
    }
}

impl Serialize for FailureReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Everything known about one saga. Reasons are set once (the first report wins; one saga has
/// one payment decision and one sale decision, so repeats carry the same reason).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Facts {
    pub payment_requested: bool,
    pub paid: bool,
    pub payment_failed: Option<PaymentFailure>,
    pub released: Option<ReleaseReason>,
    pub sold: bool,
    pub sale_rejected: Option<SaleRejection>,
    pub refunded: bool,
    pub cancelled: bool,
}

/// One thing learned, from an event or a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    PaymentRequested,
    Paid,
    PaymentFailed(PaymentFailure),
    Released(ReleaseReason),
    Sold,
    SaleRejected(SaleRejection),
    Refunded,
    Cancelled,
}

impl Fact {
    /// What a seat event tells; `seat.held` creates the reservation and tells nothing more.
    pub fn from_seat(event: &SeatEvent) -> Option<Fact> {
        match event {
            SeatEvent::Held(_) => None,
            SeatEvent::Sold(_) => Some(Fact::Sold),
            SeatEvent::Released(r) => Some(Fact::Released(r.reason)),
            SeatEvent::SaleRejected(r) => Some(Fact::SaleRejected(r.reason)),
        }
    }

    pub fn from_payment(event: &PaymentEvent) -> Fact {
        match event {
            PaymentEvent::Completed(_) => Fact::Paid,
            PaymentEvent::Failed(f) => Fact::PaymentFailed(f.reason),
            PaymentEvent::Refunded(_) => Fact::Refunded,
        }
    }
}

impl Facts {
    pub fn learn(&mut self, fact: &Fact) {
        match fact {
            Fact::PaymentRequested => self.payment_requested = true,
            Fact::Paid => self.paid = true,
            Fact::PaymentFailed(r) => {
                self.payment_failed.get_or_insert(*r);
            }
            Fact::Released(r) => {
                self.released.get_or_insert(*r);
            }
            Fact::Sold => self.sold = true,
            Fact::SaleRejected(r) => {
                self.sale_rejected.get_or_insert(*r);
            }
            Fact::Refunded => self.refunded = true,
            Fact::Cancelled => self.cancelled = true,
        }
    }

    /// The status (and the reason of a failure) these facts amount to.
    pub fn status(&self) -> (Status, Option<FailureReason>) {
        if self.cancelled {
            return (Status::Cancelled, None);
        }
        if let Some(r) = self.sale_rejected {
            return (Status::Failed, Some(FailureReason::Sale(r)));
        }
        if self.sold {
            return (Status::Confirmed, None);
        }
        if let Some(r) = self.payment_failed {
            return (Status::Failed, Some(FailureReason::Payment(r)));
        }
        match self.released {
            // A payment is on its way: its outcome (a failure, or the sale refused and the
            // points refunded) decides, so the status waits for it rather than guess.
            Some(_) if self.payment_requested => (Status::PaymentPending, None),
            Some(ReleaseReason::Expired) => (Status::Expired, None),
            Some(ReleaseReason::Cancelled) => (Status::Cancelled, None),
            Some(r @ ReleaseReason::PaymentFailed) => {
                (Status::Failed, Some(FailureReason::Released(r)))
            }
            None if self.payment_requested => (Status::PaymentPending, None),
            None => (Status::AwaitingPayment, None),
        }
    }
}

/// Why a command on a reservation is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// It does not exist (yet), or it is someone else's: the same answer either way.
    #[error("no reservation {0} of yours (yet)")]
    Unknown(ReservationId),
    #[error("the reservation is {0}, so it cannot be paid")]
    NotAwaitingPayment(Status),
    #[error("the reservation is {0}, so it cannot be cancelled")]
    NotCancellable(Status),
    #[error("the show has started, so a confirmed reservation cannot be cancelled")]
    ShowStarted,
}

impl nats::unit_of_work::Rejection for Rejection {}

/// The pay command: only a reservation awaiting payment can be paid.
pub fn request_payment(facts: &Facts) -> Result<Fact, Rejection> {
    match facts.status().0 {
        Status::AwaitingPayment => Ok(Fact::PaymentRequested),
        other => Err(Rejection::NotAwaitingPayment(other)),
    }
}

/// The cancel command: before payment, while it is pending, or after confirmation until the
/// show starts; never twice and never once the saga failed or expired.
pub fn cancel(facts: &Facts, show_started: bool) -> Result<Fact, Rejection> {
    match facts.status().0 {
        Status::Confirmed if show_started => Err(Rejection::ShowStarted),
        Status::AwaitingPayment | Status::PaymentPending | Status::Confirmed => Ok(Fact::Cancelled),
        other => Err(Rejection::NotCancellable(other)),
    }
}

#[cfg(test)]
mod tests;
