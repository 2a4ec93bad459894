//! domain: the rules of paying for a reservation — whether a payment request debits or fails,
//! and when points are refunded. Pure.

use contracts::PaymentFailure;

contracts::string_enum! {
    /// Where one reservation's payment stands. A refund is possible only from `Debited`, and
    /// nothing leads back to it, so a reservation is debited at most once and refunded at most
    /// once. `CancelledUnpaid`: cancelled before any payment request was seen, so a later
    /// request must fail.
    pub enum PaymentStatus {
        Debited = "debited", Failed = "failed", Refunded = "refunded",
        CancelledUnpaid = "cancelled_unpaid",
    }
}

/// What payment-svc does about an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Debit,
    Fail(PaymentFailure),
    Refund,
    /// Remember the cancel so that a request arriving later fails instead of debiting.
    RememberCancel,
    Nothing,
}

/// A reservation asks to be paid: the first request debits, one after a cancel fails, any
/// other changes nothing. A debit the wallet does not cover fails (`insufficient_points`) and
/// takes nothing: the wallet's store only ever debits a balance that covers the amount (a
/// conditional update, so no replica can take it below zero).
pub fn on_payment_requested(existing: Option<PaymentStatus>) -> Step {
    match existing {
        None => Step::Debit,
        Some(PaymentStatus::CancelledUnpaid) => Step::Fail(PaymentFailure::Cancelled),
        Some(_) => Step::Nothing,
    }
}

/// The user cancelled: give back what was taken, or make sure nothing will be.
pub fn on_cancelled(existing: Option<PaymentStatus>) -> Step {
    match existing {
        Some(PaymentStatus::Debited) => Step::Refund,
        None => Step::RememberCancel,
        Some(_) => Step::Nothing,
    }
}

/// seat-svc refused the sale (the hold was gone): give the points back.
pub fn on_sale_rejected(existing: Option<PaymentStatus>) -> Step {
    match existing {
        Some(PaymentStatus::Debited) => Step::Refund,
        _ => Step::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_first_request_debits_a_later_one_changes_nothing_and_one_after_a_cancel_fails() {
        assert_eq!(on_payment_requested(None), Step::Debit);
        assert_eq!(
            on_payment_requested(Some(PaymentStatus::Debited)),
            Step::Nothing
        );
        assert_eq!(
            on_payment_requested(Some(PaymentStatus::CancelledUnpaid)),
            Step::Fail(PaymentFailure::Cancelled)
        );
    }

    #[test]
    fn only_a_debited_payment_is_refunded_and_only_once() {
        assert_eq!(on_cancelled(Some(PaymentStatus::Debited)), Step::Refund);
        assert_eq!(on_cancelled(Some(PaymentStatus::Refunded)), Step::Nothing);
        assert_eq!(on_cancelled(None), Step::RememberCancel);
        assert_eq!(on_sale_rejected(Some(PaymentStatus::Debited)), Step::Refund);
        assert_eq!(
            on_sale_rejected(Some(PaymentStatus::Refunded)),
            Step::Nothing
        );
        assert_eq!(on_sale_rejected(None), Step::Nothing);
    }

    /// What reaches payment-svc about one reservation.
    #[derive(Debug, Clone, Copy)]
    enum Input {
        Requested(usize),
        Cancelled(usize),
        SaleRejected(usize),
    }

    /// A wallet and its payments, driven only through the decision functions above.
    #[derive(Default)]
    struct Model {
        balance: i64,
        payments: std::collections::HashMap<usize, PaymentStatus>,
        debits: std::collections::HashMap<usize, u32>,
        refunds: std::collections::HashMap<usize, u32>,
    }

    impl Model {
        fn feed(&mut self, input: Input, amount: i64) -> Result<(), TestCaseError> {
            let (r, step) = match input {
                Input::Requested(r) => (r, on_payment_requested(self.payments.get(&r).copied())),
                Input::Cancelled(r) => (r, on_cancelled(self.payments.get(&r).copied())),
                Input::SaleRejected(r) => (r, on_sale_rejected(self.payments.get(&r).copied())),
            };
            match step {
                // As the wallet's store does: a debit the balance does not cover is refused.
                Step::Debit if self.balance < amount => {
                    self.payments.insert(r, PaymentStatus::Failed);
                }
                Step::Debit => {
                    self.balance -= amount;
                    *self.debits.entry(r).or_default() += 1;
                    self.payments.insert(r, PaymentStatus::Debited);
                }
                Step::Refund => {
                    prop_assert_eq!(
                        self.debits.get(&r).copied(),
                        Some(1),
                        "refund without a debit"
                    );
                    self.balance += amount;
                    *self.refunds.entry(r).or_default() += 1;
                    self.payments.insert(r, PaymentStatus::Refunded);
                }
                Step::Fail(_) => {
                    self.payments.insert(r, PaymentStatus::Failed);
                }
                Step::RememberCancel => {
                    self.payments.insert(r, PaymentStatus::CancelledUnpaid);
                }
                Step::Nothing => {}
            }
            prop_assert!(self.balance >= 0);
            Ok(())
        }
    }

    fn inputs() -> impl Strategy<Value = (i64, Vec<bool>, Vec<Input>)> {
        // Up to 4 reservations of 100 points each on one wallet; some of them cancelled.
        (0i64..=500, proptest::collection::vec(any::<bool>(), 4)).prop_flat_map(
            |(charged, cancels)| {
                let mut base = Vec::new();
                for (r, cancelled) in cancels.iter().enumerate() {
                    base.push(Input::Requested(r));
                    base.push(Input::SaleRejected(r));
                    if *cancelled {
                        base.push(Input::Cancelled(r));
                    }
                }
                let n = base.len();
                (
                    Just(charged),
                    Just(cancels),
                    Just(base).prop_shuffle(),
                    proptest::collection::vec((0..n, 0..=2 * n), 0..=n),
                )
                    .prop_map(|(charged, cancels, mut seq, dups)| {
                        for (d, at) in dups {
                            let copy = seq[d];
                            seq.insert(at.min(seq.len()), copy);
                        }
                        (charged, cancels, seq)
                    })
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any order and duplicates of requests, cancels and refused sales on one wallet: points
        /// are conserved, each reservation is debited and refunded at most once, a refund never
        /// comes without a debit, and a cancelled reservation ends with a net charge of 0.
        #[test]
        fn points_are_conserved_whatever_arrives_in_whatever_order((charged, cancels, seq) in inputs()) {
            let mut m = Model { balance: charged, ..Default::default() };
            for input in &seq {
                m.feed(*input, 100)?;
            }
            let debits: u32 = m.debits.values().sum();
            let refunds: u32 = m.refunds.values().sum();
            prop_assert_eq!(charged - m.balance, 100 * (debits as i64 - refunds as i64));
            for (r, cancelled) in cancels.iter().enumerate() {
                let d = m.debits.get(&r).copied().unwrap_or(0);
                let f = m.refunds.get(&r).copied().unwrap_or(0);
                prop_assert!(d <= 1 && f <= d);
                if *cancelled {
                    prop_assert_eq!(d, f, "a cancelled reservation keeps no points");
                }
            }
        }
    }
}
