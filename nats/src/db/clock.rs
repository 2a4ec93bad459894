//! clock: the time every replica of a service agrees on — the database server's. Deadlines (hold
//! expiry, idle tokens), the relay lease and every `Work::now` read it, so a replica whose own
//! clock is off neither expires a hold early nor takes a lease another replica still holds.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use time::{Duration, OffsetDateTime};

/// This process's clock corrected by how far it is from the database server's.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// The database's time minus this process's, as last measured.
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + Duration::milliseconds(self.offset_ms())
    }

    pub fn now_ms(&self) -> i64 {
        to_millis(self.now())
    }

    /// How far the database's clock is ahead of this process's.
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// Records a reading of the database's clock, `server_ms`, taken between `before_ms` and
    /// `after_ms` of this process's: the offset is against the middle of that round trip.
    pub fn record(&self, server_ms: i64, before_ms: i64, after_ms: i64) {
        let offset = server_ms - (before_ms + after_ms) / 2;
        let previous = self.offset_ms.swap(offset, Ordering::Relaxed);
        if (offset - previous).abs() > 1_000 {
            tracing::warn!(
                offset_ms = offset,
                "this machine's clock is off from the database's; deadlines follow the database"
            );
        }
        metrics::gauge!("clock_offset_ms").set(offset as f64);
    }
}

/// Milliseconds since the Unix epoch: how every table stores time, portable across backends.
pub fn to_millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The inverse of [`to_millis`]; out-of-range values clamp to the epoch rather than panic.
pub fn from_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
