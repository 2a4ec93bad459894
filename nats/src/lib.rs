//! What every service shares: the JetStream messaging core (topology, transactional outbox, inbox,
//! consumer runner with DLQ) and the service plumbing (database, HTTP errors, auth, health, metrics,
//! start-up and shutdown). Written once so the four services differ only in their domain.

pub mod apply;
pub mod auth;
pub mod consumer;
pub mod db;
pub mod dlq;
#[cfg(feature = "harness")]
pub mod harness;
pub mod http;
pub mod inbox;
pub mod outbox;
pub mod service;
pub mod telemetry;
pub mod topology;

/// Milliseconds since the Unix epoch: how every table stores time, portable across backends.
pub fn to_millis(t: time::OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The inverse of [`to_millis`]; out-of-range values clamp to the epoch rather than panic.
pub fn from_millis(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}
