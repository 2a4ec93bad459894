//! The contract between the four services: identifiers, event payloads, the envelope and the
//! subject/stream scheme. No I/O lives here; `nats/` turns these into messages.
//!
//! Modules, each depending only on those above it: `string_enum` (words with one spelling),
//! `ids`, `streams` (contexts, streams, subjects), `decode` (why a message cannot be read),
//! `events` (the payloads of every context), `envelope` (CloudEvents headers around a payload),
//! `trace` (W3C trace context carried with the events).

/// `$type`'s JSON Schema (for event payloads), written inline where it is used: the ids and
/// amounts (`ids`), payload times (`rfc3339`).
macro_rules! json_schema_of {
    ($type:ident, $schema:tt) => {
        impl schemars::JsonSchema for $type {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($type).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!($schema)
            }
        }
    };
}

pub mod string_enum;

pub mod ids;
pub mod streams;

pub mod decode;
pub mod events;

pub mod envelope;
mod rfc3339;
pub mod schemas;
pub mod trace;

pub use decode::DecodeError;
pub use envelope::{Envelope, Message};
pub use events::{
    ConcertEvent, ConcertKind, Event, EventKind, PaymentEvent, PaymentFailure, PaymentKind,
    ReleaseReason, ReservationEvent, ReservationKind, SaleRejection, SeatEvent, SeatKind, SeatSpec,
    SeatVersions,
};
pub use ids::{ConcertId, Points, ReservationId, ScheduleId, SeatId, UserId};
pub use streams::{Context, DLQ_STREAM};
