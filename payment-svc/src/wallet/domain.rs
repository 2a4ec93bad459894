//! domain: the rules of a wallet — what a charge may be, and what the ledger records. Pure.

use contracts::Points;

/// The largest single charge, so balances stay far from overflow.
pub const MAX_CHARGE: i64 = 1_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChargeInvalid {
    #[error("the amount to charge must be a positive number of points (got {0})")]
    NotPositive(i64),
    #[error("one charge may add at most {MAX_CHARGE} points")]
    TooLarge,
    #[error("an Idempotency-Key is 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters")]
    BadKey,
}

/// The longest `Idempotency-Key` accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// A charge sent again with the same `Idempotency-Key` but another amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "this Idempotency-Key was used for a charge of {first} points, not {again}: use a new key for a new charge"
)]
pub struct KeyReused {
    pub first: i64,
    pub again: i64,
}

impl nats::unit_of_work::Rejection for KeyReused {}

/// An `Idempotency-Key` header value: 1 to 255 visible ASCII characters.
pub fn parse_idempotency_key(key: &str) -> Result<String, ChargeInvalid> {
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(ChargeInvalid::BadKey);
    }
    Ok(key.to_owned())
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

contracts::string_enum! {
    /// What a ledger entry records: points the user added (`charge`), took for a reservation
    /// (`debit`) or gave back for one (`refund`).
    pub enum EntryKind { Charge = "charge", Debit = "debit", Refund = "refund" }
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
}
