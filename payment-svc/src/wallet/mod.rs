//! wallet: each user's points — charged by the user, debited and refunded for reservations —
//! and the append-only ledger of every change.

pub mod domain;
pub mod http;
pub mod store;

use contracts::{Points, UserId};
use nats::unit_of_work::Work;

/// Adds `amount` to the user's wallet; answers the new balance. (A charge sent again with its
/// `Idempotency-Key` is answered without running this: [`nats::web::idempotency`].)
pub async fn charge(w: &mut Work, user: &UserId, amount: Points) -> anyhow::Result<Points> {
    let now = w.now_ms();
    store::charge(w, user, amount, now).await
}
