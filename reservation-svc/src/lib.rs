//! reservation-svc: reservations and their status as the saga moves, the pay command, and the
//! user's "my tickets" view.

pub mod domain;
pub mod events;
pub mod http;
pub mod startup;
pub mod store;

pub use platform::service::App;
pub use startup::{Config, build};

pub const SERVICE: &str = "reservation-svc";
