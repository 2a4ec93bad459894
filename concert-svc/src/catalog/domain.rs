//! domain: the rules of the catalog — what makes a valid concert or schedule. Pure.

use contracts::{Points, SeatId};
use serde::Deserialize;
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
    #[error("seat #{0}: a label may have at most {MAX_LABEL} characters and a grade {MAX_GRADE}")]
    TooLong(usize),
    #[error("seat label {0:?} appears more than once")]
    DuplicateLabel(String),
    #[error("seat {label:?} must cost 1 to {MAX_PRICE} points (got {price})")]
    Price { label: String, price: i64 },
}

pub const MAX_SEATS: usize = 10_000;
pub const MAX_LABEL: usize = 64;
pub const MAX_GRADE: usize = 32;
/// The dearest seat: a hold of the most seats stays far from overflowing, and any seat can be
/// bought with one charge. A seat costs at least a point: the ledger records no empty debits.
pub const MAX_PRICE: i64 = 1_000_000_000;

pub fn parse_title(raw: &str) -> Result<String, Invalid> {
    let title = raw.trim();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(Invalid::Title);
    }
    Ok(title.to_owned())
}

/// A seat as the admin describes it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct SeatInput {
    /// Unique within the schedule.
    #[schema(min_length = 1, max_length = 64, pattern = "\\S")]
    pub label: String,
    #[schema(min_length = 1, max_length = 32, pattern = "\\S")]
    pub grade: String,
    #[schema(minimum = 1, maximum = 1_000_000_000)]
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
            if label.chars().count() > MAX_LABEL || s.grade.trim().chars().count() > MAX_GRADE {
                return Err(Invalid::TooLong(i + 1));
            }
            if !labels.insert(label.to_owned()) {
                return Err(Invalid::DuplicateLabel(label.to_owned()));
            }
            let price = Points::new(s.price)
                .ok()
                .filter(|p| (1..=MAX_PRICE).contains(&p.value()))
                .ok_or_else(|| Invalid::Price {
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

/// When a schedule starts, as the admin sent it (RFC 3339).
pub fn parse_starts_at(raw: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("starts_at must be an RFC 3339 date-time ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        for price in [-1, 0, MAX_PRICE + 1, 1 << 62] {
            assert!(
                matches!(
                    parse_seat_map(&[input("A1", price)]),
                    Err(Invalid::Price { price: p, .. }) if p == price
                ),
                "{price}"
            );
        }
        assert_eq!(parse_seat_map(&[input("", 1)]), Err(Invalid::EmptyLabel(1)));
        let seats = parse_seat_map(&[input("A1", 100), input("A2", MAX_PRICE)]).unwrap();
        assert_eq!(seats.len(), 2);
        assert_ne!(seats[0].id, seats[1].id);
    }
}
