//! Table and property tests of the reservation's rules.

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

fn insufficient_points() -> FailureReason {
    FailureReason::Payment(PaymentFailure::InsufficientPoints)
}

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
    let failed = PaymentFailed(PaymentFailure::InsufficientPoints);
    let released = Released(ReleaseReason::PaymentFailed);
    for order in [[failed.clone(), released.clone()], [released, failed]] {
        let mut f = after(&[PaymentRequested]);
        f.learn(&order[0]);
        assert!(
            !f.status().0.is_terminal()
                || f.status() == (Status::Failed, Some(insufficient_points()))
        );
        f.learn(&order[1]);
        assert_eq!(f.status(), (Status::Failed, Some(insufficient_points())));
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
        SaleRejected(SaleRejection::HoldExpired),
        Refunded,
    ]);
    assert_eq!(
        refused.status(),
        (
            Status::Failed,
            Some(FailureReason::Sale(SaleRejection::HoldExpired))
        )
    );
}

#[test]
fn cancel_is_allowed_until_the_saga_failed_and_only_once() {
    assert_eq!(cancel(&after(&[]), false), Ok(Cancelled));
    assert_eq!(cancel(&after(&[PaymentRequested]), false), Ok(Cancelled));
    assert_eq!(
        cancel(&after(&[PaymentRequested, Paid, Sold]), false),
        Ok(Cancelled)
    );
    assert_eq!(
        cancel(&after(&[PaymentRequested, Paid, Sold]), true),
        Err(Rejection::ShowStarted)
    );
    assert_eq!(cancel(&after(&[PaymentRequested]), true), Ok(Cancelled));
    let cancelled = after(&[Cancelled]);
    assert_eq!(
        cancel(&cancelled, false),
        Err(Rejection::NotCancellable(Status::Cancelled))
    );
    assert_eq!(
        cancel(&after(&[Released(ReleaseReason::Expired)]), false),
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
    let insufficient = || PaymentFailed(PaymentFailure::InsufficientPoints);
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
                SaleRejected(SaleRejection::HoldExpired),
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
                SaleRejected(SaleRejection::HoldReleased),
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
                _ => cancel(&f, false),
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
