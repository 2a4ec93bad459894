//! store: reservations in SQL — each with the facts learned about its saga, and the status and
//! reason they amount to (kept as columns for queries).

use crate::domain::{Facts, FailureReason, Status};
use contracts::events::SeatHeld;
use contracts::{Points, ReservationId, ScheduleId, SeatId, UserId};
use nats::db::{Row, Sql, from_millis, padded_to_power_of_two, placeholders, to_millis};
use nats::unit_of_work::Work;
use serde::Serialize;

/// A reservation as its owner sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Reservation {
    pub id: ReservationId,
    pub user_id: UserId,
    pub schedule_id: ScheduleId,
    pub seat_ids: Vec<SeatId>,
    pub amount: Points,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<FailureReason>,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: time::OffsetDateTime,
    /// When the show starts, where the hold said.
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub starts_at: Option<time::OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: time::OffsetDateTime,
    #[serde(skip)]
    pub facts: Facts,
}

const COLUMNS: &str = "id, user_id, schedule_id, seat_ids, amount, expires_at, starts_at, \
                       created_at, updated_at, facts";

fn from_row(r: &Row) -> anyhow::Result<Reservation> {
    let facts: Facts = serde_json::from_str(&r.get::<String>("facts")?)?;
    let (status, reason) = facts.status();
    Ok(Reservation {
        id: r.parse("id")?,
        user_id: r.parse("user_id")?,
        schedule_id: r.parse("schedule_id")?,
        seat_ids: serde_json::from_str(&r.get::<String>("seat_ids")?)?,
        amount: r.get("amount")?,
        status,
        reason,
        expires_at: from_millis(r.get("expires_at")?),
        starts_at: r.get::<Option<i64>>("starts_at")?.map(from_millis),
        created_at: from_millis(r.get("created_at")?),
        updated_at: from_millis(r.get("updated_at")?),
        facts,
    })
}

/// The kind of record a reservation's statements are about ([`nats::db::Statement::record`]):
/// each reads or writes its one row.
const RESERVATION: &str = "reservations";

/// Creates the reservation from its hold; a repeat changes nothing. A write sent later.
pub async fn insert_from_hold(
    sql: &mut impl Sql,
    held: &SeatHeld,
    now_ms: i64,
) -> anyhow::Result<()> {
    sql.sql(
        "INSERT INTO reservations (id, user_id, schedule_id, seat_ids, amount, status, reason, expires_at, starts_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8, $9, $9) ON CONFLICT DO NOTHING",
    )
    .bind(held.reservation_id)
    .bind(&held.user_id)
    .bind(held.schedule_id)
    .bind(serde_json::to_string(&held.seat_ids)?)
    .bind(held.amount)
    .bind(Status::AwaitingPayment.as_str())
    .bind(to_millis(held.expires_at))
    .bind(held.starts_at.map(to_millis))
    .bind(now_ms)
    .record(RESERVATION, held.reservation_id)
    .execute_later()
    .await
}

/// The reservation, locked for the rest of the unit of work (its facts are read, then written);
/// read ahead by the batch, if it was ([`read_ahead`]).
pub async fn get(w: &mut Work, id: ReservationId) -> anyhow::Result<Option<Reservation>> {
    if let Some(row) = w.take_read_ahead(RESERVATION, &id.to_string()) {
        return from_row(&row).map(Some);
    }
    w.sql_built(format!("SELECT {COLUMNS} FROM reservations WHERE id = $1"))
        .bind(id)
        .for_update()
        .record(RESERVATION, id)
        .fetch_optional()
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Reads the reservations `ids` ahead, locked as [`get`] locks each, in one statement (in the
/// order of their ids, as replicas' batches then take the locks in one order), for a batch's
/// units to take ([`nats::unit_of_work::Work::keep_read_ahead`]). One id alone is left to
/// [`get`]: a statement either way.
pub async fn read_ahead(w: &mut Work, ids: &mut Vec<ReservationId>) -> anyhow::Result<()> {
    ids.sort_unstable();
    ids.dedup();
    if ids.len() < 2 {
        return Ok(());
    }
    // `IN` lists of a power of two: a few shapes only. Planned each time: a plan kept from
    // the first batches, when the table was small, scans it whole.
    for chunk in ids.chunks(256) {
        let rows = w
            .sql_built(format!(
                "SELECT {COLUMNS} FROM reservations WHERE id IN ({}) ORDER BY id",
                placeholders(1, chunk.len().next_power_of_two())
            ))
            .bind_all(padded_to_power_of_two(chunk))
            .for_update()
            .planned_each_time()
            .fetch_all()
            .await?;
        for row in rows {
            let id: String = row.get("id")?;
            w.keep_read_ahead(RESERVATION, id, row);
        }
    }
    Ok(())
}

/// Whether reservation `id` is here (anyone's).
pub async fn exists(sql: &mut impl Sql, id: ReservationId) -> anyhow::Result<bool> {
    Ok(sql
        .sql("SELECT 1 AS found FROM reservations WHERE id = $1")
        .bind(id)
        .fetch_optional()
        .await?
        .is_some())
}

pub async fn get_for_user(
    sql: &mut impl Sql,
    id: ReservationId,
    user: &UserId,
) -> anyhow::Result<Option<Reservation>> {
    sql.sql_built(format!(
        "SELECT {COLUMNS} FROM reservations WHERE id = $1 AND user_id = $2"
    ))
    .bind(id)
    .bind(user)
    .fetch_optional()
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}

pub async fn list_for_user(
    sql: &mut impl Sql,
    user: &UserId,
    limit: i64,
    offset: i64,
) -> anyhow::Result<Vec<Reservation>> {
    sql.sql_built(format!(
        "SELECT {COLUMNS} FROM reservations WHERE user_id = $1
         ORDER BY created_at DESC, id LIMIT $2 OFFSET $3"
    ))
    .bind(user)
    .bind(limit)
    .bind(offset)
    .fetch_all()
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// Stores the facts and the status and reason they amount to (a write sent later). A saga that ends here (its
/// status was `before`) is counted in `saga_outcomes_total` once the commit is through.
pub async fn save_facts(
    w: &mut Work,
    id: ReservationId,
    facts: &Facts,
    before: Status,
) -> anyhow::Result<()> {
    let (status, reason) = facts.status();
    let now_ms = w.now_ms();
    w.sql(
        "UPDATE reservations SET facts = $1, status = $2, reason = $3, updated_at = $4 WHERE id = $5",
    )
    .bind(serde_json::to_string(facts)?)
    .bind(status.as_str())
    .bind(reason.map(FailureReason::as_str))
    .bind(now_ms)
    .bind(id)
    .record(RESERVATION, id)
    .execute_later()
    .await?;
    if status.is_terminal() && !before.is_terminal() {
        w.after_commit(move || {
            metrics::counter!("saga_outcomes_total", "status" => status.as_str()).increment(1);
        });
    }
    Ok(())
}

/// One reservation as the audit reads it.
#[derive(Debug, Clone)]
pub struct Summary {
    pub id: ReservationId,
    pub status: Status,
    pub amount: Points,
    /// When its status last changed (ms since the epoch).
    pub updated_at_ms: i64,
}

/// Every reservation's status.
pub async fn summaries(sql: &mut impl Sql) -> anyhow::Result<Vec<Summary>> {
    sql.sql("SELECT id, status, amount, updated_at FROM reservations")
        .fetch_all()
        .await?
        .iter()
        .map(|r| {
            Ok(Summary {
                id: r.parse("id")?,
                status: r.parse("status")?,
                amount: r.get("amount")?,
                updated_at_ms: r.get("updated_at")?,
            })
        })
        .collect()
}

/// How many sagas have ended, and when the last one changed.
pub async fn ended(sql: &mut impl Sql) -> anyhow::Result<(i64, i64)> {
    let [a, b, c, d] = Status::TERMINAL;
    let row = sql
        .sql(
            "SELECT COUNT(*) AS n, COALESCE(MAX(updated_at), 0) AS last FROM reservations
             WHERE status IN ($1, $2, $3, $4)",
        )
        .bind(a.as_str())
        .bind(b.as_str())
        .bind(c.as_str())
        .bind(d.as_str())
        .fetch_one()
        .await?;
    Ok((row.get("n")?, row.get("last")?))
}

/// A saga not terminal, started before some time.
#[derive(Debug, Clone)]
pub struct Unfinished {
    pub id: ReservationId,
    pub status: Status,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// The sagas not terminal that started before `created_before_ms`, oldest first (at most
/// `limit`).
pub async fn unfinished(
    sql: &mut impl Sql,
    created_before_ms: i64,
    limit: i64,
) -> anyhow::Result<Vec<Unfinished>> {
    let [a, b, c, d] = Status::TERMINAL;
    sql.sql(
        "SELECT id, status, created_at, updated_at FROM reservations
         WHERE status NOT IN ($1, $2, $3, $4) AND created_at < $5
         ORDER BY created_at, id LIMIT $6",
    )
    .bind(a.as_str())
    .bind(b.as_str())
    .bind(c.as_str())
    .bind(d.as_str())
    .bind(created_before_ms)
    .bind(limit)
    .fetch_all()
    .await?
    .iter()
    .map(|r| {
        Ok(Unfinished {
            id: r.parse("id")?,
            status: r.parse("status")?,
            created_at_ms: r.get("created_at")?,
            updated_at_ms: r.get("updated_at")?,
        })
    })
    .collect()
}

/// How many sagas not terminal started before `created_before_ms`.
pub async fn count_unfinished(sql: &mut impl Sql, created_before_ms: i64) -> anyhow::Result<i64> {
    let [a, b, c, d] = Status::TERMINAL;
    let row = sql
        .sql(
            "SELECT COUNT(*) AS n FROM reservations
             WHERE status NOT IN ($1, $2, $3, $4) AND created_at < $5",
        )
        .bind(a.as_str())
        .bind(b.as_str())
        .bind(c.as_str())
        .bind(d.as_str())
        .bind(created_before_ms)
        .fetch_one()
        .await?;
    row.get("n")
}
