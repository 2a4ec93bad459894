//! config: the settings every service has, from environment variables with defaults that run on
//! a laptop, and the helpers services read their own settings with.

use super::housekeeping::Retention;
use crate::db::Durability;
use crate::messaging::topology::StreamLimits;
use crate::web::auth::AuthConfig;
use std::str::FromStr;
use std::time::Duration;

/// Reads `key`, or `default` when unset.
pub fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}

/// Reads and parses `key`, or `default` when unset; a value that does not parse is an error
/// naming the variable.
pub fn env_parse<T: FromStr>(key: &str, default: T) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(key) {
        Ok(v) => v
            .parse()
            .map_err(|e| anyhow::anyhow!("environment variable {key}={v:?} is invalid: {e}")),
        Err(_) => Ok(default),
    }
}

/// A duration in whole seconds from `key`, or `default`.
pub fn secs(key: &str, default: Duration) -> anyhow::Result<Duration> {
    env_parse(key, default.as_secs()).map(Duration::from_secs)
}

/// Settings a service has beyond the shared ones, read from the environment.
pub trait FromEnv: Sized {
    fn from_env() -> anyhow::Result<Self>;
}

/// A service with no settings of its own.
impl FromEnv for () {
    fn from_env() -> anyhow::Result<()> {
        Ok(())
    }
}

/// The settings every service has.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    pub name: &'static str,
    pub http_addr: String,
    pub nats_url: String,
    pub database_url: String,
    /// How bearer tokens are verified.
    pub auth: AuthConfig,
    /// Replicas of streams and consumers (1 on one node, 3 on a cluster).
    pub nats_replicas: usize,
    /// Deliveries of a failing event before it goes to the DLQ.
    pub max_deliver: i64,
    /// SQLite's `synchronous` setting (`SQLITE_SYNCHRONOUS`: NORMAL or FULL).
    pub durability: Durability,
    /// PostgreSQL connections this process holds at most (`DATABASE_MAX_CONNECTIONS`).
    pub database_connections: u32,
    /// The service's own NATS user (`NATS_USER`, `NATS_PASSWORD`), when the bus has users.
    pub nats_credentials: Option<(String, String)>,
    /// How long published events and handled event ids are kept (`OUTBOX_RETENTION_SECS`,
    /// `INBOX_RETENTION_SECS`), and how often older ones are deleted (`HOUSEKEEPING_EVERY_SECS`).
    pub retention: Retention,
    pub housekeeping_every: Duration,
    /// The bound of the stream this service creates when it does not exist
    /// (`NATS_STREAM_MAX_BYTES`).
    pub stream_limits: StreamLimits,
    /// How long a request may take to be answered, its body included (`REQUEST_TIMEOUT_SECS`).
    pub request_timeout: Duration,
}

impl ServiceConfig {
    pub fn from_env(name: &'static str, default_port: u16) -> anyhow::Result<Self> {
        // Development and tests may run with defaults that must never reach a deployment.
        let dev_mode = env_parse("DEV_MODE", false)?;
        let auth = AuthConfig::from_vars(|k| std::env::var(k).ok(), dev_mode)?;
        Ok(ServiceConfig {
            name,
            http_addr: env_or("HTTP_ADDR", &format!("127.0.0.1:{default_port}")),
            nats_url: env_or("NATS_URL", "nats://127.0.0.1:4222"),
            database_url: env_or("DATABASE_URL", &format!("sqlite://data/{name}.db")),
            auth,
            nats_replicas: env_parse("NATS_REPLICAS", 1)?,
            max_deliver: env_parse("CONSUMER_MAX_DELIVER", 10)?,
            durability: env_parse("SQLITE_SYNCHRONOUS", Durability::Normal)?,
            database_connections: env_parse(
                "DATABASE_MAX_CONNECTIONS",
                crate::db::DEFAULT_CONNECTIONS,
            )?,
            nats_credentials: match (std::env::var("NATS_USER"), std::env::var("NATS_PASSWORD")) {
                (Ok(user), Ok(password)) => Some((user, password)),
                _ => None,
            },
            retention: Retention {
                outbox: secs("OUTBOX_RETENTION_SECS", Retention::default().outbox)?,
                inbox: secs("INBOX_RETENTION_SECS", Retention::default().inbox)?,
                keys: secs("IDEMPOTENCY_KEY_RETENTION_SECS", Retention::default().keys)?,
            }
            .checked()?,
            housekeeping_every: secs("HOUSEKEEPING_EVERY_SECS", super::housekeeping::EVERY)?
                .max(Duration::from_secs(1)),
            request_timeout: secs("REQUEST_TIMEOUT_SECS", crate::web::deadline::DEFAULT)?
                .max(Duration::from_secs(1)),
            stream_limits: StreamLimits {
                max_bytes: env_parse("NATS_STREAM_MAX_BYTES", StreamLimits::default().max_bytes)?,
            },
        })
    }
}

/// A service's whole configuration: the shared settings and its own.
#[derive(Clone, Debug)]
pub struct Config<S> {
    pub service: ServiceConfig,
    pub settings: S,
}
