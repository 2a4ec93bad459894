//! wallet: each user's points — charged by the user, debited and refunded for reservations —
//! and the append-only ledger of every change.

pub mod domain;
pub mod http;
pub mod store;

use contracts::{Points, UserId};
use domain::KeyReused;
use nats::unit_of_work::{Error, Work};

/// Adds `amount` to the user's wallet; answers the new balance. With an idempotency `key` the
/// user used before for the same amount, charges nothing and answers the balance it answered
/// then; for another amount, refuses.
pub async fn charge(
    w: &mut Work,
    user: UserId,
    amount: Points,
    key: Option<String>,
) -> Result<Points, Error<KeyReused>> {
    let now = w.now_ms();
    // The key is claimed before the charge: a request sent again while the first is still in
    // flight waits for that one's commit (PostgreSQL) and then finds its answer.
    if let Some(key) = &key
        && !store::claim_charge_request(w, &user, key, amount, now).await?
    {
        let (first, balance) = store::charge_request(w, &user, key)
            .await?
            .ok_or_else(|| anyhow::anyhow!("a claimed Idempotency-Key vanished"))?;
        if first != amount {
            return Err(KeyReused {
                first: first.value(),
                again: amount.value(),
            }
            .into());
        }
        return Ok(balance);
    }
    let balance = store::charge(w, &user, amount, now).await?;
    if let Some(key) = &key {
        store::answer_charge_request(w, &user, key, balance).await?;
    }
    Ok(balance)
}
