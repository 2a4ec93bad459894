//! The events of every context: one enum per context, one payload struct per event, each with a
//! past-tense name and a schema version carried in its CloudEvents type (`seat.held.v1`).

use crate::decode::DecodeError;
use crate::ids::{ConcertId, Points, ReservationId, ScheduleId, SeatId, UserId};
use crate::rfc3339::Rfc3339;
use crate::streams::Context;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// The schema version every payload of this crate is written in. A consumer refuses (to the DLQ)
/// a type whose version it does not know.
pub const SCHEMA_VERSION: u32 = 1;

/// The names of one context's events, as a type: subscriptions are built from these, so a
/// misspelt event cannot be subscribed to (it does not compile).
pub trait EventKind: Copy + Eq + std::fmt::Debug + Send + Sync + 'static {
    /// The event name within its context (`held`): the middle token of its subject.
    fn name(self) -> &'static str;
}

/// What every context's event enum offers to the messaging core.
pub trait Event: Sized + Send + Sync + 'static {
    const CONTEXT: Context;
    /// The context's event names.
    type Kind: EventKind;
    /// Every event name of the context.
    const KINDS: &'static [Self::Kind];

    fn kind(&self) -> Self::Kind;
    /// The aggregate the event is about: the third token of its subject.
    fn aggregate_id(&self) -> Uuid;
    /// The saga this event belongs to, if any.
    fn reservation_id(&self) -> Option<ReservationId>;
    /// The JSON body (the payload alone; the envelope travels in headers).
    fn encode(&self) -> Vec<u8>;
    /// Reads a body whose `ce-type` named `name` at `version` of this context.
    fn decode(name: &str, version: u32, data: &[u8]) -> Result<Self, DecodeError>;

    /// The event name within its context (`held`).
    fn name(&self) -> &'static str {
        self.kind().name()
    }

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
        $enum:ident, kinds $kind:ident, in $ctx:expr, aggregate $agg:ident {
            $($variant:ident($payload:ty) = $name:literal),* $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        pub enum $enum {
            $($variant($payload)),*
        }

        $crate::string_enum! {
            #[doc = concat!("The names of the events of [`", stringify!($enum), "`].")]
            pub enum $kind {
                $($variant = $name),*
            }
        }

        impl EventKind for $kind {
            fn name(self) -> &'static str {
                self.as_str()
            }
        }

        impl Event for $enum {
            const CONTEXT: Context = $ctx;
            type Kind = $kind;
            const KINDS: &'static [$kind] = $kind::ALL;

            fn kind(&self) -> $kind {
                match self {
                    $(Self::$variant(_) => $kind::$variant),*
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
                let kind: $kind = name
                    .parse()
                    .map_err(|_| DecodeError::UnknownType(format!("{}.{name}", $ctx.prefix())))?;
                if version != SCHEMA_VERSION {
                    return Err(DecodeError::UnsupportedVersion {
                        ce_type: format!("{}.{name}", $ctx.prefix()),
                        version,
                    });
                }
                let payload = |e: serde_json::Error| DecodeError::Payload(e.to_string());
                match kind {
                    $($kind::$variant => serde_json::from_slice(data).map(Self::$variant).map_err(payload),)*
                }
            }
        }

        impl $enum {
            /// Each event's name and the JSON Schema of its payload (at [`SCHEMA_VERSION`]).
            pub fn payload_schemas() -> Vec<(&'static str, schemars::Schema)> {
                vec![$(($name, schemars::schema_for!($payload))),*]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SeatSpec {
    pub seat_id: SeatId,
    pub label: String,
    pub grade: String,
    pub price: Points,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScheduleOpened {
    pub schedule_id: ScheduleId,
    pub concert_id: ConcertId,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "Rfc3339")]
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
    ConcertEvent, kinds ConcertKind, in Context::Concert, aggregate schedule_id {
        ScheduleOpened(ScheduleOpened) = "schedule_opened",
    }
}

// ---- seat ----

/// Each seat's version after the change an event announces (added in v1): seat-svc counts every
/// change of a seat in the transaction that makes it, so a seat's events are ordered by it. Their
/// order on the stream is not the seat's: a dead letter replayed later, or a relay publishing a
/// row again, comes after newer events.
pub type SeatVersions = std::collections::BTreeMap<SeatId, u64>;

crate::string_enum! {
    /// Why seat-svc gave a hold's seats back.
    pub enum ReleaseReason { PaymentFailed = "payment_failed", Expired = "expired", Cancelled = "cancelled" }
}

crate::string_enum! {
    /// Why seat-svc refused to sell a hold that was paid for (the payment gets refunded).
    pub enum SaleRejection {
        HoldExpired = "hold_expired", HoldCancelled = "hold_cancelled",
        HoldReleased = "hold_released", UnknownHold = "unknown_hold",
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SeatHeld {
    pub reservation_id: ReservationId,
    pub user_id: UserId,
    pub schedule_id: ScheduleId,
    pub seat_ids: Vec<SeatId>,
    pub amount: Points,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "Rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When the show starts (added in v1; absent from holds announced before).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<Rfc3339>")]
    pub starts_at: Option<OffsetDateTime>,
    /// See [`SeatVersions`].
    #[serde(default)]
    pub versions: SeatVersions,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SeatSold {
    pub reservation_id: ReservationId,
    pub seat_ids: Vec<SeatId>,
    /// See [`SeatVersions`].
    #[serde(default)]
    pub versions: SeatVersions,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SeatReleased {
    pub reservation_id: ReservationId,
    pub seat_ids: Vec<SeatId>,
    pub reason: ReleaseReason,
    /// See [`SeatVersions`].
    #[serde(default)]
    pub versions: SeatVersions,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SeatSaleRejected {
    pub reservation_id: ReservationId,
    pub reason: SaleRejection,
}

correlated_by_reservation!(SeatHeld, SeatSold, SeatReleased, SeatSaleRejected);

context_events! {
    /// Events of seat-svc (stream `SEAT`).
    SeatEvent, kinds SeatKind, in Context::Seat, aggregate reservation_id {
        Held(SeatHeld) = "held",
        Sold(SeatSold) = "sold",
        Released(SeatReleased) = "released",
        SaleRejected(SeatSaleRejected) = "sale_rejected",
    }
}

// ---- reservation ----

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentRequested {
    pub reservation_id: ReservationId,
    pub user_id: UserId,
    pub amount: Points,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReservationCancelled {
    pub reservation_id: ReservationId,
    pub user_id: UserId,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReservationConfirmed {
    pub reservation_id: ReservationId,
}

correlated_by_reservation!(PaymentRequested, ReservationCancelled, ReservationConfirmed);

context_events! {
    /// Events of reservation-svc (stream `RESERVATION`).
    ReservationEvent, kinds ReservationKind, in Context::Reservation, aggregate reservation_id {
        PaymentRequested(PaymentRequested) = "payment_requested",
        Cancelled(ReservationCancelled) = "cancelled",
        Confirmed(ReservationConfirmed) = "confirmed",
    }
}

// ---- payment ----

crate::string_enum! {
    /// Why payment-svc did not take the points: not enough of them, or the reservation was
    /// cancelled before its payment request arrived.
    pub enum PaymentFailure { InsufficientPoints = "insufficient_points", Cancelled = "cancelled" }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentCompleted {
    pub reservation_id: ReservationId,
    pub user_id: UserId,
    pub amount: Points,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentFailed {
    pub reservation_id: ReservationId,
    pub reason: PaymentFailure,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentRefunded {
    pub reservation_id: ReservationId,
    pub amount: Points,
}

correlated_by_reservation!(PaymentCompleted, PaymentFailed, PaymentRefunded);

context_events! {
    /// Events of payment-svc (stream `PAYMENT`).
    PaymentEvent, kinds PaymentKind, in Context::Payment, aggregate reservation_id {
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
            versions: Default::default(),
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
