//! harness: real components for tests and tools, never mocks — a current `nats-server` (or a
//! three-node cluster) on ports and store folders of its own, a fresh database per service
//! (SQLite files, or PostgreSQL with `TEST_DATABASE=postgres`), a test environment that runs a
//! service in-process, an HTTP client that talks to it as a frontend would, and a headless
//! Chromium (chromedriver) for the web page. A dev-only
//! crate: no service links it.

pub mod api;
mod browser;
mod bus;
mod cluster;
mod database;
mod env;
mod outage;
mod server;
mod venv;
mod wait;

pub use api::{Api, RawBody, Reply};
pub use browser::{CHROMIUM, Chromedriver};
pub use bus::{Watched, publish_message, stream_messages};
pub use cluster::NatsCluster;
pub use database::{
    Databases, TCP_SERVER, local_socket_server, postgres_from_env, postgres_server,
};
pub use env::TestEnv;
pub use outage::{Breaker, Cut};
pub use server::{MIN_VERSION, NatsServer, nats_server_binary, server_version, workspace_root};
pub use venv::tool as venv_tool;
pub use wait::eventually;

/// A UUIDv7 made ten minutes ago: an id no service may still be waiting for (ids made within
/// the last minute may name something on its way, and are answered 503 rather than 404).
pub fn id_made_long_ago() -> uuid::Uuid {
    let then = time::OffsetDateTime::now_utc() - time::Duration::minutes(10);
    let ts = uuid::Timestamp::from_unix(
        uuid::NoContext,
        then.unix_timestamp() as u64,
        then.nanosecond(),
    );
    uuid::Uuid::new_v7(ts)
}

/// When the shows tests open start: ninety days from now, on the hour, in RFC 3339 (a schedule
/// must start in the future to be offered, queued for and held).
pub fn upcoming() -> String {
    let later = time::OffsetDateTime::now_utc() + time::Duration::days(90);
    later
        .replace_minute(0)
        .and_then(|t| t.replace_second(0))
        .and_then(|t| t.replace_nanosecond(0))
        .unwrap_or(later)
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a date ninety days from now formats")
}
