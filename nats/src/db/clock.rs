//! clock: the time every replica of a service agrees on — the database server's. Deadlines (hold
//! expiry, idle tokens), the relay lease and every `Work::now` read it, so a replica whose own
//! clock is off neither expires a hold early nor takes a lease another replica still holds.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use time::{Duration, OffsetDateTime};

/// This process's clock corrected by how far it is from the database server's.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// The database's time minus this process's, in microseconds, as last measured.
    offset_us: Arc<AtomicI64>,
}

/// One reading of the database's clock, `server_us`, taken between `before_us` and `after_us`
/// of this process's (all microseconds since the epoch).
#[derive(Clone, Copy, Debug)]
pub struct Reading {
    pub server_us: i64,
    pub before_us: i64,
    pub after_us: i64,
}

impl Reading {
    /// How long the reading took: the shorter, the less it can be off.
    pub fn round_trip_us(&self) -> i64 {
        self.after_us - self.before_us
    }

    /// The offset it shows: against the middle of the round trip, which is as far as it can be
    /// known. Within half the round trip of 0 it is 0: the clocks agree as far as the reading
    /// tells, and a busy moment's slow reply must not set services on one machine apart (each
    /// stamps its events with this clock, and a saga's timeline orders by those stamps).
    fn offset_us(&self) -> i64 {
        let offset = self.server_us - (self.before_us + self.after_us) / 2;
        match offset.abs() <= self.round_trip_us() / 2 {
            true => 0,
            false => offset,
        }
    }
}

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + Duration::microseconds(self.offset_us.load(Ordering::Relaxed))
    }

    pub fn now_ms(&self) -> i64 {
        to_millis(self.now())
    }

    /// Records the offset `reading` shows (the caller keeps the reading with the shortest
    /// round trip of a few).
    pub fn record(&self, reading: Reading) {
        let offset = reading.offset_us();
        let previous = self.offset_us.swap(offset, Ordering::Relaxed);
        if (offset - previous).abs() > 1_000_000 {
            tracing::warn!(
                offset_ms = offset / 1_000,
                "this machine's clock is off from the database's; deadlines follow the database"
            );
        }
        metrics::gauge!("clock_offset_ms").set(offset as f64 / 1_000.0);
    }
}

/// Microseconds since the Unix epoch, for clock readings.
pub fn to_micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000) as i64
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

#[cfg(test)]
mod tests {
    use super::Reading;

    fn reading(server_us: i64, before_us: i64, after_us: i64) -> Reading {
        Reading {
            server_us,
            before_us,
            after_us,
        }
    }

    #[test]
    fn an_offset_within_half_the_round_trip_is_none() {
        // A slow reply whose server time falls anywhere in the round trip.
        assert_eq!(reading(1_000_500, 1_000_000, 1_014_000).offset_us(), 0);
        assert_eq!(reading(1_014_000, 1_000_000, 1_014_000).offset_us(), 0);
    }

    #[test]
    fn an_offset_beyond_the_round_trip_is_measured_from_its_middle() {
        assert_eq!(
            reading(16_000_100, 1_000_000, 1_000_200).offset_us(),
            15_000_000
        );
        assert_eq!(
            reading(1_000_000, 16_000_000, 16_000_200).offset_us(),
            -15_000_100
        );
    }
}
