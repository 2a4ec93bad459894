//! The whole system, end to end: a real nats-server and the four service binaries as separate
//! processes, driven over HTTP only, each scenario ending with the invariant checker. One test
//! binary; a file per scenario.

mod helpers;

mod browser;
mod chaos;
mod clock;
mod cluster;
mod compensations;
mod contracts;
mod dlq;
mod event_schemas;
mod expiry;
mod gateway;
mod happy_path;
mod idempotency;
mod identity;
mod metrics;
mod outages;
mod queue;
mod read_your_writes;
mod rebuild;
mod replicas;
mod republish;
mod sagas;
mod schemathesis;
mod secured;
mod shutdown;
