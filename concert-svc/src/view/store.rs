//! store: the availability view in SQL — one row per seat with the status it shows and the
//! stream position that set it — and the table a rebuild is written to before it is compared.

use super::domain::{SeatStatus, Shown, ViewSeat};
use contracts::{ScheduleId, SeatId};
use nats::db::{Row, Sql, placeholders};
use std::collections::BTreeMap;

/// Every seat of the view, with its schedule.
pub type View = BTreeMap<SeatId, (ScheduleId, ViewSeat)>;

/// Rows per INSERT when a rebuilt view is written (5 parameters a row, well under every
/// backend's limit).
const INSERT_ROWS: usize = 200;

fn view_seat(r: &Row) -> anyhow::Result<ViewSeat> {
    Ok(ViewSeat {
        status: r.parse("status")?,
        reservation: r.parse_opt("reservation_id")?,
        version: r.get::<i64>("version")? as u64,
    })
}

/// New seats, shown available.
pub async fn add(sql: &mut impl Sql, schedule: ScheduleId, seats: &[SeatId]) -> anyhow::Result<()> {
    for seat in seats {
        sql.sql(
            "INSERT INTO seat_view (seat_id, schedule_id, status, reservation_id, version)
             VALUES ($1, $2, $3, NULL, 0)",
        )
        .bind(seat)
        .bind(schedule)
        .bind(SeatStatus::Available.as_str())
        .execute()
        .await?;
    }
    Ok(())
}

/// Shows `seat` as `next` if `next` is newer than what its row shows: one write, the condition
/// [`super::domain::newer`] in SQL, sent later ([`nats::db::Statement::execute_later`]): on
/// PostgreSQL a batch's view changes go as one statement. What it changed is not read, so a
/// seat this catalog never had goes unnoticed here (a rebuild tells it).
pub async fn show(sql: &mut impl Sql, seat: SeatId, next: &ViewSeat) -> anyhow::Result<Shown> {
    sql.sql(
        "UPDATE seat_view SET status = $1, reservation_id = $2, version = $3
         WHERE seat_id = $4 AND ($3 > version OR ($3 = 0 AND version = 0))",
    )
    .bind(next.status.as_str())
    .bind(next.reservation)
    .bind(next.version as i64)
    .bind(seat)
    .record(SEAT_VIEW, seat)
    .execute_later()
    .await?;
    Ok(Shown::Sent)
}

/// The kind of record [`show`] writes: one seat's row of the view.
const SEAT_VIEW: &str = "seat_view";

/// The whole live view.
pub async fn all(sql: &mut impl Sql) -> anyhow::Result<View> {
    let rows = sql
        .sql("SELECT seat_id, schedule_id, status, reservation_id, version FROM seat_view")
        .fetch_all()
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.parse("seat_id")?,
                (r.parse("schedule_id")?, view_seat(r)?),
            ))
        })
        .collect()
}

/// Replaces the rebuild table with `view`.
pub async fn write_rebuilt(sql: &mut impl Sql, view: &View) -> anyhow::Result<()> {
    sql.sql("DELETE FROM seat_view_rebuild").execute().await?;
    // Many rows per INSERT: each statement is a round trip to the database, and a venue has
    // thousands of seats.
    let rows: Vec<_> = view.iter().collect();
    for chunk in rows.chunks(INSERT_ROWS) {
        let values = (0..chunk.len())
            .map(|i| format!("({})", placeholders(i * 5 + 1, 5)))
            .collect::<Vec<_>>()
            .join(", ");
        let mut insert = sql.sql_built(format!(
            "INSERT INTO seat_view_rebuild (seat_id, schedule_id, status, reservation_id, version) \
             VALUES {values}"
        ));
        for (id, (schedule, seat)) in chunk {
            insert = insert
                .bind(*id)
                .bind(*schedule)
                .bind(seat.status.as_str())
                .bind(seat.reservation)
                .bind(seat.version as i64);
        }
        insert.execute().await?;
    }
    Ok(())
}

/// Sets the live row of each seat of `view` to the rebuilt one, unless the live row is newer
/// (changed after the replay ended).
pub async fn merge(sql: &mut impl Sql, view: &View) -> anyhow::Result<()> {
    for (id, (_, seat)) in view {
        sql.sql(
            "UPDATE seat_view SET status = $1, reservation_id = $2, version = $3
             WHERE seat_id = $4 AND version <= $3",
        )
        .bind(seat.status.as_str())
        .bind(seat.reservation)
        .bind(seat.version as i64)
        .bind(*id)
        .execute()
        .await?;
    }
    Ok(())
}
