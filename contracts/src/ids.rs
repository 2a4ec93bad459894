//! Identifier and money newtypes: parsed once at the edge, trusted inside.

use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {$(
        #[$doc]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered id (UUIDv7), so ids sort roughly by creation.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn parse(s: &str) -> Result<Self, uuid::Error> {
                Uuid::parse_str(s).map(Self)
            }

            /// Whether the id was made within `window` of `now` (by the clock of whoever
            /// made it): what it names may still be on its way to another service. An id
            /// that is not a UUIDv7 carries no time and never is.
            pub fn made_within(&self, window: time::Duration, now: time::OffsetDateTime) -> bool {
                made_at(&self.0).is_some_and(|made| (now - made).abs() <= window)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                uuid_schema()
            }
        }

        impl utoipa::ToSchema for $name {}

        json_schema_of!($name, {"type": "string", "format": "uuid"});
    )*};
}

/// When a UUIDv7 was made; `None` for any other UUID (a client may send anything, whatever
/// time its bits would spell: never a panic).
fn made_at(id: &Uuid) -> Option<time::OffsetDateTime> {
    if id.get_version() != Some(uuid::Version::SortRand) {
        return None;
    }
    let (secs, nanos) = id.get_timestamp()?.to_unix();
    let made = time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).ok()?).ok()?;
    made.checked_add(time::Duration::nanoseconds(i64::from(nanos)))
}

fn uuid_schema() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        .into()
}

uuid_id!(
    /// A concert (the work being performed).
    ConcertId,
    /// One performance date of a concert; seat inventory is per schedule.
    ScheduleId,
    /// One seat of one schedule.
    SeatId,
    /// A reservation; minted by seat-svc on hold and the correlation id of its whole saga.
    ReservationId,
);

/// The user, as named by the `sub` claim of their token.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub String);

impl UserId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for UserId {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(UserId(s.to_owned()))
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl utoipa::PartialSchema for UserId {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("The user: the `sub` of their token."))
            .into()
    }
}

impl utoipa::ToSchema for UserId {}

json_schema_of!(UserId, {"type": "string", "minLength": 1});

impl utoipa::PartialSchema for Points {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(0))
            .description(Some(
                "An amount of points (the only money), never negative.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Points {}

json_schema_of!(Points, {"type": "integer", "minimum": 0});

/// An amount of points (the only money in the system); never negative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(try_from = "i64", into = "i64")]
pub struct Points(i64);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("an amount of points must not be negative (got {0})")]
pub struct NegativePoints(pub i64);

impl Points {
    pub const ZERO: Points = Points(0);

    pub fn new(value: i64) -> Result<Self, NegativePoints> {
        if value < 0 {
            Err(NegativePoints(value))
        } else {
            Ok(Self(value))
        }
    }

    pub fn value(self) -> i64 {
        self.0
    }

    pub fn checked_add(self, other: Points) -> Option<Points> {
        self.0.checked_add(other.0).map(Points)
    }

    pub fn checked_sub(self, other: Points) -> Option<Points> {
        self.0
            .checked_sub(other.0)
            .and_then(|v| Points::new(v).ok())
    }
}

impl TryFrom<i64> for Points {
    type Error = NegativePoints;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Points::new(value)
    }
}

impl From<Points> for i64 {
    fn from(p: Points) -> i64 {
        p.0
    }
}

impl fmt::Display for Points {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_uuid_v7_made_lately_is_fresh_and_no_id_panics() {
        let now = time::OffsetDateTime::now_utc();
        let minute = time::Duration::minutes(1);
        assert!(ReservationId::new().made_within(minute, now));
        assert!(!ReservationId::new().made_within(minute, now + time::Duration::minutes(5)));
        for raw in [
            "45dd7d5f-eaf4-104e-8139-57f6ed0bdb05",
            "ffffffff-ffff-7fff-bfff-ffffffffffff",
            "00000000-0000-0000-0000-000000000000",
        ] {
            let id = ReservationId::parse(raw).unwrap();
            let _ = id.made_within(minute, now);
        }
        assert!(!ReservationId(Uuid::new_v4()).made_within(minute, now));
    }

    #[test]
    fn points_refuse_negative_values_even_when_deserialised() {
        assert_eq!(Points::new(-1), Err(NegativePoints(-1)));
        assert!(serde_json::from_str::<Points>("-5").is_err());
        assert_eq!(serde_json::from_str::<Points>("5").unwrap().value(), 5);
    }

    #[test]
    fn subtraction_below_zero_is_refused() {
        let ten = Points::new(10).unwrap();
        assert_eq!(ten.checked_sub(Points::new(11).unwrap()), None);
        assert_eq!(ten.checked_sub(ten), Some(Points::ZERO));
    }
}
