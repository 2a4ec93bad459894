//! payment-svc: point wallets (balance, charge) with debits and refunds on an append-only
//! ledger.

pub mod domain;
pub mod events;
pub mod http;
pub mod startup;
pub mod store;

pub use startup::{App, Config};

pub const SERVICE: &str = "payment-svc";
