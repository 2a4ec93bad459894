//! The contract between the four services: identifiers, event payloads, the envelope and the
//! subject/stream scheme. No I/O lives here; `nats/` turns these into messages.

pub mod envelope;
pub mod events;
pub mod ids;
pub mod streams;

pub use envelope::{DecodeError, Envelope, Message};
pub use events::{
    ConcertEvent, Event, PaymentEvent, ReleaseReason, ReservationEvent, SeatEvent, SeatSpec,
};
pub use ids::{ConcertId, Points, ReservationId, ScheduleId, SeatId, UserId};
pub use streams::{Context, DLQ_STREAM};
