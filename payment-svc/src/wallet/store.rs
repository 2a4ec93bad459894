//! store: wallets and the append-only ledger in SQL. Balance changes are conditional updates,
//! so a debit never takes a balance below zero, whichever replica runs it; every change appends
//! a ledger entry with the balance after it.

use super::domain::EntryKind;
use contracts::{Points, ReservationId, UserId};
use nats::db::{Sql, from_millis};
use serde::Serialize;

pub async fn balance(sql: &mut impl Sql, user: &UserId) -> anyhow::Result<Points> {
    let row = sql
        .sql("SELECT balance FROM wallets WHERE user_id = $1")
        .bind(user)
        .fetch_optional()
        .await?;
    Ok(match row {
        Some(r) => r.get("balance")?,
        None => Points::ZERO,
    })
}

/// Adds points (opening the wallet on its first charge); returns the new balance.
pub async fn charge(
    sql: &mut impl Sql,
    user: &UserId,
    amount: Points,
    now_ms: i64,
) -> anyhow::Result<Points> {
    let balance: Points = sql
        .sql(
            "INSERT INTO wallets (user_id, balance, charged_total, updated_at) VALUES ($1, $2, $2, $3)
             ON CONFLICT (user_id) DO UPDATE SET balance = wallets.balance + excluded.balance,
                 charged_total = wallets.charged_total + excluded.charged_total,
                 updated_at = excluded.updated_at
             RETURNING balance",
        )
        .bind(user)
        .bind(amount)
        .bind(now_ms)
        .fetch_one()
        .await?
        .get("balance")?;
    append(sql, user, EntryKind::Charge, amount, None, balance, now_ms).await?;
    Ok(balance)
}

/// Moves `amount` of `user`'s points for `reservation`: a debit takes them if the balance
/// covers it, a refund gives them back. Answers the new balance, or `None` when a debit is not
/// covered (nothing changed). The ledger's unique index allows one of each per reservation.
pub async fn settle(
    sql: &mut impl Sql,
    user: &UserId,
    kind: EntryKind,
    reservation: ReservationId,
    amount: Points,
    now_ms: i64,
) -> anyhow::Result<Option<Points>> {
    let update = match kind {
        EntryKind::Debit => {
            "UPDATE wallets SET balance = balance - $1, updated_at = $2
             WHERE user_id = $3 AND balance >= $1 RETURNING balance"
        }
        EntryKind::Refund => {
            "UPDATE wallets SET balance = balance + $1, updated_at = $2
             WHERE user_id = $3 RETURNING balance"
        }
        EntryKind::Charge => anyhow::bail!("a charge is not for a reservation"),
    };
    // The new balance comes back with the update: the ledger records it.
    let row = sql
        .sql(update)
        .bind(amount)
        .bind(now_ms)
        .bind(user)
        .fetch_optional()
        .await?;
    let Some(row) = row else { return Ok(None) };
    let balance = row.get("balance")?;
    append(sql, user, kind, amount, Some(reservation), balance, now_ms).await?;
    Ok(Some(balance))
}

/// Appends a ledger entry: a write sent later (`Statement::execute_later`), with the unit's
/// next write or at its end (in a consumer's batch, with the next unit's first statement). A
/// new row, which nothing in the unit reads: its record is its own.
async fn append(
    sql: &mut impl Sql,
    user: &UserId,
    kind: EntryKind,
    amount: Points,
    reservation: Option<ReservationId>,
    balance_after: Points,
    now_ms: i64,
) -> anyhow::Result<()> {
    let id = uuid::Uuid::now_v7();
    sql.sql(
        "INSERT INTO ledger (id, user_id, kind, amount, reservation_id, balance_after, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(user)
    .bind(kind.as_str())
    .bind(amount)
    .bind(reservation)
    .bind(balance_after)
    .bind(now_ms)
    .record("ledger", id)
    .execute_later()
    .await
}

/// One change of a wallet, on its append-only ledger.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Entry {
    pub id: String,
    pub kind: EntryKind,
    pub amount: Points,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation_id: Option<ReservationId>,
    pub balance_after: Points,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    #[serde(skip)]
    pub user: UserId,
}

const ENTRY_COLUMNS: &str = "id, user_id, kind, amount, reservation_id, balance_after, created_at";

fn entries(rows: Vec<nats::db::Row>) -> anyhow::Result<Vec<Entry>> {
    rows.iter()
        .map(|r| {
            Ok(Entry {
                id: r.get("id")?,
                kind: r.parse("kind")?,
                amount: r.get("amount")?,
                reservation_id: r.parse_opt("reservation_id")?,
                balance_after: r.get("balance_after")?,
                created_at: from_millis(r.get("created_at")?),
                user: r.parse("user_id")?,
            })
        })
        .collect()
}

/// The user's ledger, oldest first.
pub async fn ledger(
    sql: &mut impl Sql,
    user: &UserId,
    limit: i64,
    offset: i64,
) -> anyhow::Result<Vec<Entry>> {
    let rows = sql
        .sql_built(format!(
            "SELECT {ENTRY_COLUMNS} FROM ledger WHERE user_id = $1
             ORDER BY created_at, id LIMIT $2 OFFSET $3"
        ))
        .bind(user)
        .bind(limit)
        .bind(offset)
        .fetch_all()
        .await?;
    entries(rows)
}

/// Every ledger entry of every user.
pub async fn whole_ledger(sql: &mut impl Sql) -> anyhow::Result<Vec<Entry>> {
    let rows = sql
        .sql_built(format!("SELECT {ENTRY_COLUMNS} FROM ledger"))
        .fetch_all()
        .await?;
    entries(rows)
}

/// One wallet as the audit reads it.
#[derive(Debug, Clone)]
pub struct Wallet {
    pub user: UserId,
    pub balance: Points,
    /// Everything ever charged to it.
    pub charged: Points,
}

/// Every wallet.
pub async fn wallets(sql: &mut impl Sql) -> anyhow::Result<Vec<Wallet>> {
    sql.sql("SELECT user_id, balance, charged_total FROM wallets")
        .fetch_all()
        .await?
        .iter()
        .map(|r| {
            Ok(Wallet {
                user: r.parse("user_id")?,
                balance: r.get("balance")?,
                charged: r.get("charged_total")?,
            })
        })
        .collect()
}
