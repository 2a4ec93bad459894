//! gateway: the one front door for a ticketing frontend. The services' APIs live under `/api`
//! on one origin; the web page at `/`.
//!
//! # Layout
//! - [`config`]: settings from the environment, and the four upstreams.
//! - [`edge`]: the router and its layers, health, serving.
//! - [`state`]: what every handler shares.
//! - [`upstream`]: the one client every call to a service goes through: timeouts, breakers.
//! - [`proxy`]: a request passed to the service that owns its path.
//! - [`catalog`]: public catalog reads, served stale while concert-svc is down.
//! - [`memory`]: the last good catalog answers and API documents kept.
//! - [`compose`]: reservations with the catalog's titles, dates and seat details.
//! - [`identity`]: the token from a header or the session cookie, verified at the edge.
//! - [`limit`]: requests a second per user or IP.
//! - [`docs`]: the merged OpenAPI document and problem types.
//! - [`page`]: the web page and the API reference, built into the binary.

pub mod config;

mod catalog;
mod compose;
mod docs;
mod edge;
mod identity;
mod limit;
mod memory;
mod page;
mod proxy;
mod state;
mod upstream;

pub use catalog::STALE;
pub use edge::{router, serve};
pub use identity::COOKIE;
pub use state::Gateway;
