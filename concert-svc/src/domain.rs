//! domain: the rules of the catalog (what makes a valid concert or schedule) and of the
//! availability view (how a seat event moves a seat's shown status). Pure: no I/O, no clock.

use contracts::Event as _;
use contracts::events::{SeatEvent, SeatHeld, SeatReleased, SeatSold};
use contracts::{Points, ReservationId, SeatId};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use time::OffsetDateTime;

/// Why a catalog command is refused; each message is shown to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("a concert needs a title of 1 to 200 characters")]
    Title,
    #[error("a schedule needs at least one seat")]
    NoSeats,
    #[error("a schedule may have at most {MAX_SEATS} seats")]
    TooManySeats,
    #[error("seat #{0} has an empty label")]
    EmptyLabel(usize),
    #[error("seat #{0} has an empty grade")]
    EmptyGrade(usize),
    #[error("seat label {0:?} appears more than once")]
    DuplicateLabel(String),
    #[error("seat {label:?} has a negative price ({price})")]
    NegativePrice { label: String, price: i64 },
}

pub const MAX_SEATS: usize = 10_000;

pub fn parse_title(raw: &str) -> Result<String, Invalid> {
    let title = raw.trim();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(Invalid::Title);
    }
    Ok(title.to_owned())
}

/// A seat as the admin describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct SeatInput {
    pub label: String,
    pub grade: String,
    pub price: i64,
}

/// A seat that passed validation, with its new id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSeat {
    pub id: SeatId,
    pub label: String,
    pub grade: String,
    pub price: Points,
}

/// Checks a seat map and gives every seat an id.
pub fn parse_seat_map(seats: &[SeatInput]) -> Result<Vec<NewSeat>, Invalid> {
    if seats.is_empty() {
        return Err(Invalid::NoSeats);
    }
    if seats.len() > MAX_SEATS {
        return Err(Invalid::TooManySeats);
    }
    let mut labels = HashSet::with_capacity(seats.len());
    seats
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let label = s.label.trim();
            if label.is_empty() {
                return Err(Invalid::EmptyLabel(i + 1));
            }
            if s.grade.trim().is_empty() {
                return Err(Invalid::EmptyGrade(i + 1));
            }
            if !labels.insert(label.to_owned()) {
                return Err(Invalid::DuplicateLabel(label.to_owned()));
            }
            let price = Points::new(s.price).map_err(|_| Invalid::NegativePrice {
                label: label.to_owned(),
                price: s.price,
            })?;
            Ok(NewSeat {
                id: SeatId::new(),
                label: label.to_owned(),
                grade: s.grade.trim().to_owned(),
                price,
            })
        })
        .collect()
}

/// How the view shows a seat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeatStatus {
    Available,
    Held,
    Sold,
}

impl SeatStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SeatStatus::Available => "available",
            SeatStatus::Held => "held",
            SeatStatus::Sold => "sold",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "available" => Some(SeatStatus::Available),
            "held" => Some(SeatStatus::Held),
            "sold" => Some(SeatStatus::Sold),
            _ => None,
        }
    }
}

/// One seat of the view and the stream position it reflects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewSeat {
    pub status: SeatStatus,
    pub reservation: Option<ReservationId>,
    pub last_seq: u64,
}

/// The seats an event touches.
pub fn seats_of(event: &SeatEvent) -> &[SeatId] {
    match event {
        SeatEvent::Held(SeatHeld { seat_ids, .. })
        | SeatEvent::Sold(SeatSold { seat_ids, .. })
        | SeatEvent::Released(SeatReleased { seat_ids, .. }) => seat_ids,
        SeatEvent::SaleRejected(_) => &[],
    }
}

/// The seat after `event` at stream position `seq`, or `None` if the event is not newer than
/// what the row shows (a redelivery or a late copy). seat-svc publishes a seat's changes in the
/// order it commits them, so the newest event of the `SEAT` stream is the seat's truth, whatever
/// order they arrive in: the view converges, and a replay from the start rebuilds it.
pub fn apply(seat: &ViewSeat, event: &SeatEvent, seq: u64) -> Option<ViewSeat> {
    if seq <= seat.last_seq {
        return None;
    }
    let reservation = event.reservation_id()?;
    let (status, reservation) = match event {
        SeatEvent::Held(_) => (SeatStatus::Held, Some(reservation)),
        SeatEvent::Sold(_) => (SeatStatus::Sold, Some(reservation)),
        SeatEvent::Released(_) => (SeatStatus::Available, None),
        SeatEvent::SaleRejected(_) => return None,
    };
    Some(ViewSeat {
        status,
        reservation,
        last_seq: seq,
    })
}

/// When a schedule starts, as the admin sent it (RFC 3339).
pub fn parse_starts_at(raw: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("starts_at must be an RFC 3339 date-time ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use contracts::ReleaseReason;

    fn input(label: &str, price: i64) -> SeatInput {
        SeatInput {
            label: label.into(),
            grade: "R".into(),
            price,
        }
    }

    #[test]
    fn a_seat_map_must_be_non_empty_unique_and_priced() {
        assert_eq!(parse_seat_map(&[]), Err(Invalid::NoSeats));
        assert_eq!(
            parse_seat_map(&[input("A1", 100), input(" A1 ", 100)]),
            Err(Invalid::DuplicateLabel("A1".into()))
        );
        assert!(matches!(
            parse_seat_map(&[input("A1", -1)]),
            Err(Invalid::NegativePrice { price: -1, .. })
        ));
        assert_eq!(parse_seat_map(&[input("", 1)]), Err(Invalid::EmptyLabel(1)));
        let seats = parse_seat_map(&[input("A1", 100), input("A2", 0)]).unwrap();
        assert_eq!(seats.len(), 2);
        assert_ne!(seats[0].id, seats[1].id);
    }

    fn available() -> ViewSeat {
        ViewSeat {
            status: SeatStatus::Available,
            reservation: None,
            last_seq: 0,
        }
    }

    fn held(r: ReservationId) -> SeatEvent {
        SeatEvent::Held(SeatHeld {
            reservation_id: r,
            user_id: contracts::UserId("u".into()),
            schedule_id: contracts::ScheduleId::new(),
            seat_ids: vec![],
            amount: Points::ZERO,
            expires_at: OffsetDateTime::UNIX_EPOCH,
        })
    }

    fn released(r: ReservationId) -> SeatEvent {
        SeatEvent::Released(SeatReleased {
            reservation_id: r,
            seat_ids: vec![],
            reason: ReleaseReason::Expired,
        })
    }

    fn sold(r: ReservationId) -> SeatEvent {
        SeatEvent::Sold(SeatSold {
            reservation_id: r,
            seat_ids: vec![],
        })
    }

    #[test]
    fn the_view_follows_hold_then_sale() {
        let r = ReservationId::new();
        let s = apply(&available(), &held(r), 1).unwrap();
        assert_eq!(s.status, SeatStatus::Held);
        let s = apply(&s, &sold(r), 2).unwrap();
        assert_eq!(s.status, SeatStatus::Sold);
        assert_eq!(s.reservation, Some(r));
    }

    #[test]
    fn an_older_or_repeated_event_changes_nothing() {
        let r = ReservationId::new();
        let s = apply(&available(), &sold(r), 5).unwrap();
        assert_eq!(apply(&s, &held(r), 3), None);
        assert_eq!(apply(&s, &sold(r), 5), None);
    }

    /// One seat's events as seat-svc published them: held by a, released, held by b, sold.
    fn history() -> Vec<(SeatEvent, u64)> {
        let (a, b) = (ReservationId::new(), ReservationId::new());
        vec![(held(a), 1), (released(a), 2), (held(b), 3), (sold(b), 4)]
    }

    fn replay(events: &[(SeatEvent, u64)]) -> ViewSeat {
        events.iter().fold(available(), |seat, (e, seq)| {
            apply(&seat, e, *seq).unwrap_or(seat)
        })
    }

    #[test]
    fn a_release_that_arrives_before_its_hold_still_wins() {
        let a = ReservationId::new();
        let s = replay(&[(released(a), 2), (held(a), 1)]);
        assert_eq!(s.status, SeatStatus::Available);
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// Any order, any duplicates: the view ends where the in-order replay ends.
        #[test]
        fn the_view_converges_whatever_the_order(
            order in Just((0..4).collect::<Vec<usize>>()).prop_shuffle(),
            dups in proptest::collection::vec((0usize..4, 0usize..8), 0..8),
        ) {
            let events = history();
            let mut seq: Vec<_> = order.iter().map(|&i| events[i].clone()).collect();
            for (d, at) in dups {
                seq.insert(at.min(seq.len()), events[d].clone());
            }
            prop_assert_eq!(replay(&seq), replay(&events));
        }
    }
}
