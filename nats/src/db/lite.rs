//! lite: SQLite through rusqlite, in the calling thread. Each statement runs where its caller
//! runs, with a prepared-statement cache, instead of a channel round trip to a connection thread
//! per statement (sqlx's SQLite driver): that hand-off, not the SQL, was most of a saga's CPU.
//! The write connection lives on the unit of work's database thread; reads take a connection
//! from a small pool and never wait for the writer (WAL).

use super::arg::Arg;
use anyhow::Context as _;
use rusqlite::config::DbConfig;
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
/// WAL pages after which a commit copies them back into the database file (SQLite's default:
/// 1,000). A page that many commits rewrite (the outbox's tail, an index's leaf) is copied once
/// per checkpoint: fewer checkpoints copy less (the checkpoint was a third of a commit's CPU).
/// The WAL grows to some 40 MB before it is reused.
const WAL_CHECKPOINT_PAGES: u32 = 10_000;

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
             PRAGMA query_only = {query_only};
             PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES};"
        ))
        .with_context(|| format!("set up SQLite database {}", self.path.display()))?;
        // Plans that do not depend on the values bound: otherwise SQLite plans some statements
        // with the value of a parameter (a LIMIT, one compared with a partial index's condition)
        // and plans them again whenever one is bound, which made the cached statement useless
        // (parsing one statement again was a sixth of seat-svc's CPU in a sale).
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
            .context("keep SQLite's plans stable")?;
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
    pub(crate) fn value(&self, column: &str) -> anyhow::Result<&Value> {
        self.columns
            .iter()
            .position(|c| c == column)
            .map(|i| &self.values[i])
            .with_context(|| format!("no column {column} in the result"))
    }
}

/// The number of a placeholder as SQLite names it (`$3` → 3). SQLite reads `$3` as a
/// parameter *named* "$3" and numbers named parameters by first appearance, so a statement's
/// `$2 … $1` is bound by these numbers, not by position.
fn placeholder_number(name: &str) -> Option<usize> {
    name.strip_prefix('$')?.parse().ok().filter(|n| *n > 0)
}

/// Binds `args` by the number in each placeholder's name (`$n` takes `args[n - 1]`): a
/// placeholder without its argument, or arguments beyond the highest placeholder, are an error.
fn bind(stmt: &mut rusqlite::CachedStatement<'_>, args: &[Arg]) -> rusqlite::Result<()> {
    let mut highest = 0;
    for index in 1..=stmt.parameter_count() {
        let name = stmt.parameter_name(index).unwrap_or("?");
        let n = placeholder_number(name)
            .ok_or_else(|| rusqlite::Error::InvalidParameterName(name.to_owned()))?;
        let arg = args
            .get(n - 1)
            .ok_or(rusqlite::Error::InvalidParameterCount(n, args.len()))?;
        highest = highest.max(n);
        match arg {
            Arg::Int(v) => stmt.raw_bind_parameter(index, v)?,
            Arg::Text(v) => stmt.raw_bind_parameter(index, v)?,
            Arg::NullInt | Arg::NullText => {
                stmt.raw_bind_parameter(index, rusqlite::types::Null)?
            }
        }
    }
    if highest != args.len() {
        return Err(rusqlite::Error::InvalidParameterCount(args.len(), highest));
    }
    Ok(())
}

/// Runs a statement; the number of rows it changed.
pub(crate) fn execute(conn: &Connection, text: &str, args: &[Arg]) -> rusqlite::Result<u64> {
    let mut stmt = conn.prepare_cached(text)?;
    bind(&mut stmt, args)?;
    Ok(stmt.raw_execute()? as u64)
}

/// Runs a statement and reads up to `limit` rows of its result.
pub(crate) fn fetch(
    conn: &Connection,
    text: &str,
    args: &[Arg],
    limit: usize,
) -> rusqlite::Result<Vec<LiteRow>> {
    let mut stmt = conn.prepare_cached(text)?;
    bind(&mut stmt, args)?;
    let columns: Arc<[String]> = stmt.column_names().into_iter().map(str::to_owned).collect();
    let width = columns.len();
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while out.len() < limit
        && let Some(row) = rows.next()?
    {
        let values = (0..width)
            .map(|i| row.get::<_, Value>(i))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        out.push(LiteRow {
            columns: columns.clone(),
            values,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{Arg, Durability, Lite, Value, fetch, placeholder_number};

    #[test]
    fn a_cached_statement_is_not_planned_again_when_new_values_are_bound() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("plans.db").display());
        let conn = Lite::new(&url, Durability::Normal)
            .unwrap()
            .open(false)
            .unwrap();
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, status TEXT NOT NULL);
             CREATE UNIQUE INDEX t_live ON t (id) WHERE status = 'live';
             INSERT INTO t VALUES (1, 'live'), (2, 'done'), (3, 'live');",
        )
        .unwrap();
        // A bound LIMIT and a bound status beside a partial index: each would have SQLite plan
        // the statement again for every new value.
        let text = "SELECT id FROM t WHERE status = $1 ORDER BY id LIMIT $2";
        for (status, limit, expected) in [("live", 1, 1), ("done", 5, 1), ("live", 5, 2)] {
            let args = [Arg::Text(status.into()), Arg::Int(limit)];
            assert_eq!(fetch(&conn, text, &args, 10).unwrap().len(), expected);
        }
        let stmt = conn.prepare_cached(text).unwrap();
        assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0);
    }

    #[test]
    fn placeholders_are_read_by_their_number() {
        assert_eq!(placeholder_number("$2"), Some(2));
        assert_eq!(placeholder_number("$10"), Some(10));
        for name in ["$0", "$x", "?1", ":a", "$"] {
            assert_eq!(placeholder_number(name), None, "{name}");
        }
    }

    #[test]
    fn arguments_bind_by_their_placeholders_number_not_position() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let args = [Arg::Int(1), Arg::Text("two".into())];
        let rows = fetch(&conn, "SELECT $2 AS a, $1 AS b, $1 AS c", &args, 10).unwrap();
        assert_eq!(rows[0].value("a").unwrap(), &Value::Text("two".into()));
        assert_eq!(rows[0].value("b").unwrap(), &Value::Integer(1));
        assert_eq!(rows[0].value("c").unwrap(), &Value::Integer(1));
        // An argument without its placeholder, or a placeholder without its argument: refused.
        for (text, args) in [("SELECT $1", &args[..]), ("SELECT $1, $2", &args[..1])] {
            assert!(
                matches!(
                    fetch(&conn, text, args, 10),
                    Err(rusqlite::Error::InvalidParameterCount(..))
                ),
                "{text} with {} arguments",
                args.len()
            );
        }
    }
}
