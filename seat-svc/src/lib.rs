//! seat-svc: seat inventory per schedule, holds that expire, and the waiting queue that admits
//! users to hold seats.

pub mod domain;
pub mod events;
pub mod expiry;
pub mod http;
pub mod startup;
pub mod store;

pub use platform::service::App;
pub use startup::{Config, build};

pub const SERVICE: &str = "seat-svc";
