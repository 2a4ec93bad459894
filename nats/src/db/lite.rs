//! lite: SQLite through rusqlite, in the calling thread. Each statement runs where its caller
//! runs, with a prepared-statement cache, instead of a channel round trip to a connection thread
//! per statement (sqlx's SQLite driver): that hand-off, not the SQL, was most of a saga's CPU.
//! The write connection lives on the unit of work's database thread; reads take a connection
//! from a small pool and never wait for the writer (WAL).

use anyhow::Context as _;
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// How much a committed SQLite transaction survives. In WAL mode, `Normal` survives a process
/// crash (kill -9) but may lose the last transactions on power loss; `Full` syncs every commit
/// and survives power loss, at about 60 % of the write rate (docs/operations.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    #[default]
    Normal,
    Full,
}

impl std::str::FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "NORMAL" => Ok(Durability::Normal),
            "FULL" => Ok(Durability::Full),
            _ => Err(format!("expected NORMAL or FULL, got {s:?}")),
        }
    }
}

/// Idle read connections kept for the next reader.
const IDLE_READERS: usize = 8;
/// Prepared statements kept per connection: more than the stores have distinct texts.
const STATEMENT_CACHE: usize = 256;

/// Where a service's SQLite database is and how its connections are opened.
#[derive(Clone, Debug)]
pub(crate) struct Lite {
    path: PathBuf,
    durability: Durability,
    idle: Arc<Mutex<Vec<Connection>>>,
}

impl Lite {
    /// The file of a `sqlite:` URL (its folder already made); an in-memory database is refused,
    /// since every connection would see a database of its own.
    pub(crate) fn new(url: &str, durability: Durability) -> anyhow::Result<Lite> {
        let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
        let path = rest.split_once('?').map_or(rest, |(path, _)| path);
        anyhow::ensure!(
            !path.is_empty() && !path.starts_with(":memory:"),
            "DATABASE_URL: an in-memory SQLite database is not supported (readers and the writer need one file); give a file path"
        );
        Ok(Lite {
            path: path.into(),
            durability,
            idle: Arc::default(),
        })
    }

    /// Opens a connection with the pragmas every connection needs: WAL, a busy timeout, foreign
    /// keys, the durability; a read connection is query-only, so no write bypasses the unit of
    /// work. Temporary data stays in memory: each unit of a group runs in a savepoint, whose
    /// journal of the pages it changes would otherwise be written to a temporary file (that
    /// file's writes were a sixth of seat-svc's CPU).
    pub(crate) fn open(&self, read_only: bool) -> anyhow::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(&self.path, flags)
            .with_context(|| format!("open SQLite database {}", self.path.display()))?;
        let synchronous = match self.durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        };
        let query_only = if read_only { "ON" } else { "OFF" };
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = {synchronous};
             PRAGMA busy_timeout = 10000;
             PRAGMA foreign_keys = ON;
             PRAGMA temp_store = MEMORY;
             PRAGMA query_only = {query_only};"
        ))
        .with_context(|| format!("set up SQLite database {}", self.path.display()))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }

    /// A read connection: an idle one, or a new one.
    pub(crate) fn reader(&self) -> anyhow::Result<Reader> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.open(true).context("a read connection")?,
        };
        Ok(Reader {
            conn: Some(conn),
            idle: self.idle.clone(),
        })
    }
}

/// A read connection that goes back to the pool when dropped.
pub(crate) struct Reader {
    conn: Option<Connection>,
    idle: Arc<Mutex<Vec<Connection>>>,
}

impl Reader {
    pub(crate) fn conn(&mut self) -> &mut Connection {
        self.conn
            .as_mut()
            .expect("a reader holds its connection until dropped")
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // A connection left inside a transaction (it never should be) is not reused.
        if idle.len() < IDLE_READERS && conn.is_autocommit() {
            idle.push(conn);
        }
    }
}

/// The columns of a result and one row's values, as read from SQLite.
#[derive(Debug)]
pub(crate) struct LiteRow {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

impl LiteRow {
    pub(crate) fn new(columns: Arc<[String]>, values: Vec<Value>) -> LiteRow {
        LiteRow { columns, values }
    }

    pub(crate) fn value(&self, column: &str) -> anyhow::Result<&Value> {
        self.columns
            .iter()
            .position(|c| c == column)
            .map(|i| &self.values[i])
            .with_context(|| format!("no column {column} in the result"))
    }
}

/// `$1, $2, …` as SQLite's numbered `?1, ?2, …`: SQLite reads `$1` as a parameter *named*
/// "$1" and numbers named parameters by first appearance, so `$2 … $1` would bind the wrong
/// values. The stores' text holds `$` only in placeholders.
pub(crate) fn numbered(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::numbered;

    #[test]
    fn placeholders_become_numbered_parameters() {
        assert_eq!(
            numbered("UPDATE t SET a = $2 WHERE b = $1 AND c = $10"),
            "UPDATE t SET a = ?2 WHERE b = ?1 AND c = ?10"
        );
        assert_eq!(numbered("SELECT '$' || x"), "SELECT '$' || x");
    }
}
