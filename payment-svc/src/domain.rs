//! domain: the rules of money — what a charge may be, and whether a payment request debits or
//! fails. Pure.

use contracts::Points;

/// The largest single charge, so balances stay far from overflow.
pub const MAX_CHARGE: i64 = 1_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChargeInvalid {
    #[error("the amount to charge must be a positive number of points (got {0})")]
    NotPositive(i64),
    #[error("one charge may add at most {MAX_CHARGE} points")]
    TooLarge,
}

pub fn parse_charge(amount: i64) -> Result<Points, ChargeInvalid> {
    if amount <= 0 {
        return Err(ChargeInvalid::NotPositive(amount));
    }
    if amount > MAX_CHARGE {
        return Err(ChargeInvalid::TooLarge);
    }
    Ok(Points::new(amount).expect("positive"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    Debited,
    Failed,
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Debited => "debited",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "debited" => Some(PaymentStatus::Debited),
            "failed" => Some(PaymentStatus::Failed),
            "refunded" => Some(PaymentStatus::Refunded),
            _ => None,
        }
    }
}

/// What to do with a payment request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnRequested {
    Debit,
    Fail(&'static str),
    /// This reservation was already settled: a repeated request changes nothing.
    Nothing,
}

pub fn on_payment_requested(
    existing: Option<PaymentStatus>,
    balance: Points,
    amount: Points,
) -> OnRequested {
    match existing {
        Some(_) => OnRequested::Nothing,
        None if balance >= amount => OnRequested::Debit,
        None => OnRequested::Fail("insufficient_points"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: i64) -> Points {
        Points::new(v).unwrap()
    }

    #[test]
    fn charges_must_be_positive_and_bounded() {
        assert_eq!(parse_charge(0), Err(ChargeInvalid::NotPositive(0)));
        assert_eq!(parse_charge(-5), Err(ChargeInvalid::NotPositive(-5)));
        assert_eq!(parse_charge(MAX_CHARGE + 1), Err(ChargeInvalid::TooLarge));
        assert_eq!(parse_charge(100), Ok(p(100)));
    }

    #[test]
    fn a_request_debits_once_and_only_with_enough_points() {
        assert_eq!(
            on_payment_requested(None, p(200), p(200)),
            OnRequested::Debit
        );
        assert_eq!(
            on_payment_requested(None, p(199), p(200)),
            OnRequested::Fail("insufficient_points")
        );
        assert_eq!(
            on_payment_requested(Some(PaymentStatus::Debited), p(1000), p(200)),
            OnRequested::Nothing
        );
    }
}
