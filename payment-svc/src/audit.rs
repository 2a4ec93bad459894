//! audit: what payment-svc holds, read for the whole-system checks (the invariant checker,
//! the chaos tool, the bench) so that none of them needs to know its tables.

use crate::wallet::store::{Entry, Wallet, wallets, whole_ledger};
use nats::db::Db;

/// Every wallet, and every ledger entry of every user.
pub struct PaymentAudit {
    pub wallets: Vec<Wallet>,
    pub ledger: Vec<Entry>,
}

pub async fn read(db: &Db) -> anyhow::Result<PaymentAudit> {
    let mut r = db.reader().await?;
    Ok(PaymentAudit {
        wallets: wallets(&mut r).await?,
        ledger: whole_ledger(&mut r).await?,
    })
}
