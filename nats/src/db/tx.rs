//! tx: a write transaction on either backend, begun and committed by the unit of work alone,
//! with the savepoints that let one unit of a group roll back without the others.

use super::sql::{Conn, Statement};
use anyhow::Context as _;
use std::borrow::Cow;
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
    Sqlx(sqlx::Transaction<'static, sqlx::Any>),
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
            Tx::Sqlx(tx) => Statement::new(Conn::Sqlx(tx), text),
        }
    }

    /// Marks where the next unit of a group starts.
    pub(crate) async fn savepoint(&mut self) -> anyhow::Result<()> {
        self.statement(Cow::Borrowed("SAVEPOINT unit"))
            .execute()
            .await
            .map(drop)
    }

    /// Undoes what the unit since its savepoint did, unless it is to be kept (`keep`). A kept
    /// unit's savepoint is not released: the next unit's, of the same name, hides it (both
    /// databases roll back to the latest of a name), and the commit keeps them all. Releasing
    /// would cost PostgreSQL a round trip per unit.
    pub(crate) async fn end_savepoint(&mut self, keep: bool) -> anyhow::Result<()> {
        if !keep {
            self.statement(Cow::Borrowed("ROLLBACK TO SAVEPOINT unit"))
                .execute()
                .await?;
        }
        Ok(())
    }

    pub(crate) async fn commit(self) -> anyhow::Result<()> {
        match self {
            // If the commit fails, dropping the transaction rolls it back.
            Tx::Lite(tx) => tx.conn.execute_batch("COMMIT").context("commit"),
            Tx::Sqlx(tx) => tx.commit().await.context("commit"),
        }
    }
}
