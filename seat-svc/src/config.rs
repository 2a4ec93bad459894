//! config: seat-svc's own settings — how long a hold lasts and how the waiting queue admits —
//! from `SEAT_HOLD_TTL_SECS`, `QUEUE_ACTIVE_LIMIT` and `QUEUE_TOKEN_TTL_SECS`.

use nats::runtime::{FromEnv, env_parse};
use std::time::Duration;

/// What seat-svc's HTTP handlers share.
pub type AppState = nats::runtime::AppState<Limits>;

#[derive(Clone, Debug)]
pub struct Limits {
    /// How long a hold lasts unpaid before its seats are released.
    pub hold_ttl: Duration,
    /// Tokens of one schedule active at once; the rest wait in line.
    pub queue_active_limit: i64,
    /// How long a token may go unused before it expires.
    pub queue_token_ttl: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            hold_ttl: Duration::from_secs(300),
            queue_active_limit: 100,
            queue_token_ttl: Duration::from_secs(600),
        }
    }
}

impl FromEnv for Limits {
    fn from_env() -> anyhow::Result<Self> {
        let d = Limits::default();
        let limits = Limits {
            hold_ttl: Duration::from_secs(env_parse("SEAT_HOLD_TTL_SECS", d.hold_ttl.as_secs())?),
            queue_active_limit: env_parse("QUEUE_ACTIVE_LIMIT", d.queue_active_limit)?,
            queue_token_ttl: Duration::from_secs(env_parse(
                "QUEUE_TOKEN_TTL_SECS",
                d.queue_token_ttl.as_secs(),
            )?),
        };
        anyhow::ensure!(
            limits.queue_active_limit > 0,
            "QUEUE_ACTIVE_LIMIT must be at least 1"
        );
        anyhow::ensure!(
            !limits.hold_ttl.is_zero(),
            "SEAT_HOLD_TTL_SECS must be at least 1"
        );
        Ok(limits)
    }
}
