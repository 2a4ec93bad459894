//! domain: the reservation as the set of facts learned about its saga (paid, sold, released, …).
//! Facts only accumulate, so any order and any duplicate of events gives the same set, and the
//! status is a function of that set: sagas converge, and a terminal status is final (the one
//! move out of a terminal status is the user's own cancel of a confirmed reservation). Pure.

use contracts::{PaymentEvent, ReleaseReason, SeatEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    pub const ALL: [Status; 6] = [
        Status::AwaitingPayment,
        Status::PaymentPending,
        Status::Confirmed,
        Status::Failed,
        Status::Expired,
        Status::Cancelled,
    ];

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
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        !matches!(self, Status::AwaitingPayment | Status::PaymentPending)
    }
}

/// Everything known about one saga. Reasons are set once (the first report wins; one saga has
/// one payment decision and one sale decision, so repeats carry the same reason).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Facts {
    pub payment_requested: bool,
    pub paid: bool,
    pub payment_failed: Option<String>,
    pub released: Option<ReleaseReason>,
    pub sold: bool,
    pub sale_rejected: Option<String>,
    pub refunded: bool,
    pub cancelled: bool,
}

/// One thing learned, from an event or a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    PaymentRequested,
    Paid,
    PaymentFailed(String),
    Released(ReleaseReason),
    Sold,
    SaleRejected(String),
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
            SeatEvent::SaleRejected(r) => Some(Fact::SaleRejected(r.reason.clone())),
        }
    }

    pub fn from_payment(event: &PaymentEvent) -> Fact {
        match event {
            PaymentEvent::Completed(_) => Fact::Paid,
            PaymentEvent::Failed(f) => Fact::PaymentFailed(f.reason.clone()),
            PaymentEvent::Refunded(_) => Fact::Refunded,
        }
    }
}

fn set_once(slot: &mut Option<String>, reason: &str) {
    if slot.is_none() {
        *slot = Some(reason.to_owned());
    }
}

impl Facts {
    pub fn learn(&mut self, fact: &Fact) {
        match fact {
            Fact::PaymentRequested => self.payment_requested = true,
            Fact::Paid => self.paid = true,
            Fact::PaymentFailed(r) => set_once(&mut self.payment_failed, r),
            Fact::Released(r) => {
                self.released.get_or_insert(*r);
            }
            Fact::Sold => self.sold = true,
            Fact::SaleRejected(r) => set_once(&mut self.sale_rejected, r),
            Fact::Refunded => self.refunded = true,
            Fact::Cancelled => self.cancelled = true,
        }
    }

    /// The status (and the reason of a failure) these facts amount to.
    pub fn status(&self) -> (Status, Option<&str>) {
        if self.cancelled {
            return (Status::Cancelled, None);
        }
        if let Some(r) = &self.sale_rejected {
            return (Status::Failed, Some(r));
        }
        if self.sold {
            return (Status::Confirmed, None);
        }
        if let Some(r) = &self.payment_failed {
            return (Status::Failed, Some(r));
        }
        match self.released {
            // A payment is on its way: its outcome (a failure, or the sale refused and the
            // points refunded) decides, so the status waits for it rather than guess.
            Some(_) if self.payment_requested => (Status::PaymentPending, None),
            Some(ReleaseReason::Expired) => (Status::Expired, None),
            Some(ReleaseReason::Cancelled) => (Status::Cancelled, None),
            Some(ReleaseReason::PaymentFailed) => (Status::Failed, Some("payment_failed")),
            None if self.payment_requested => (Status::PaymentPending, None),
            None => (Status::AwaitingPayment, None),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the reservation is {}, so it cannot be paid", .0.as_str())]
    NotAwaitingPayment(Status),
    #[error("the reservation is {}, so it cannot be cancelled", .0.as_str())]
    NotCancellable(Status),
}

/// The pay command: only a reservation awaiting payment can be paid.
pub fn request_payment(facts: &Facts) -> Result<Fact, Rejection> {
    match facts.status().0 {
        Status::AwaitingPayment => Ok(Fact::PaymentRequested),
        other => Err(Rejection::NotAwaitingPayment(other)),
    }
}

/// The cancel command: before payment, while it is pending, or after confirmation; never twice
/// and never once the saga failed or expired.
pub fn cancel(facts: &Facts) -> Result<Fact, Rejection> {
    match facts.status().0 {
        Status::AwaitingPayment | Status::PaymentPending | Status::Confirmed => Ok(Fact::Cancelled),
        other => Err(Rejection::NotCancellable(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn after(facts: &[Fact]) -> Facts {
        let mut f = Facts::default();
        for fact in facts {
            f.learn(fact);
        }
        f
    }

    use Fact::*;

    #[test]
    fn the_happy_path_ends_confirmed() {
        let f = after(&[PaymentRequested, Paid, Sold]);
        assert_eq!(f.status(), (Status::Confirmed, None));
        assert_eq!(
            request_payment(&f),
            Err(Rejection::NotAwaitingPayment(Status::Confirmed))
        );
    }

    #[test]
    fn a_failed_payment_fails_with_its_reason_whichever_event_comes_first() {
        let failed = PaymentFailed("insufficient_points".into());
        let released = Released(ReleaseReason::PaymentFailed);
        for order in [[failed.clone(), released.clone()], [released, failed]] {
            let mut f = after(&[PaymentRequested]);
            f.learn(&order[0]);
            assert!(
                !f.status().0.is_terminal()
                    || f.status() == (Status::Failed, Some("insufficient_points"))
            );
            f.learn(&order[1]);
            assert_eq!(f.status(), (Status::Failed, Some("insufficient_points")));
        }
    }

    #[test]
    fn an_expired_hold_expires_only_an_unpaid_reservation() {
        assert_eq!(
            after(&[Released(ReleaseReason::Expired)]).status().0,
            Status::Expired
        );
        let late = after(&[PaymentRequested, Released(ReleaseReason::Expired)]);
        assert_eq!(
            late.status().0,
            Status::PaymentPending,
            "waits for the payment's outcome"
        );
        let refused = after(&[
            PaymentRequested,
            Released(ReleaseReason::Expired),
            Paid,
            SaleRejected("hold_expired".into()),
            Refunded,
        ]);
        assert_eq!(refused.status(), (Status::Failed, Some("hold_expired")));
    }

    #[test]
    fn cancel_is_allowed_until_the_saga_failed_and_only_once() {
        assert_eq!(cancel(&after(&[])), Ok(Cancelled));
        assert_eq!(cancel(&after(&[PaymentRequested])), Ok(Cancelled));
        assert_eq!(
            cancel(&after(&[PaymentRequested, Paid, Sold])),
            Ok(Cancelled)
        );
        let cancelled = after(&[Cancelled]);
        assert_eq!(
            cancel(&cancelled),
            Err(Rejection::NotCancellable(Status::Cancelled))
        );
        assert_eq!(
            cancel(&after(&[Released(ReleaseReason::Expired)])),
            Err(Rejection::NotCancellable(Status::Expired))
        );
        // Whatever arrives after the cancel, it stays cancelled.
        let f = after(&[
            PaymentRequested,
            Cancelled,
            Paid,
            Sold,
            Released(ReleaseReason::Cancelled),
            Refunded,
        ]);
        assert_eq!(f.status().0, Status::Cancelled);
    }

    /// Each saga path: the commands the user gave (each accepted when given), the events the
    /// saga then delivers, and where it must end. Events concurrent with a command (an expiry
    /// racing the pay command) are paths of their own: before it, the command is refused.
    fn paths() -> Vec<(Vec<Fact>, Vec<Fact>, Status)> {
        let expired = || Released(ReleaseReason::Expired);
        let insufficient = || PaymentFailed("insufficient_points".into());
        vec![
            (vec![PaymentRequested], vec![Paid, Sold], Status::Confirmed),
            (
                vec![PaymentRequested],
                vec![insufficient(), Released(ReleaseReason::PaymentFailed)],
                Status::Failed,
            ),
            (vec![], vec![expired()], Status::Expired),
            (
                vec![PaymentRequested],
                vec![
                    expired(),
                    Paid,
                    SaleRejected("hold_expired".into()),
                    Refunded,
                ],
                Status::Failed,
            ),
            (
                vec![PaymentRequested],
                vec![expired(), insufficient()],
                Status::Failed,
            ),
            (
                vec![Cancelled],
                vec![Released(ReleaseReason::Cancelled)],
                Status::Cancelled,
            ),
            (
                vec![PaymentRequested, Cancelled],
                vec![Paid, Sold, Released(ReleaseReason::Cancelled), Refunded],
                Status::Cancelled,
            ),
            (
                vec![PaymentRequested, Cancelled],
                vec![
                    Released(ReleaseReason::Cancelled),
                    Paid,
                    SaleRejected("hold_released".into()),
                    Refunded,
                ],
                Status::Cancelled,
            ),
            (
                vec![PaymentRequested, Cancelled],
                vec![Released(ReleaseReason::Cancelled), insufficient()],
                Status::Cancelled,
            ),
        ]
    }

    /// A path with its events shuffled, some delivered again at random places.
    fn arrivals() -> impl Strategy<Value = (Vec<Fact>, Vec<Fact>, Status)> {
        (0..paths().len()).prop_flat_map(|i| {
            let (commands, events, end) = paths()[i].clone();
            let n = events.len();
            (
                Just(commands),
                Just(events),
                Just(end),
                Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
                proptest::collection::vec((0..n, 0..=2 * n), 0..=2 * n),
            )
                .prop_map(|(commands, events, end, order, dups)| {
                    let mut seq: Vec<Fact> = order.iter().map(|&i| events[i].clone()).collect();
                    for (d, at) in dups {
                        seq.insert(at.min(seq.len()), events[d].clone());
                    }
                    (commands, seq, end)
                })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any order, any duplicates: the same end, and no other terminal status on the way
        /// (a cancelled saga may be confirmed first: the user cancelled a confirmed one).
        #[test]
        fn every_path_converges_whatever_the_order_and_duplicates((commands, seq, end) in arrivals()) {
            let mut f = Facts::default();
            for command in &commands {
                let accepted = match command {
                    PaymentRequested => request_payment(&f),
                    _ => cancel(&f),
                };
                prop_assert_eq!(accepted.as_ref(), Ok(command));
                f.learn(command);
            }
            for fact in &seq {
                f.learn(fact);
                let (now, _) = f.status();
                if now.is_terminal() && now != end {
                    prop_assert!(end == Status::Cancelled && now == Status::Confirmed,
                        "passed through {now:?} on the way to {end:?}: {seq:?}");
                }
            }
            prop_assert_eq!(f.status().0, end);
        }
    }
}
