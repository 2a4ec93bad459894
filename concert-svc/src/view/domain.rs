//! domain: the rules of the availability view — which seats a seat event touches, and how it
//! moves a seat's shown status. Pure.

use contracts::Event as _;
use contracts::events::{SeatEvent, SeatHeld, SeatReleased, SeatSold};
use contracts::{ReservationId, SeatId};

contracts::string_enum! {
    /// How the view shows a seat.
    pub enum SeatStatus { Available = "available", Held = "held", Sold = "sold" }
}

/// One seat of the view and the seat's version it reflects (0: none yet, or only events from
/// before seat-svc versioned its seats).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewSeat {
    pub status: SeatStatus,
    pub reservation: Option<ReservationId>,
    pub version: u64,
}

/// What showing a seat did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    Changed,
    /// What the seat shows is as new or newer.
    NotNewer,
    /// A seat this catalog never had.
    Unknown,
    /// Sent, with what it changed not read (the live view's writes).
    Sent,
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

/// The version `event` gives `seat`, 0 if it carries none (announced before versions).
pub fn version_of(event: &SeatEvent, seat: SeatId) -> u64 {
    let versions = match event {
        SeatEvent::Held(e) => &e.versions,
        SeatEvent::Sold(e) => &e.versions,
        SeatEvent::Released(e) => &e.versions,
        SeatEvent::SaleRejected(_) => return 0,
    };
    versions.get(&seat).copied().unwrap_or(0)
}

/// Whether an event giving a seat `version` is newer than a row showing version `shown` (if
/// not, it is a redelivery, a late copy, a dead letter replayed after newer changes).
/// seat-svc counts a seat's changes in the transactions that make them, so the highest version
/// is the seat's truth whatever order events arrive in: the view converges, and a replay from
/// the start rebuilds it. Unversioned events (version 0, from before) apply in arrival order
/// until the first versioned one. The live view asks this in SQL (`store::show`).
pub fn newer(shown: u64, version: u64) -> bool {
    version > shown || (version == 0 && shown == 0)
}

/// How `event`, which gives a seat `version`, shows it; `None` for an event that moves no seat.
pub fn after(event: &SeatEvent, version: u64) -> Option<ViewSeat> {
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
        version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use contracts::Points;
    use contracts::ReleaseReason;
    use time::OffsetDateTime;

    fn available() -> ViewSeat {
        ViewSeat {
            status: SeatStatus::Available,
            reservation: None,
            version: 0,
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
            starts_at: None,
            versions: Default::default(),
        })
    }

    fn released(r: ReservationId) -> SeatEvent {
        SeatEvent::Released(SeatReleased {
            reservation_id: r,
            seat_ids: vec![],
            reason: ReleaseReason::Expired,
            versions: Default::default(),
        })
    }

    fn sold(r: ReservationId) -> SeatEvent {
        SeatEvent::Sold(SeatSold {
            reservation_id: r,
            seat_ids: vec![],
            versions: Default::default(),
        })
    }

    /// The seat after `event`, if it is newer than what `seat` shows.
    fn evolve(seat: &ViewSeat, event: &SeatEvent, version: u64) -> Option<ViewSeat> {
        newer(seat.version, version).then(|| after(event, version))?
    }

    #[test]
    fn the_view_follows_hold_then_sale() {
        let r = ReservationId::new();
        let s = evolve(&available(), &held(r), 1).unwrap();
        assert_eq!(s.status, SeatStatus::Held);
        let s = evolve(&s, &sold(r), 2).unwrap();
        assert_eq!(s.status, SeatStatus::Sold);
        assert_eq!(s.reservation, Some(r));
    }

    #[test]
    fn an_older_or_repeated_event_changes_nothing() {
        let r = ReservationId::new();
        let s = evolve(&available(), &sold(r), 5).unwrap();
        assert_eq!(evolve(&s, &held(r), 3), None);
        assert_eq!(evolve(&s, &sold(r), 5), None);
    }

    #[test]
    fn unversioned_events_apply_in_arrival_order_until_a_versioned_one() {
        let (a, b) = (ReservationId::new(), ReservationId::new());
        let s = replay(&[(held(a), 0), (released(a), 0), (held(b), 0)]);
        assert_eq!((s.status, s.reservation), (SeatStatus::Held, Some(b)));
        let s = replay(&[(held(a), 0), (sold(b), 1), (released(a), 0)]);
        assert_eq!((s.status, s.reservation), (SeatStatus::Sold, Some(b)));
    }

    #[test]
    fn the_version_an_event_gives_a_seat_is_its_own() {
        let (s1, s2) = (SeatId::new(), SeatId::new());
        let event = SeatEvent::Sold(SeatSold {
            reservation_id: ReservationId::new(),
            seat_ids: vec![s1, s2],
            versions: [(s1, 3)].into(),
        });
        assert_eq!((version_of(&event, s1), version_of(&event, s2)), (3, 0));
    }

    /// One seat's events as seat-svc published them: held by a, released, held by b, sold.
    fn history() -> Vec<(SeatEvent, u64)> {
        let (a, b) = (ReservationId::new(), ReservationId::new());
        vec![(held(a), 1), (released(a), 2), (held(b), 3), (sold(b), 4)]
    }

    fn replay(events: &[(SeatEvent, u64)]) -> ViewSeat {
        events.iter().fold(available(), |seat, (e, version)| {
            evolve(&seat, e, *version).unwrap_or(seat)
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
            let mut arrived: Vec<_> = order.iter().map(|&i| events[i].clone()).collect();
            for (d, at) in dups {
                arrived.insert(at.min(arrived.len()), events[d].clone());
            }
            prop_assert_eq!(replay(&arrived), replay(&events));
        }
    }
}
