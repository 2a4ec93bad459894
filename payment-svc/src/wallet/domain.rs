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
