//! sql: the small SQL API every store is written in — a statement with bound arguments, run on
//! a unit of work or a read connection, and rows read by column name. It hides the driver, so
//! stores are written once: SQLite runs through rusqlite in the calling thread ([`super::lite`]),
//! PostgreSQL through sqlx's natively async driver.

pub use super::arg::{Arg, ToArg};
use super::arg::{failed, query};
use super::later::{self, Record, Waiting};
use super::lite::{self, LiteRow};
use anyhow::Context as _;
use contracts::Points;
use futures::{StreamExt as _, TryStreamExt as _};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row as _};
use std::borrow::Cow;
use std::fmt::Display;
use std::str::FromStr;

/// Which database a statement runs on: the SQL API hides the differences.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Something statements run on: a unit of work (writes) or a read connection.
pub trait Sql: Send {
    /// A statement of fixed text with `$1, $2, …` placeholders; bind the values.
    fn sql(&mut self, text: &'static str) -> Statement<'_> {
        self.statement(Cow::Borrowed(text))
    }

    /// A statement whose text was put together at run time (e.g. an `IN` list of placeholders
    /// from [`placeholders`]): only fixed text and placeholders may go into it, never a value.
    fn sql_built(&mut self, text: String) -> Statement<'_> {
        self.statement(Cow::Owned(text))
    }

    #[doc(hidden)]
    fn statement(&mut self, text: Cow<'static, str>) -> Statement<'_>;
}

/// A table of the runtime's own whose rows are forgotten after a while (handled ids, stored
/// answers): its name, its key's columns, and the column saying when a row was written.
pub struct Retained {
    pub table: &'static str,
    pub key: &'static str,
    pub written_at: &'static str,
}

impl Retained {
    /// Forgets up to `limit` rows written before `cutoff_ms`; returns how many.
    pub async fn sweep(
        &self,
        sql: &mut impl Sql,
        cutoff_ms: i64,
        limit: i64,
    ) -> anyhow::Result<u64> {
        let Retained {
            table,
            key,
            written_at,
        } = self;
        // Fixed names of our own; the values are bound.
        sql.sql_built(format!(
            "DELETE FROM {table} WHERE ({key}) IN (
                 SELECT {key} FROM {table} WHERE {written_at} < $1 LIMIT $2)"
        ))
        .bind(cutoff_ms)
        .bind(limit)
        .execute()
        .await
    }
}

/// `$first, $first+1, …` for `n` values: an `IN` list of bind parameters.
pub fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `values` (not empty) with the last repeated up to the next power of two: a list of bind
/// parameters of a few lengths only, so a statement has a few shapes (each one a statement
/// PostgreSQL prepares and each connection caches). Only for lists where a repeat changes
/// nothing (`IN`, or rows that conflict and are skipped).
pub fn padded_to_power_of_two<T: Clone>(values: &[T]) -> impl Iterator<Item = T> + '_ {
    let fill = values.len().next_power_of_two() - values.len();
    values
        .iter()
        .cloned()
        .chain(values.last().cloned().into_iter().cycle().take(fill))
}

/// The connection a statement runs on; on PostgreSQL in a transaction, with the writes it
/// sends later ([`Statement::execute_later`]).
pub(crate) enum Conn<'c> {
    Lite(&'c mut rusqlite::Connection),
    Sqlx(&'c mut AnyConnection, Option<&'c mut Waiting>),
}

/// A statement and its arguments, ready to run.
pub struct Statement<'c> {
    conn: Conn<'c>,
    text: Cow<'static, str>,
    args: Vec<Arg>,
    record: Option<Record>,
    /// Planned for its values each time it runs ([`Statement::planned_each_time`]).
    unprepared: bool,
}

impl<'c> Statement<'c> {
    pub(crate) fn new(conn: Conn<'c>, text: Cow<'static, str>) -> Self {
        Statement {
            conn,
            text,
            args: Vec::new(),
            record: None,
            unprepared: false,
        }
    }

    /// Has PostgreSQL plan this read for its values and the table as it is each time it runs,
    /// instead of keeping a plan per connection: a list of keys read while the table was small
    /// kept a plan that scans the whole table (4–8 ms a read in a sale instead of 0.1). Costs a
    /// round trip more (describing it) and the planning. SQLite plans as it always does.
    pub fn planned_each_time(mut self) -> Self {
        self.unprepared = true;
        self
    }

    fn backend(&self) -> Backend {
        match self.conn {
            Conn::Lite(_) => Backend::Sqlite,
            Conn::Sqlx(..) => Backend::Postgres,
        }
    }

    pub fn bind(mut self, value: impl ToArg) -> Self {
        self.args.push(value.to_arg());
        self
    }

    pub fn bind_all<T: ToArg>(mut self, values: impl IntoIterator<Item = T>) -> Self {
        self.args.extend(values.into_iter().map(|v| v.to_arg()));
        self
    }

    /// Locks the rows a `SELECT` reads until the unit of work ends, where the backend needs it:
    /// on PostgreSQL (`FOR UPDATE`) replicas' transactions wait for each other instead of both
    /// acting on the same state; SQLite's write transactions are serial already.
    pub fn for_update(mut self) -> Self {
        if self.backend() == Backend::Postgres {
            self.text = Cow::Owned(format!("{} FOR UPDATE", self.text));
        }
        self
    }

    /// Takes the row locks of this `SELECT` for the rest of the unit of work, and nothing else:
    /// on PostgreSQL (`FOR UPDATE`) replicas take turns on those rows; on SQLite, whose write
    /// transactions are serial already, it does not even run.
    pub async fn lock(self) -> anyhow::Result<()> {
        if self.backend() == Backend::Postgres {
            self.for_update().fetch_all().await?;
        }
        Ok(())
    }

    /// Says that the statement reads or writes one record and nothing else: the row of `kind`
    /// (a table) whose key is `key`, or that row and the rows that belong to it. On PostgreSQL
    /// the writes waiting ([`Statement::execute_later`]) of other records then go with it,
    /// a read too, and inside a consumer's batch a unit's writes of a record may wait past its
    /// end for the next unit's statement. A statement that says so and touches another row
    /// would miss a write waiting for it: say it only of statements about that row.
    pub fn record(mut self, kind: &'static str, key: impl Display) -> Self {
        self.record = Some(Record(kind, key.to_string()));
        self
    }

    /// Runs this write with the unit of work's next write, before its next read, or at the end
    /// of the unit: on PostgreSQL the writes sent later go as one statement (each a round trip
    /// less). Only for an `INSERT`, `UPDATE` or `DELETE` whose row count the unit does not
    /// need, of rows the unit's next write and the other writes sent with it do not touch, and
    /// that the next write does not read: they run as parts of one statement, which do not see
    /// each other's changes. A read runs after them. Its failure fails the unit. Elsewhere
    /// (SQLite, a read connection) it runs now.
    pub async fn execute_later(self) -> anyhow::Result<()> {
        match self.conn {
            Conn::Sqlx(conn, Some(waiting)) => {
                waiting.push(conn, self.text, self.args, self.record).await
            }
            _ => self.execute().await.map(drop),
        }
    }

    /// Runs it; the number of rows changed.
    pub async fn execute(self) -> anyhow::Result<u64> {
        self.run(
            |conn, text, args| Ok(lite::execute(conn, text, args)?),
            async |conn, sent, args| Ok(query(sent, args).execute(conn).await?.rows_affected()),
            |rows| *rows > 0,
        )
        .await
    }

    /// Runs it on its connection: in-process on SQLite (`lite`), else through sqlx (`sqlx`) with
    /// the writes waiting that may go with it ([`later::run`]); a failure names the statement.
    /// (`touched`: whether its result says it touched rows, on PostgreSQL: `Tx::changes`;
    /// SQLite counts changes itself.)
    async fn run<T>(
        self,
        lite: impl FnOnce(&mut rusqlite::Connection, &str, &[Arg]) -> anyhow::Result<T>,
        sqlx: impl AsyncFnOnce(&mut AnyConnection, &str, Vec<Arg>) -> anyhow::Result<T>,
        touched: impl FnOnce(&T) -> bool,
    ) -> anyhow::Result<T> {
        let Statement {
            conn,
            text,
            args,
            record,
            ..
        } = self;
        match conn {
            Conn::Lite(conn) => lite(conn, &text, &args),
            Conn::Sqlx(conn, waiting) => {
                later::run(
                    conn,
                    waiting,
                    text.clone(),
                    args,
                    record.as_ref(),
                    sqlx,
                    touched,
                )
                .await
            }
        }
        .with_context(|| failed(&text))
    }

    pub async fn fetch_all(self) -> anyhow::Result<Vec<Row>> {
        self.fetch(usize::MAX).await
    }

    pub async fn fetch_optional(self) -> anyhow::Result<Option<Row>> {
        Ok(self.fetch(1).await?.pop())
    }

    pub async fn fetch_one(self) -> anyhow::Result<Row> {
        let text = self.text.clone();
        self.fetch_optional()
            .await?
            .with_context(|| format!("{} returned no row", failed(&text)))
    }

    async fn fetch(self, limit: usize) -> anyhow::Result<Vec<Row>> {
        let prepared = !self.unprepared;
        self.run(
            |conn, text, args| {
                let rows = lite::fetch(conn, text, args, limit)?;
                Ok(rows.into_iter().map(|row| Row(RowOf::Lite(row))).collect())
            },
            async |conn, sent, args| {
                let rows = query(sent, args)
                    .persistent(prepared)
                    .fetch(conn)
                    .take(limit);
                Ok(rows
                    .map_ok(|row| Row(RowOf::Sqlx(row)))
                    .try_collect()
                    .await?)
            },
            |rows: &Vec<Row>| !rows.is_empty(),
        )
        .await
    }
}

/// One row of a result, read by column name.
pub struct Row(RowOf);

/// A row as each driver gives it.
enum RowOf {
    Lite(LiteRow),
    Sqlx(AnyRow),
}

impl Row {
    pub fn get<T: Decode>(&self, column: &str) -> anyhow::Result<T> {
        T::decode(self, column).with_context(|| format!("read column {column}"))
    }

    /// A text column as any type that parses from text (ids, statuses, reasons).
    pub fn parse<T: FromStr>(&self, column: &str) -> anyhow::Result<T>
    where
        T::Err: Display,
    {
        let text: String = self.get(column)?;
        text.parse()
            .map_err(|e| anyhow::anyhow!("column {column}: {text:?}: {e}"))
    }

    /// A nullable text column, parsed when present.
    pub fn parse_opt<T: FromStr>(&self, column: &str) -> anyhow::Result<Option<T>>
    where
        T::Err: Display,
    {
        let text: Option<String> = self.get(column)?;
        text.map(|t| {
            t.parse()
                .map_err(|e| anyhow::anyhow!("column {column}: {t:?}: {e}"))
        })
        .transpose()
    }
}

/// A Rust value a column can be read as.
pub trait Decode: Sized {
    #[doc(hidden)]
    fn decode(row: &Row, column: &str) -> anyhow::Result<Self>;
}

/// Decodes through each driver's own conversion.
macro_rules! decode_via_drivers {
    ($($t:ty),*) => {$(
        impl Decode for $t {
            fn decode(row: &Row, column: &str) -> anyhow::Result<Self> {
                Ok(match &row.0 {
                    RowOf::Lite(row) => rusqlite::types::FromSql::column_result(
                        rusqlite::types::ValueRef::from(row.value(column)?),
                    )?,
                    RowOf::Sqlx(row) => row.try_get::<$t, _>(column)?,
                })
            }
        }
    )*};
}
decode_via_drivers!(i64, String, Option<i64>, Option<String>);

impl Decode for bool {
    fn decode(row: &Row, column: &str) -> anyhow::Result<Self> {
        Ok(row.get::<i64>(column)? != 0)
    }
}

impl Decode for Points {
    fn decode(row: &Row, column: &str) -> anyhow::Result<Self> {
        Ok(Points::new(row.get::<i64>(column)?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::padded_to_power_of_two;

    #[test]
    fn a_list_is_padded_with_its_last_value_to_the_next_power_of_two() {
        let padded = |v: &[i64]| padded_to_power_of_two(v).collect::<Vec<_>>();
        assert_eq!(padded(&[1, 2, 3]), [1, 2, 3, 3]);
        assert_eq!(padded(&[1, 2, 3, 4, 5]), [1, 2, 3, 4, 5, 5, 5, 5]);
        assert_eq!(padded(&[7]), [7]);
        assert_eq!(padded(&[1, 2]), [1, 2]);
    }
}
