//! messaging: everything JetStream. The layers, each using only those above it:
//! - [`topology`]: streams, durable consumers, subscriptions and the retry policy, as data.
//! - [`users`]: who may do what on a secured bus (rendered into `conf/auth.conf`).
//! - [`dlq`]: dead letters, and the tools to work them off; [`retries`]: when to give up.
//! - [`relay`]: publishes the outbox (written by the unit of work) after each commit, in
//!   commit order ([`reorder`]).
//! - [`handler`]: what a service writes to handle events; [`consumer`]: pulls batches, runs
//!   them through the handler as units of work, acks.
//! - [`timeline`]: one saga's events across every stream, and where each consumer stands;
//!   [`lag`]: how far behind each durable consumer is.

pub mod topology;
pub mod users;

pub mod dlq;
pub mod retries;

pub mod handler;

pub mod consumer;
pub mod relay;
mod reorder;

pub mod lag;
pub mod timeline;
