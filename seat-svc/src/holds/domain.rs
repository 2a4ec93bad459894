//! domain: the rules of holds — what a hold request may ask for, and what a completed or failed
//! payment, a cancel or a passed deadline does to a hold. Pure: time is an argument.

use contracts::{ReleaseReason, SaleRejection, SeatId};
use std::collections::HashSet;
use time::OffsetDateTime;

/// A hold's record, as the statements about one hold and the rows that belong to it (its
/// seats, its queue token) say (`nats::db::Statement::record`): in a consumer's batch the writes
/// that settle one hold go with the next hold's read.
pub const HOLD: &str = "holds";

/// Most seats one hold may take.
pub const MAX_SEATS_PER_HOLD: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoldInvalid {
    #[error("seat_ids must name at least one seat")]
    Empty,
    #[error("a hold may take at most {MAX_SEATS_PER_HOLD} seats")]
    TooMany,
    #[error("seat {0} is named more than once")]
    Duplicate(String),
    #[error("there is no seat {0:?}")]
    UnknownSeat(String),
}

/// Parses the seats of a hold request: at least one, at most a few, no repeats.
pub fn parse_seat_ids(raw: &[String]) -> Result<Vec<SeatId>, HoldInvalid> {
    if raw.is_empty() {
        return Err(HoldInvalid::Empty);
    }
    if raw.len() > MAX_SEATS_PER_HOLD {
        return Err(HoldInvalid::TooMany);
    }
    let mut seen = HashSet::new();
    raw.iter()
        .map(|s| {
            let id = SeatId::parse(s.trim()).map_err(|_| HoldInvalid::UnknownSeat(s.clone()))?;
            if !seen.insert(id) {
                return Err(HoldInvalid::Duplicate(s.clone()));
            }
            Ok(id)
        })
        .collect()
}

contracts::string_enum! {
    /// Where a hold stands.
    pub enum HoldStatus { Held = "held", Sold = "sold", Released = "released" }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub status: HoldStatus,
    pub expires_at: OffsetDateTime,
    pub release_reason: Option<ReleaseReason>,
}

/// What a completed payment does to the hold it paid for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnPaid {
    /// The hold is live: the seats are sold.
    Sell,
    /// The hold is past its deadline but not released yet: release it now as expired, and
    /// refuse the sale.
    ExpireAndReject,
    /// The hold is gone: the sale is refused so the payment gets refunded.
    Reject(SaleRejection),
    /// Already sold: a repeated payment event changes nothing.
    Nothing,
}

pub fn on_payment_completed(hold: Option<&Hold>, now: OffsetDateTime) -> OnPaid {
    let Some(h) = hold else {
        return OnPaid::Reject(SaleRejection::UnknownHold);
    };
    match h.status {
        HoldStatus::Sold => OnPaid::Nothing,
        HoldStatus::Held if h.expires_at <= now => OnPaid::ExpireAndReject,
        HoldStatus::Held => OnPaid::Sell,
        HoldStatus::Released => OnPaid::Reject(match h.release_reason {
            Some(ReleaseReason::Expired) | None => SaleRejection::HoldExpired,
            Some(ReleaseReason::Cancelled) => SaleRejection::HoldCancelled,
            Some(ReleaseReason::PaymentFailed) => SaleRejection::HoldReleased,
        }),
    }
}

/// A failed payment releases a live hold; anything else stays as it is.
pub fn releases_on_payment_failed(hold: Option<&Hold>) -> bool {
    hold.is_some_and(|h| h.status == HoldStatus::Held)
}

/// A cancelled reservation gives its seats back, held or already sold.
pub fn releases_on_cancel(hold: Option<&Hold>) -> bool {
    hold.is_some_and(|h| h.status != HoldStatus::Released)
}

/// The expiry scan releases a live hold whose deadline has passed.
pub fn is_due(hold: &Hold, now: OffsetDateTime) -> bool {
    hold.status == HoldStatus::Held && hold.expires_at <= now
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    fn hold(status: HoldStatus, expires_in: i64) -> Hold {
        Hold {
            status,
            expires_at: OffsetDateTime::UNIX_EPOCH + Duration::seconds(expires_in),
            release_reason: (status == HoldStatus::Released).then_some(ReleaseReason::Expired),
        }
    }

    const NOW: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

    #[test]
    fn a_hold_request_needs_distinct_known_seats() {
        assert_eq!(parse_seat_ids(&[]), Err(HoldInvalid::Empty));
        let id = SeatId::new().to_string();
        assert_eq!(
            parse_seat_ids(&[id.clone(), id.clone()]),
            Err(HoldInvalid::Duplicate(id.clone()))
        );
        assert_eq!(
            parse_seat_ids(&["x".into()]),
            Err(HoldInvalid::UnknownSeat("x".into()))
        );
        assert_eq!(parse_seat_ids(&[id]).unwrap().len(), 1);
    }

    #[test]
    fn a_payment_sells_only_a_live_hold() {
        assert_eq!(
            on_payment_completed(Some(&hold(HoldStatus::Held, 60)), NOW),
            OnPaid::Sell
        );
        assert_eq!(
            on_payment_completed(Some(&hold(HoldStatus::Held, 0)), NOW),
            OnPaid::ExpireAndReject
        );
        assert_eq!(
            on_payment_completed(Some(&hold(HoldStatus::Released, 60)), NOW),
            OnPaid::Reject(SaleRejection::HoldExpired)
        );
        assert_eq!(
            on_payment_completed(Some(&hold(HoldStatus::Sold, 60)), NOW),
            OnPaid::Nothing
        );
        assert_eq!(
            on_payment_completed(None, NOW),
            OnPaid::Reject(SaleRejection::UnknownHold)
        );
    }

    #[test]
    fn a_failed_payment_releases_only_a_live_hold() {
        assert!(releases_on_payment_failed(Some(&hold(
            HoldStatus::Held,
            60
        ))));
        assert!(!releases_on_payment_failed(Some(&hold(
            HoldStatus::Sold,
            60
        ))));
        assert!(!releases_on_payment_failed(None));
    }

    use proptest::prelude::*;

    /// What reaches one hold: payment results, the reservation's cancel, and expiry-scan ticks
    /// after its deadline.
    #[derive(Debug, Clone, Copy)]
    enum Input {
        Paid,
        PaymentFailed,
        Cancelled,
        DeadlinePassed,
    }

    #[derive(Default, Debug)]
    struct Emitted {
        sold: u32,
        released: u32,
        rejected: u32,
    }

    /// Feeds inputs to a live hold through the decision functions, as the handlers do (each
    /// input id handled once: duplicates are the inbox's job and are fed through too).
    fn run(inputs: &[Input]) -> (Hold, Emitted) {
        let mut h = hold(HoldStatus::Held, 60);
        let mut now = NOW;
        let mut out = Emitted::default();
        for input in inputs {
            let release = |h: &mut Hold, out: &mut Emitted, why| {
                h.status = HoldStatus::Released;
                h.release_reason = Some(why);
                out.released += 1;
            };
            match input {
                Input::Paid => match on_payment_completed(Some(&h), now) {
                    OnPaid::Sell => {
                        h.status = HoldStatus::Sold;
                        out.sold += 1;
                    }
                    OnPaid::ExpireAndReject => {
                        release(&mut h, &mut out, ReleaseReason::Expired);
                        out.rejected += 1;
                    }
                    OnPaid::Reject(_) => out.rejected += 1,
                    OnPaid::Nothing => {}
                },
                Input::PaymentFailed if releases_on_payment_failed(Some(&h)) => {
                    release(&mut h, &mut out, ReleaseReason::PaymentFailed)
                }
                Input::Cancelled if releases_on_cancel(Some(&h)) => {
                    release(&mut h, &mut out, ReleaseReason::Cancelled)
                }
                Input::DeadlinePassed => {
                    now = h.expires_at;
                    if is_due(&h, now) {
                        release(&mut h, &mut out, ReleaseReason::Expired);
                    }
                }
                _ => {}
            }
        }
        (h, out)
    }

    fn input() -> impl Strategy<Value = Input> {
        prop_oneof![
            Just(Input::Paid),
            Just(Input::PaymentFailed),
            Just(Input::Cancelled),
            Just(Input::DeadlinePassed),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any order and repetition: the seats are sold at most once and released at most once,
        /// a release after a sale only by a cancel, and the hold ends as its events say.
        #[test]
        fn a_hold_is_sold_once_and_released_once_whatever_arrives(
            inputs in proptest::collection::vec(input(), 0..12)
        ) {
            let (h, out) = run(&inputs);
            prop_assert!(out.sold <= 1 && out.released <= 1, "{out:?}");
            if out.sold == 1 && out.released == 1 {
                prop_assert_eq!(h.release_reason, Some(ReleaseReason::Cancelled));
            }
            let expected = match (out.sold, out.released) {
                (_, 1) => HoldStatus::Released,
                (1, 0) => HoldStatus::Sold,
                _ => HoldStatus::Held,
            };
            prop_assert_eq!(h.status, expected);
            // A payment is answered (sold or refused) unless the hold was already sold.
            let paid = inputs.iter().filter(|i| matches!(i, Input::Paid)).count() as u32;
            prop_assert!(out.sold + out.rejected <= paid);
            if paid > 0 {
                prop_assert!(out.sold + out.rejected >= 1);
            }
        }
    }
}
