//! e2e: runs the whole system the way users do — a real nats-server and the four service
//! binaries as separate processes on free ports, each on a database of its own — talks to it
//! over HTTP only, and reads back what the services hold only through their audit functions.
//! Used by the end-to-end tests, the demo, the chaos tool and the bench.
//!
//! # Layout
//! - [`process`]: one service as an OS process (spawn, kill, SIGTERM, restart, replicas).
//! - [`system`]: NATS and the four services together, and waiting for them to settle, with the
//!   knobs of a run ([`options`]).
//! - [`frontend`]: what a frontend has: the four APIs and a way to sign in.
//! - [`gateway`]: the front door in front of a system, and a frontend that goes through it.
//! - [`flows`]: a reservation's steps as a frontend takes them; [`endings`]: one saga of each
//!   ending.
//! - [`sale`]: many users at once, each retrying through faults; what the system accepted.
//! - [`chaos`]: a sale under random kills, and what became of what was accepted.
//! - [`invariants`]: the checker every run ends with.

pub mod asyncapi;
pub mod chaos;
pub mod endings;
pub mod flows;
pub mod frontend;
pub mod gateway;
pub mod invariants;
pub mod options;
pub mod process;
pub mod sale;
pub mod system;

pub use frontend::{Client, Frontend};
pub use gateway::Gateway;
pub use harness::{Api, RawBody, Reply, eventually};
pub use process::{ServiceProcess, service_binary};
pub use system::System;
