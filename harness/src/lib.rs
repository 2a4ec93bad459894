//! harness: real components for tests and tools, never mocks — a current `nats-server` (or a
//! three-node cluster) on ports and store folders of its own, a fresh database per service
//! (SQLite files, or PostgreSQL with `TEST_DATABASE=postgres`), a test environment that runs a
//! service in-process, and an HTTP client that talks to it as a frontend would. A dev-only
//! crate: no service links it.

pub mod api;
mod bus;
mod cluster;
mod database;
mod env;
mod outage;
mod server;
mod wait;

pub use api::{Api, RawBody, Reply};
pub use bus::{Watched, publish_message, stream_messages};
pub use cluster::NatsCluster;
pub use database::{Databases, postgres_from_env};
pub use env::TestEnv;
pub use outage::{Breaker, Cut};
pub use server::{MIN_VERSION, NatsServer, nats_server_binary, server_version, workspace_root};
pub use wait::eventually;
