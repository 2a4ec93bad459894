//! The events of every context: one enum per context, one payload struct per event, each with a
//! past-tense name and a schema version carried in its CloudEvents type (`seat.held.v1`).

use crate::envelope::DecodeError;
use crate::ids::{ConcertId, Points, ReservationId, ScheduleId, SeatId, UserId};
use crate::streams::Context;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// The schema version every payload of this crate is written in. A consumer refuses (to the DLQ)
/// a type whose version it does not know.
pub const SCHEMA_VERSION: u32 = 1;

/// What every context's event enum offers to the messaging core.
pub trait Event: Sized + Send + Sync + 'static {
    const CONTEXT: Context;
    /// Every event name of the context, for consumer filters.
    const NAMES: &'static [&'static str];

    /// The event name within its context (`held`).
    fn name(&self) -> &'static str;
    /// The aggregate the event is about: the third token of its subject.
    fn aggregate_id(&self) -> Uuid;
    /// The saga this event belongs to, if any.
    fn reservation_id(&self) -> Option<ReservationId>;
    /// The JSON body (the payload alone; the envelope travels in headers).
    fn encode(&self) -> Vec<u8>;
    /// Reads a body whose `ce-type` named `name` at `version` of this context.
    fn decode(name: &str, version: u32, data: &[u8]) -> Result<Self, DecodeError>;

    fn subject(&self) -> String {
        format!(
            "{}.{}.{}",
            Self::CONTEXT.prefix(),
            self.name(),
            self.aggregate_id()
        )
    }

    fn ce_type(&self) -> String {
        format!(
            "{}.{}.v{SCHEMA_VERSION}",
            Self::CONTEXT.prefix(),
            self.name()
        )
    }
}

macro_rules! context_events {
    (
        $(#[$doc:meta])*
        $enum:ident in $ctx:expr, aggregate $agg:ident {
            $($variant:ident($payload:ty) = $name:literal),* $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        pub enum $enum {
            $($variant($payload)),*
        }

        impl Event for $enum {
            const CONTEXT: Context = $ctx;
            const NAMES: &'static [&'static str] = &[$($name),*];

            fn name(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $name),*
                }
            }

            fn aggregate_id(&self) -> Uuid {
                match self {
                    $(Self::$variant(p) => p.$agg.0),*
                }
            }

            fn reservation_id(&self) -> Option<ReservationId> {
                match self {
                    $(Self::$variant(p) => p.reservation()),*
                }
            }

            fn encode(&self) -> Vec<u8> {
                // Serialising these plain structs cannot fail: no maps with non-string keys,
                // no custom serialisers that error.
                match self {
                    $(Self::$variant(p) => serde_json::to_vec(p).expect("payloads always serialise")),*
                }
            }

            fn decode(name: &str, version: u32, data: &[u8]) -> Result<Self, DecodeError> {
                if !Self::NAMES.contains(&name) {
                    return Err(DecodeError::UnknownType(format!("{}.{name}", $ctx.prefix())));
                }
                if version != SCHEMA_VERSION {
                    return Err(DecodeError::UnsupportedVersion {
                        ce_type: format!("{}.{name}", $ctx.prefix()),
                        version,
                    });
                }
                match name {
                    $($name => serde_json::from_slice(data)
                        .map(Self::$variant)
                        .map_err(|e| DecodeError::Payload(e.to_string())),)*
                    _ => unreachable!("checked against NAMES above"),
                }
            }
        }

        $(
            impl From<$payload> for $enum {
                fn from(p: $payload) -> Self {
                    Self::$variant(p)
                }
            }
        )*
    };
}

/// Which saga a payload belongs to.
trait Correlated {
    fn reservation(&self) -> Option<ReservationId>;
}

macro_rules! correlated_by_reservation {
    ($($payload:ty),*) => {$(
        impl Correlated for $payload {
            fn reservation(&self) -> Option<ReservationId> {
                Some(self.reservation_id)
            }
        }
    )*};
}

// ---- concert ----

/// One seat of a schedule's seat map, as concert-svc defines it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatSpec {
    pub seat_id: SeatId,
    pub label: String,
    pub grade: String,
    pub price: Points,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleOpened {
    pub schedule_id: ScheduleId,
    pub concert_id: ConcertId,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    pub seats: Vec<SeatSpec>,
}

impl Correlated for ScheduleOpened {
    fn reservation(&self) -> Option<ReservationId> {
        None
    }
}

context_events! {
    /// Events of concert-svc (stream `CONCERT`).
    ConcertEvent in Context::Concert, aggregate schedule_id {
        ScheduleOpened(ScheduleOpened) = "schedule_opened",
    }
}

// ---- seat ----

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseReason {
    PaymentFailed,
    Expired,
    Cancelled,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeatHeld {
    pub reservation_id: ReservationId,
    pub user_id: UserId,
    pub schedule_id: ScheduleId,
    pub seat_ids: Vec<SeatId>,
    pub amount: Points,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeatSold {
    pub reservation_id: ReservationId,
    pub seat_ids: Vec<SeatId>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeatReleased {
    pub reservation_id: ReservationId,
    pub seat_ids: Vec<SeatId>,
    pub reason: ReleaseReason,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeatSaleRejected {
    pub reservation_id: ReservationId,
    pub reason: String,
}

correlated_by_reservation!(SeatHeld, SeatSold, SeatReleased, SeatSaleRejected);

context_events! {
    /// Events of seat-svc (stream `SEAT`).
    SeatEvent in Context::Seat, aggregate reservation_id {
        Held(SeatHeld) = "held",
        Sold(SeatSold) = "sold",
        Released(SeatReleased) = "released",
        SaleRejected(SeatSaleRejected) = "sale_rejected",
    }
}

// ---- reservation ----

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PaymentRequested {
    pub reservation_id: ReservationId,
    pub user_id: UserId,
    pub amount: Points,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReservationCancelled {
    pub reservation_id: ReservationId,
    pub user_id: UserId,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReservationConfirmed {
    pub reservation_id: ReservationId,
}

correlated_by_reservation!(PaymentRequested, ReservationCancelled, ReservationConfirmed);

context_events! {
    /// Events of reservation-svc (stream `RESERVATION`).
    ReservationEvent in Context::Reservation, aggregate reservation_id {
        PaymentRequested(PaymentRequested) = "payment_requested",
        Cancelled(ReservationCancelled) = "cancelled",
        Confirmed(ReservationConfirmed) = "confirmed",
    }
}

// ---- payment ----

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PaymentCompleted {
    pub reservation_id: ReservationId,
    pub user_id: UserId,
    pub amount: Points,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PaymentFailed {
    pub reservation_id: ReservationId,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PaymentRefunded {
    pub reservation_id: ReservationId,
    pub amount: Points,
}

correlated_by_reservation!(PaymentCompleted, PaymentFailed, PaymentRefunded);

context_events! {
    /// Events of payment-svc (stream `PAYMENT`).
    PaymentEvent in Context::Payment, aggregate reservation_id {
        Completed(PaymentCompleted) = "completed",
        Failed(PaymentFailed) = "failed",
        Refunded(PaymentRefunded) = "refunded",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sold() -> SeatEvent {
        SeatEvent::Sold(SeatSold {
            reservation_id: ReservationId::new(),
            seat_ids: vec![SeatId::new()],
        })
    }

    #[test]
    fn subject_and_type_follow_the_scheme() {
        let e = sold();
        let id = e.reservation_id().unwrap();
        assert_eq!(e.subject(), format!("seat.sold.{id}"));
        assert_eq!(e.ce_type(), "seat.sold.v1");
    }

    #[test]
    fn an_event_survives_encode_and_decode() {
        let e = sold();
        let back = SeatEvent::decode("sold", 1, &e.encode()).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn unknown_names_versions_and_bodies_are_refused_with_a_reason() {
        let body = sold().encode();
        assert!(matches!(
            SeatEvent::decode("exploded", 1, &body),
            Err(DecodeError::UnknownType(_))
        ));
        assert!(matches!(
            SeatEvent::decode("sold", 2, &body),
            Err(DecodeError::UnsupportedVersion { version: 2, .. })
        ));
        assert!(matches!(
            SeatEvent::decode("sold", 1, b"{\"nope\":1}"),
            Err(DecodeError::Payload(_))
        ));
    }
}
