//! payments: one payment per reservation — debited when it asks to be paid and the points are
//! there, failed otherwise, refunded at most once if it is cancelled or its sale refused.

pub mod cashier;
pub mod domain;
pub mod store;
