//! The shared runtime of the four services: what they have in common, written once, so a
//! service differs from another only in its domain.
//!
//! # Layout
//! Each layer uses only the layers above it.
//! - [`traces`]: spans exported over OTLP, each continuing the trace its saga carries.
//! - [`db`]: the database (a SQLite file, or PostgreSQL by URL) and the small SQL API every store
//!   is written in ([`db::Sql`], [`db::Row`]), once for both backends. Reads start here.
//! - [`unit_of_work`]: the one place state changes are written. A unit of work runs in a
//!   transaction, its events go to the outbox table in that transaction, the commit tells the
//!   relay. Business rejections and technical failures stay apart through it.
//! - [`messaging`]: JetStream. Topology and subscriptions as types, bus users and permissions,
//!   the inbox, the DLQ, the relay that publishes the outbox, and the consumer loop that runs
//!   event handlers as units of work. The nats-server configs live in `conf/`.
//! - [`web`]: HTTP conventions: problem+json errors, extractors that answer with problems, and
//!   identity from a bearer JWT.
//! - [`runtime`]: a running service: settings from the environment, start-up, `/healthz`,
//!   `/readyz`, `/metrics`, logging, and graceful shutdown.
//!
//! A reader new to the code starts with [`unit_of_work`] and [`messaging::consumer`]; a
//! service's `lib.rs` shows how they are put together.

pub mod traces;

pub mod db;
pub mod unit_of_work;

pub mod messaging;
pub mod web;

pub mod runtime;
