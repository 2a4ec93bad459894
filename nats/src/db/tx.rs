//! tx: a write transaction on either backend, begun and committed by the unit of work alone,
//! with the savepoints that let one unit of a group roll back without the others.

use super::later::Waiting;
use super::sql::{Conn, Statement};
use anyhow::Context as _;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Executor as _};
use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedMutexGuard;

/// A failure that says the database was unavailable, as told to each unit of a group whose
/// commit failed (one error, many callers): [`super::unavailable`] recognises it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

/// A write transaction.
pub enum Tx {
    /// SQLite's write connection, inside `BEGIN IMMEDIATE`; rolled back if dropped.
    Lite(LiteTx),
    Pg(PgTx),
}

/// SQLite's write connection in a transaction.
pub struct LiteTx {
    conn: OwnedMutexGuard<rusqlite::Connection>,
}

impl Drop for LiteTx {
    fn drop(&mut self) {
        // A transaction that did not commit keeps nothing, and the connection is ready for the
        // next one.
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// PostgreSQL's write connections, kept between transactions rather than given back to the
/// pool: the pool would ping each one when it is taken and again when it is given back, two
/// round trips per transaction, and every commit begins the next transaction in the same round
/// trip (`COMMIT; BEGIN`). A transaction that has begun holds no snapshot and no locks until
/// its first statement. Each is opened by the pool where its committer runs (the pool keeps no
/// other: `Db::begin`), so the server's answers wake the committer's own thread.
#[derive(Clone, Debug, Default)]
pub(crate) struct Writers(Arc<Mutex<Vec<Writer>>>);

/// A kept write connection and where it stands.
#[derive(Debug)]
struct Writer {
    conn: PoolConnection<Any>,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Outside a transaction.
    Idle,
    /// A transaction has begun, with nothing in it yet.
    Begun,
    /// In a transaction that did not commit: rolled back before the next begins.
    Dirty,
}

impl Writers {
    /// A write transaction on a kept connection, or on a new one from `pool`.
    pub(crate) async fn begin(&self, pool: &AnyPool) -> anyhow::Result<Tx> {
        let kept = self.0.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut writer = match kept {
            Some(writer) => writer,
            None => Writer {
                conn: pool.acquire().await.context("a write connection")?,
                state: State::Idle,
            },
        };
        let begin = match writer.state {
            State::Begun => None,
            State::Idle => Some("BEGIN"),
            State::Dirty => Some("ROLLBACK; BEGIN"),
        };
        if let Some(begin) = begin
            && let Err(e) = writer.conn.execute(sqlx::raw_sql(begin)).await
        {
            // Its state is unknown: it is closed, and the next transaction takes a new one.
            writer.conn.close_on_drop();
            return Err(anyhow::Error::from(e).context("begin a transaction"));
        }
        writer.state = State::Dirty;
        Ok(Tx::Pg(PgTx {
            writer: Some(writer),
            writers: self.clone(),
            waiting: Waiting::default(),
            start: Start::Empty,
        }))
    }

    fn keep(&self, writer: Writer) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(writer);
    }
}

/// A PostgreSQL write transaction on a kept connection.
pub struct PgTx {
    /// `None` once committed.
    writer: Option<Writer>,
    writers: Writers,
    /// Writes that go with a later statement: the running unit's, and in a consumer's batch
    /// those of the units before it that may wait on.
    waiting: Waiting,
    start: Start,
}

/// Whether the transaction's start serves as the first unit's savepoint: nothing before it
/// is to be kept, so undoing it is beginning again (`ROLLBACK; BEGIN`, one round trip as
/// `ROLLBACK TO SAVEPOINT` is), and the `SAVEPOINT` round trip is saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// Nothing has run in it yet.
    Empty,
    /// Its first unit's savepoint is its start, and that unit is the running one.
    Savepoint,
    /// Savepoints are taken.
    Used,
}

impl Drop for PgTx {
    fn drop(&mut self) {
        // Not committed: it keeps nothing; the next transaction on this connection rolls it
        // back first.
        if let Some(writer) = self.writer.take() {
            self.writers.keep(writer);
        }
    }
}

impl PgTx {
    /// The connection, and the writes waiting.
    fn parts(&mut self) -> (&mut AnyConnection, &mut Waiting) {
        let writer = self
            .writer
            .as_mut()
            .expect("a transaction's connection is there until it commits");
        (&mut writer.conn, &mut self.waiting)
    }

    fn conn(&mut self) -> Conn<'_> {
        if self.start == Start::Empty {
            self.start = Start::Used;
        }
        let (conn, waiting) = self.parts();
        Conn::Sqlx(conn, Some(waiting))
    }

    /// Undoes everything: the first unit, whose savepoint is the start, did not succeed.
    async fn begin_again(&mut self) -> anyhow::Result<()> {
        self.waiting.forget_all();
        let (conn, _) = self.parts();
        conn.execute(sqlx::raw_sql("ROLLBACK; BEGIN"))
            .await
            .context("roll back to the transaction's start")?;
        Ok(())
    }

    async fn commit(mut self) -> anyhow::Result<()> {
        // Nothing waits past the commit (a batch sends its units' writes at its end).
        let (conn, waiting) = self.parts();
        waiting.flush(conn).await?;
        let Some(mut writer) = self.writer.take() else {
            anyhow::bail!("the transaction has committed already");
        };
        match writer.conn.execute(sqlx::raw_sql("COMMIT; BEGIN")).await {
            Ok(_) => {
                writer.state = State::Begun;
                self.writers.keep(writer);
                Ok(())
            }
            Err(e) => {
                // Whether it committed is unknown to us, as to any client whose connection
                // broke at the commit; the connection is not used again.
                writer.conn.close_on_drop();
                Err(anyhow::Error::from(e).context("commit"))
            }
        }
    }
}

impl Tx {
    pub(crate) fn lite(conn: OwnedMutexGuard<rusqlite::Connection>) -> anyhow::Result<Tx> {
        if !conn.is_autocommit() {
            // Left open by a rollback that failed: nothing of it is kept.
            conn.execute_batch("ROLLBACK").context("roll back")?;
        }
        conn.execute_batch("BEGIN IMMEDIATE")
            .context("begin a transaction")?;
        Ok(Tx::Lite(LiteTx { conn }))
    }

    pub(crate) fn statement(&mut self, text: Cow<'static, str>) -> Statement<'_> {
        match self {
            Tx::Lite(tx) => Statement::new(Conn::Lite(&mut tx.conn), text),
            Tx::Pg(tx) => Statement::new(tx.conn(), text),
        }
    }

    /// A unit ended well: the writes it sent later ([`Statement::execute_later`]) are sent
    /// now, unless they may wait on ([`Tx::carry`]).
    pub(crate) async fn unit_ended(&mut self) -> anyhow::Result<()> {
        match self {
            Tx::Lite(_) => Ok(()),
            Tx::Pg(tx) => {
                let (conn, waiting) = tx.parts();
                waiting.unit_ended(conn).await
            }
        }
    }

    /// Sends every write waiting: those of the units of a batch that ended.
    pub(crate) async fn flush(&mut self) -> anyhow::Result<()> {
        match self {
            Tx::Lite(_) => Ok(()),
            Tx::Pg(tx) => {
                let (conn, waiting) = tx.parts();
                waiting.flush(conn).await
            }
        }
    }

    /// Forgets the writes waiting: their units are undone, or did not succeed.
    pub(crate) fn forget_later(&mut self) {
        if let Tx::Pg(tx) = self {
            tx.waiting.forget();
        }
    }

    /// Whether the writes of a unit that ends well, each of one record, may wait past its end
    /// for the next unit's statements (a consumer's batch, whose units can run again); and
    /// forgets any earlier doubt ([`Tx::blurred`]).
    pub(crate) fn carry(&mut self, carry: bool) {
        if let Tx::Pg(tx) = self {
            tx.waiting.carry = carry;
            tx.waiting.blurred = false;
        }
    }

    /// Whether a statement that failed carried writes of a unit that had ended: its failure
    /// may be that unit's, not the running one's.
    pub(crate) fn blurred(&self) -> bool {
        matches!(self, Tx::Pg(tx) if tx.waiting.blurred)
    }

    /// A count that moves whenever a statement may have changed rows: equal before and after a
    /// unit, the unit changed nothing (a rejected one then needs nothing undone).
    pub(crate) fn changes(&self) -> u64 {
        match self {
            Tx::Lite(tx) => tx.conn.total_changes(),
            Tx::Pg(tx) => tx.waiting.changes,
        }
    }

    /// Marks where the next unit of a group starts. On PostgreSQL the first unit's is the
    /// transaction's start ([`Start`]): no round trip.
    pub(crate) async fn savepoint(&mut self) -> anyhow::Result<()> {
        if let Tx::Pg(tx) = self {
            match tx.start {
                Start::Empty => {
                    tx.start = Start::Savepoint;
                    return Ok(());
                }
                Start::Savepoint | Start::Used => tx.start = Start::Used,
            }
        }
        self.statement(Cow::Borrowed("SAVEPOINT unit"))
            .execute()
            .await
            .map(drop)
    }

    /// Undoes what the unit since its savepoint did, unless it is to be kept (`keep`). A kept
    /// unit's savepoint is released on SQLite, in-process: savepoints left open nest, every
    /// page written checks each of them, and the journal of the pages they changed (in 1 KiB
    /// chunks) grows until the commit; released, the next unit reuses the chunks just freed. On
    /// PostgreSQL it is not released, which would cost a round trip per unit: the next unit's,
    /// of the same name, hides it (both databases roll back to the latest of a name), and the
    /// commit keeps them all.
    pub(crate) async fn end_savepoint(&mut self, keep: bool) -> anyhow::Result<()> {
        let end = match (keep, &mut *self) {
            (false, Tx::Pg(tx)) if tx.start == Start::Savepoint => return tx.begin_again().await,
            (false, Tx::Pg(tx)) => {
                // What waits is undone with the rest: not sent first, where it might fail.
                tx.waiting.forget_all();
                "ROLLBACK TO SAVEPOINT unit"
            }
            (false, _) => "ROLLBACK TO SAVEPOINT unit",
            (true, Tx::Lite(_)) => "RELEASE SAVEPOINT unit",
            (true, Tx::Pg(_)) => return Ok(()),
        };
        self.statement(Cow::Borrowed(end)).execute().await.map(drop)
    }

    pub(crate) async fn commit(self) -> anyhow::Result<()> {
        match self {
            // If the commit fails, dropping the transaction rolls it back.
            Tx::Lite(tx) => tx.conn.execute_batch("COMMIT").context("commit"),
            Tx::Pg(tx) => tx.commit().await,
        }
    }
}
