//! concert-svc: concerts, schedules, seat maps and prices, and the live availability view (a
//! read model kept from seat events).

pub mod domain;
pub mod events;
pub mod http;
pub mod rebuild;
pub mod startup;
pub mod store;

pub use platform::service::App;
pub use startup::{Config, build};

pub const SERVICE: &str = "concert-svc";
