//! store: wallets, the ledger and payments in SQL. Balance changes are conditional updates, so a
//! debit never takes a balance below zero, whichever replica runs it.

use crate::domain::PaymentStatus;
use contracts::{Points, ReservationId, UserId};
use platform::db::Tx;
use serde::Serialize;
use sqlx::{AnyPool, Row};

pub async fn balance(pool: &AnyPool, user: &UserId) -> sqlx::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT balance FROM wallets WHERE user_id = $1")
            .bind(&user.0)
            .fetch_optional(pool)
            .await?
            .unwrap_or(0),
    )
}

/// Adds points (opening the wallet on its first charge); returns the new balance.
pub async fn charge(tx: &mut Tx, user: &UserId, amount: Points, now_ms: i64) -> sqlx::Result<i64> {
    let balance: i64 = sqlx::query_scalar(
        "INSERT INTO wallets (user_id, balance, charged_total, updated_at) VALUES ($1, $2, $2, $3)
         ON CONFLICT (user_id) DO UPDATE SET balance = wallets.balance + excluded.balance,
             charged_total = wallets.charged_total + excluded.charged_total,
             updated_at = excluded.updated_at
         RETURNING balance",
    )
    .bind(&user.0)
    .bind(amount.value())
    .bind(now_ms)
    .fetch_one(&mut **tx)
    .await?;
    append(tx, user, "charge", amount, None, balance, now_ms).await?;
    Ok(balance)
}

async fn wallet_balance(tx: &mut Tx, user: &UserId) -> sqlx::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT balance FROM wallets WHERE user_id = $1")
            .bind(&user.0)
            .fetch_optional(&mut **tx)
            .await?
            .unwrap_or(0),
    )
}

/// Current balance inside the transaction, as points.
pub async fn points(tx: &mut Tx, user: &UserId) -> sqlx::Result<Points> {
    let b = wallet_balance(tx, user).await?;
    Ok(Points::new(b).unwrap_or(Points::ZERO))
}

/// Takes `amount` for `reservation` if the balance covers it; `false` if it does not.
pub async fn debit(
    tx: &mut Tx,
    user: &UserId,
    reservation: ReservationId,
    amount: Points,
    now_ms: i64,
) -> sqlx::Result<bool> {
    // The new balance comes back with the update: the ledger records it.
    let balance: Option<i64> = sqlx::query_scalar(
        "UPDATE wallets SET balance = balance - $1, updated_at = $2 WHERE user_id = $3 AND balance >= $1
         RETURNING balance",
    )
    .bind(amount.value())
    .bind(now_ms)
    .bind(&user.0)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(balance) = balance else {
        return Ok(false);
    };
    append(
        tx,
        user,
        "debit",
        amount,
        Some(reservation),
        balance,
        now_ms,
    )
    .await?;
    Ok(true)
}

async fn append(
    tx: &mut Tx,
    user: &UserId,
    kind: &str,
    amount: Points,
    reservation: Option<ReservationId>,
    balance_after: i64,
    now_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO ledger (id, user_id, kind, amount, reservation_id, balance_after, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(&user.0)
    .bind(kind)
    .bind(amount.value())
    .bind(reservation.map(|r| r.to_string()))
    .bind(balance_after)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// One reservation's payment as recorded.
#[derive(Debug, Clone)]
pub struct Payment {
    pub user: UserId,
    pub amount: Points,
    pub status: PaymentStatus,
}

/// The reservation's payment, locked for the rest of the transaction.
pub async fn payment(tx: &mut Tx, reservation: ReservationId) -> sqlx::Result<Option<Payment>> {
    let lock = platform::db::for_update(tx);
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT user_id, amount, status FROM payments WHERE reservation_id = $1{lock}"
    )))
    .bind(reservation.to_string())
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| {
        let status: String = r.try_get("status")?;
        Ok(Payment {
            user: UserId(r.try_get("user_id")?),
            amount: Points::new(r.try_get("amount")?).unwrap_or(Points::ZERO),
            status: PaymentStatus::parse(&status).ok_or_else(|| {
                sqlx::Error::Decode(format!("unknown payment status {status:?}").into())
            })?,
        })
    })
    .transpose()
}

/// Records the first decision about a reservation's payment; `false` if another transaction
/// made one first (the caller retries and then sees it).
pub async fn claim_payment(
    tx: &mut Tx,
    reservation: ReservationId,
    user: &UserId,
    amount: Points,
    status: PaymentStatus,
    reason: Option<&str>,
    now_ms: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO payments (reservation_id, user_id, amount, status, reason, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT DO NOTHING",
    )
    .bind(reservation.to_string())
    .bind(&user.0)
    .bind(amount.value())
    .bind(status.as_str())
    .bind(reason)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Moves the reservation's recorded payment to `status`.
pub async fn set_payment_status(
    tx: &mut Tx,
    reservation: ReservationId,
    status: PaymentStatus,
    reason: Option<&str>,
    now_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE payments SET status = $1, reason = $2, updated_at = $3 WHERE reservation_id = $4",
    )
    .bind(status.as_str())
    .bind(reason)
    .bind(now_ms)
    .bind(reservation.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Gives a debited reservation's points back (the ledger's unique index allows one refund).
pub async fn refund(
    tx: &mut Tx,
    reservation: ReservationId,
    p: &Payment,
    now_ms: i64,
) -> sqlx::Result<()> {
    let balance: i64 = sqlx::query_scalar(
        "UPDATE wallets SET balance = balance + $1, updated_at = $2 WHERE user_id = $3
         RETURNING balance",
    )
    .bind(p.amount.value())
    .bind(now_ms)
    .bind(&p.user.0)
    .fetch_optional(&mut **tx)
    .await?
    .unwrap_or(0);
    append(
        tx,
        &p.user,
        "refund",
        p.amount,
        Some(reservation),
        balance,
        now_ms,
    )
    .await?;
    set_payment_status(tx, reservation, PaymentStatus::Refunded, None, now_ms).await
}

#[derive(Debug, Serialize)]
pub struct Entry {
    pub id: String,
    pub kind: String,
    pub amount: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation_id: Option<String>,
    pub balance_after: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
}

pub async fn ledger(pool: &AnyPool, user: &UserId) -> sqlx::Result<Vec<Entry>> {
    sqlx::query(
        "SELECT id, kind, amount, reservation_id, balance_after, created_at FROM ledger
         WHERE user_id = $1 ORDER BY created_at, id",
    )
    .bind(&user.0)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(Entry {
            id: r.try_get("id")?,
            kind: r.try_get("kind")?,
            amount: r.try_get("amount")?,
            reservation_id: r.try_get("reservation_id")?,
            balance_after: r.try_get("balance_after")?,
            created_at: platform::from_millis(r.try_get("created_at")?),
        })
    })
    .collect()
}
