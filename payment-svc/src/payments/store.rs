//! store: one payment row per reservation in SQL — the decision made about it (debited,
//! failed, refunded, cancelled before any request) and by whom.

use super::domain::PaymentStatus;
use contracts::{PaymentFailure, Points, ReservationId, UserId};
use nats::db::Sql;

/// One reservation's payment as recorded.
#[derive(Debug, Clone)]
pub struct Payment {
    pub user: UserId,
    pub amount: Points,
    pub status: PaymentStatus,
}

/// The kind of record a payment's statements are about ([`nats::db::Statement::record`]):
/// each reads or writes its one row.
const PAYMENT: &str = "payments";

/// The reservation's payment, locked for the rest of the unit of work.
pub async fn get(
    sql: &mut impl Sql,
    reservation: ReservationId,
) -> anyhow::Result<Option<Payment>> {
    let row = sql
        .sql("SELECT user_id, amount, status FROM payments WHERE reservation_id = $1")
        .bind(reservation)
        .for_update()
        .record(PAYMENT, reservation)
        .fetch_optional()
        .await?;
    row.map(|r| {
        Ok(Payment {
            user: r.parse("user_id")?,
            amount: r.get("amount")?,
            status: r.parse("status")?,
        })
    })
    .transpose()
}

/// Records the first decision about a reservation's payment; `false` if one was made before
/// (by another unit of work, maybe meanwhile: this one then waits for its commit).
pub async fn claim(
    sql: &mut impl Sql,
    reservation: ReservationId,
    user: &UserId,
    amount: Points,
    status: PaymentStatus,
    now_ms: i64,
) -> anyhow::Result<bool> {
    let inserted = sql
        .sql(
            "INSERT INTO payments (reservation_id, user_id, amount, status, reason, created_at, updated_at)
             VALUES ($1, $2, $3, $4, NULL, $5, $5) ON CONFLICT DO NOTHING",
        )
        .bind(reservation)
        .bind(user)
        .bind(amount)
        .bind(status.as_str())
        .bind(now_ms)
        .record(PAYMENT, reservation)
        .execute()
        .await?;
    Ok(inserted == 1)
}

/// Moves the reservation's recorded payment to `status`: a write sent later
/// ([`nats::db::Statement::execute_later`]).
pub async fn set_status(
    sql: &mut impl Sql,
    reservation: ReservationId,
    status: PaymentStatus,
    reason: Option<PaymentFailure>,
    now_ms: i64,
) -> anyhow::Result<()> {
    sql.sql(
        "UPDATE payments SET status = $1, reason = $2, updated_at = $3 WHERE reservation_id = $4",
    )
    .bind(status.as_str())
    .bind(reason)
    .bind(now_ms)
    .bind(reservation)
    .record(PAYMENT, reservation)
    .execute_later()
    .await
}
