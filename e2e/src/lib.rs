//! e2e: runs the whole system the way users do — a real nats-server and the four service
//! binaries as separate processes on free ports, each with its own SQLite file — and talks to
//! it over HTTP only. Used by the end-to-end tests and the demo.

pub mod flows;
pub mod invariants;
pub mod process;

pub use platform::harness::{Api, RawBody, Reply, eventually};
pub use process::{ServiceProcess, System, service_binary};
