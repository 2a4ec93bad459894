//! db: the service's database — a SQLite file by default, PostgreSQL by URL — its connections,
//! migrations, and the SQL API stores are written in ([`sql`]), once for both backends. Writes
//! go through the unit of work ([`crate::unit_of_work`]); reads take a [`Read`] from here.

mod arg;
pub mod clock;
mod errors;
mod later;
mod lite;
pub mod sql;

pub use clock::{Clock, from_millis, to_millis};
pub use errors::unavailable;
use sql::Conn;
pub use sql::{Backend, Decode, Row, Sql, Statement, ToArg, padded_to_power_of_two, placeholders};

use anyhow::Context as _;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Executor};
use std::borrow::Cow;
use std::sync::{Arc, Once};
use std::time::Duration;

pub use lite::Durability;
pub(crate) use tx::Tx;
pub use tx::Unavailable;
mod tx;

/// `url` without the password of its user: what logs and errors may show of a database URL.
pub fn redacted(url: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let mut out = match base.find("://").map(|i| i + 3) {
        // The userinfo ends at the last '@' before the path (a password may hold '@').
        Some(start) => {
            let authority_end = base[start..].find('/').map_or(base.len(), |i| start + i);
            match base[start..authority_end].rfind('@').map(|i| start + i) {
                Some(at) => match base[start..at].find(':') {
                    Some(colon) => format!("{}:***{}", &base[..start + colon], &base[at..]),
                    None => base.to_owned(),
                },
                None => base.to_owned(),
            }
        }
        None => base.to_owned(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{out}?{}", pairs.join("&"));
    }
    out
}

/// The service's database: a shared handle, cloned by every request, unit of work and consumer
/// batch, so one reference count rather than each of its parts'.
#[derive(Clone, Debug)]
pub struct Db(Arc<Parts>);

#[derive(Debug)]
struct Parts {
    /// sqlx's connections: where migrations and the runtime's DDL run, and on PostgreSQL
    /// every write (the committers' connections). On SQLite one connection, for migrations and
    /// DDL only: reads and the unit of work's transactions go through [`lite`]. It keeps no
    /// connection between uses: a committer's is opened on the committer's own thread.
    pool: AnyPool,
    /// PostgreSQL's read connections, apart from the committers' (`pool`): a read never waits
    /// for a unit of work to give a connection back. `None` on SQLite.
    read_pool: Option<AnyPool>,
    /// SQLite's file and read connections; `None` on PostgreSQL.
    lite: Option<lite::Lite>,
    /// SQLite's one write connection, for the unit of work's database thread: SQLite admits
    /// one writer at a time anyway, and a second writer of this process would only wait in
    /// SQLite's busy handler (which sleeps up to 100 ms between tries).
    lite_writer: Option<std::sync::Arc<tokio::sync::Mutex<rusqlite::Connection>>>,
    backend: Backend,
    clock: Clock,
    /// PostgreSQL connections for the unit of work's committers (the rest are for reads).
    committers: u32,
    /// The committers' PostgreSQL connections between their transactions.
    writers: tx::Writers,
}

/// PostgreSQL connections a process holds at most, unless `DATABASE_MAX_CONNECTIONS` says: size
/// it so that every process's together stay under the server's `max_connections`. One is the
/// unit of work's committer's ([`COMMITTERS`]), the rest are for reads.
pub const DEFAULT_CONNECTIONS: u32 = 16;
/// The unit of work's committers on PostgreSQL, each with a connection of its own: one, as on
/// SQLite. Its groups are larger than two committers' (so fewer transactions, flushes and
/// round trips a unit: docs/benchmarks.md), and two groups of one process never wait for each
/// other's row locks, so never deadlock.
pub const COMMITTERS: u32 = 1;
/// Readings of the database's clock a measurement takes, keeping the quickest.
const CLOCK_READINGS: usize = 5;

impl Db {
    /// Connects (creating a SQLite file and its folder if needed) and applies the pragmas that make
    /// SQLite safe for several writers: WAL, a busy timeout, foreign keys.
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        Self::connect_with(url, Durability::Normal, DEFAULT_CONNECTIONS).await
    }

    /// Connects with an explicit SQLite durability (PostgreSQL ignores it: it always syncs)
    /// and at most `connections` PostgreSQL connections (SQLite's are its own).
    pub async fn connect_with(
        url: &str,
        durability: Durability,
        connections: u32,
    ) -> anyhow::Result<Db> {
        anyhow::ensure!(
            connections >= 2,
            "at least two database connections are needed (one for reads, one for writes)"
        );
        let committers = COMMITTERS.min(connections - 1);
        let readers = connections - committers;
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(install_default_drivers);

        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            anyhow::bail!(
                "DATABASE_URL must start with sqlite: or postgres: (got {:?})",
                redacted(url)
            );
        };
        let mut url = url.to_owned();
        if backend == Backend::Sqlite {
            url = prepare_sqlite_url(&url)?;
        }
        let pool_of = |connections, read_only| {
            Self::pool_options(backend, durability, read_only)
                .max_connections(connections)
                .connect(&url)
        };
        let connect = async |connections, read_only| {
            pool_of(connections, read_only)
                .await
                .with_context(|| format!("connect to database {}", redacted(&url)))
        };
        let (pool, read_pool, lite, lite_writer) = match backend {
            // sqlx keeps one connection for migrations; the rest is rusqlite's.
            Backend::Sqlite => {
                let pool = connect(1, false).await?;
                let lite = lite::Lite::new(&url, durability)?;
                let conn = lite.open(false)?;
                let lite_writer = std::sync::Arc::new(tokio::sync::Mutex::new(conn));
                (pool, None, Some(lite), Some(lite_writer))
            }
            Backend::Postgres => (
                connect(committers, false).await?,
                Some(connect(readers, true).await?),
                None,
                None,
            ),
        };
        let db = Db(Arc::new(Parts {
            pool,
            lite,
            lite_writer,
            backend,
            clock: Clock::default(),
            read_pool,
            committers,
            writers: tx::Writers::default(),
        }));
        db.sync_clock().await?;
        Ok(db)
    }

    /// The time replicas agree on (see [`Clock`]); the runtime keeps it in step.
    pub fn clock(&self) -> &Clock {
        &self.0.clock
    }

    /// Measures again how far the database server's clock is from this process's (see
    /// [`Clock`]). On SQLite the database is a file on this machine, its time this process's:
    /// nothing to measure (replicas sharing the file share the machine's clock).
    pub async fn sync_clock(&self) -> anyhow::Result<()> {
        if self.0.backend == Backend::Sqlite {
            return Ok(());
        }
        let mut read = self.reader().await?;
        // The reading with the shortest round trip of a few: one slow reply (a busy moment)
        // would otherwise set the offset by up to half of it.
        let mut best: Option<clock::Reading> = None;
        for _ in 0..CLOCK_READINGS {
            let before_us = clock::to_micros(time::OffsetDateTime::now_utc());
            let server_us: i64 = read
                .sql("SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT) AS t")
                .fetch_one()
                .await
                .context("read the database's clock")?
                .get("t")?;
            let after_us = clock::to_micros(time::OffsetDateTime::now_utc());
            let reading = clock::Reading {
                server_us,
                before_us,
                after_us,
            };
            if best.is_none_or(|b| reading.round_trip_us() < b.round_trip_us()) {
                best = Some(reading);
            }
        }
        if let Some(reading) = best {
            self.0.clock.record(reading);
        }
        Ok(())
    }

    fn pool_options(backend: Backend, durability: Durability, read_only: bool) -> AnyPoolOptions {
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        if backend == Backend::Sqlite {
            options.after_connect(move |conn, _meta| {
                Box::pin(async move {
                    let synchronous = match durability {
                        Durability::Normal => "PRAGMA synchronous = NORMAL",
                        Durability::Full => "PRAGMA synchronous = FULL",
                    };
                    let query_only = match read_only {
                        true => "PRAGMA query_only = ON",
                        false => "PRAGMA query_only = OFF",
                    };
                    for pragma in [
                        "PRAGMA journal_mode = WAL",
                        synchronous,
                        "PRAGMA busy_timeout = 10000",
                        "PRAGMA foreign_keys = ON",
                        query_only,
                    ] {
                        conn.execute(pragma).await?;
                    }
                    Ok(())
                })
            })
        } else if read_only {
            // A read is one or two statements: a ping before each would be another round trip.
            // A connection that broke fails its read (503, asked again) and is not given out
            // again (the pool tests each one given back).
            options.test_before_acquire(false)
        } else {
            options
        }
    }

    /// A connection for reads; it never takes the write lock, so it does not wait for writers
    /// (on SQLite it cannot write at all: writes go through the unit of work).
    pub async fn reader(&self) -> anyhow::Result<Read> {
        match &self.0.lite {
            Some(lite) => Ok(Read(ReadOf::Lite(lite.reader()?))),
            None => {
                let pool = self.0.read_pool.as_ref().unwrap_or(&self.0.pool);
                let conn = pool.acquire().await.context("a read connection")?;
                Ok(Read(ReadOf::Sqlx(conn)))
            }
        }
    }

    /// The unit of work's committers, each with a write connection of its own (SQLite: one).
    pub fn committers(&self) -> u32 {
        self.0.committers
    }

    pub fn backend(&self) -> Backend {
        self.0.backend
    }

    /// Starts a write transaction. On SQLite it takes the write lock up front (`BEGIN
    /// IMMEDIATE`) so a read inside it never has to upgrade (and fail) later. On PostgreSQL a
    /// committer's first opens its connection, on the committer's thread ([`Parts::pool`]).
    pub(crate) async fn begin(&self) -> anyhow::Result<Tx> {
        match &self.0.lite_writer {
            Some(conn) => Tx::lite(conn.clone().lock_owned().await),
            None => self.0.writers.begin(&self.0.pool).await,
        }
    }

    /// Runs the service's migrations.
    pub async fn migrate(&self, migrator: &Migrator) -> anyhow::Result<()> {
        let mut conn = self.setup_connection().await?;
        migrator
            .run(&mut *conn)
            .await
            .context("run the service's migrations")
    }

    /// Runs fixed DDL of the runtime's own (tables it creates if missing, idempotently).
    pub async fn ensure(&self, ddl: &[Cow<'static, str>]) -> anyhow::Result<()> {
        let mut conn = self.setup_connection().await?;
        for statement in ddl {
            // Fixed text of our own; nothing from outside goes into it.
            conn.execute(sqlx::AssertSqlSafe(statement.as_ref()))
                .await
                .with_context(|| format!("create a table: {statement}"))?;
        }
        Ok(())
    }

    /// A write connection for set-up (migrations, DDL), closed when dropped ([`Parts::pool`]).
    async fn setup_connection(&self) -> anyhow::Result<PoolConnection<Any>> {
        let mut conn = self.0.pool.acquire().await.context("a set-up connection")?;
        conn.close_on_drop();
        Ok(conn)
    }

    pub async fn ping(&self) -> bool {
        match self.reader().await {
            Ok(mut read) => read.sql("SELECT 1 AS one").fetch_one().await.is_ok(),
            Err(_) => false,
        }
    }
}

/// A read connection from the pool.
pub struct Read(ReadOf);

/// A read connection of each driver.
enum ReadOf {
    Lite(lite::Reader),
    Sqlx(PoolConnection<Any>),
}

impl Sql for Read {
    fn statement(&mut self, text: Cow<'static, str>) -> Statement<'_> {
        match &mut self.0 {
            ReadOf::Lite(reader) => Statement::new(Conn::Lite(reader.conn()), text),
            ReadOf::Sqlx(conn) => Statement::new(Conn::Sqlx(conn, None), text),
        }
    }
}

/// Makes sure the folder of a SQLite file exists and that the file is created when missing.
fn prepare_sqlite_url(url: &str) -> anyhow::Result<String> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path.starts_with(":memory:") {
        return Ok(url.to_owned());
    }
    if let Some(dir) = std::path::Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("create database folder {}", dir.display()))?;
    }
    if query.contains("mode=") {
        Ok(url.to_owned())
    } else if query.is_empty() {
        Ok(format!("sqlite://{path}?mode=rwc"))
    } else {
        Ok(format!("sqlite://{path}?{query}&mode=rwc"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_lose_their_password_in_logs() {
        assert_eq!(
            redacted("postgres://seat:s3cr@t@db:5432/seat?sslmode=require"),
            "postgres://seat:***@db:5432/seat?sslmode=require"
        );
        assert_eq!(
            redacted("postgres://seat@db/seat"),
            "postgres://seat@db/seat"
        );
        assert_eq!(redacted("sqlite://data/seat.db"), "sqlite://data/seat.db");
        assert_eq!(
            redacted("postgres://db/x?user=u&password=a"),
            "postgres://db/x?user=u&password=***"
        );
    }

    #[test]
    fn sqlite_urls_get_create_mode_and_keep_their_options() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/svc.db");
        let url = format!("sqlite://{}", path.display());
        assert_eq!(prepare_sqlite_url(&url).unwrap(), format!("{url}?mode=rwc"));
        assert!(path.parent().unwrap().is_dir());
        assert_eq!(
            prepare_sqlite_url(&format!("{url}?mode=ro")).unwrap(),
            format!("{url}?mode=ro")
        );
    }
}
