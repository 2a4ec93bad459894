//! payment-svc: point wallets (balance, charge) with debits and refunds on an append-only
//! ledger.

pub mod domain;
pub mod events;
pub mod http;
pub mod startup;
pub mod store;

pub use platform::service::App;
pub use startup::{Config, build};

pub const SERVICE: &str = "payment-svc";
