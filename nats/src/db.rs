//! db: the service's database handle — a SQLite file by default, PostgreSQL by URL — through
//! sqlx's `Any` driver, so store code is written once with `$n` placeholders for both.

use anyhow::Context as _;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Executor};
use std::sync::Once;
use std::time::Duration;

/// A write transaction.
pub type Tx = sqlx::Transaction<'static, Any>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How much a committed SQLite transaction survives. In WAL mode, `Normal` survives a process
/// crash (kill -9) but may lose the last transactions on power loss; `Full` syncs every commit
/// and survives power loss, at about 60 % of the write rate (see README).
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

#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    /// Where write transactions run. On SQLite one connection: SQLite admits one writer at a
    /// time anyway, and waiting writers queue here (woken in order) instead of in SQLite's
    /// busy handler, which sleeps up to 100 ms between tries. On PostgreSQL the same pool.
    writer: AnyPool,
    backend: Backend,
}

impl Db {
    /// Connects (creating a SQLite file and its folder if needed) and applies the pragmas that make
    /// SQLite safe for several writers: WAL, a busy timeout, foreign keys.
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        Self::connect_with(url, Durability::Normal).await
    }

    /// Connects with an explicit SQLite durability (PostgreSQL ignores it: it always syncs).
    pub async fn connect_with(url: &str, durability: Durability) -> anyhow::Result<Db> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(install_default_drivers);

        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            anyhow::bail!("DATABASE_URL must start with sqlite: or postgres: (got {url:?})");
        };
        let mut url = url.to_owned();
        if backend == Backend::Sqlite {
            url = prepare_sqlite_url(&url)?;
        }
        let pool_of = |connections| {
            Self::pool_options(backend, durability)
                .max_connections(connections)
                .connect(&url)
        };
        let pool = pool_of(match backend {
            Backend::Sqlite => 8,
            Backend::Postgres => 16,
        })
        .await
        .with_context(|| format!("connect to database {url}"))?;
        let writer = match backend {
            Backend::Sqlite => pool_of(1)
                .await
                .with_context(|| format!("connect to database {url}"))?,
            Backend::Postgres => pool.clone(),
        };
        Ok(Db {
            pool,
            writer,
            backend,
        })
    }

    fn pool_options(backend: Backend, durability: Durability) -> AnyPoolOptions {
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        if backend == Backend::Sqlite {
            options.after_connect(move |conn, _meta| {
                Box::pin(async move {
                    let synchronous = match durability {
                        Durability::Normal => "PRAGMA synchronous = NORMAL",
                        Durability::Full => "PRAGMA synchronous = FULL",
                    };
                    for pragma in [
                        "PRAGMA journal_mode = WAL",
                        synchronous,
                        "PRAGMA busy_timeout = 10000",
                        "PRAGMA foreign_keys = ON",
                    ] {
                        conn.execute(pragma).await?;
                    }
                    Ok(())
                })
            })
        } else {
            options
        }
    }

    /// For reads (and writes that may wait their turn on SQLite's busy handler).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// For a single-statement write outside a transaction.
    pub fn writer(&self) -> &AnyPool {
        &self.writer
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a write transaction on the writer pool. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`) so a read inside it never has to upgrade (and fail) later.
    pub async fn begin(&self) -> sqlx::Result<Tx> {
        match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.writer.begin().await,
        }
    }

    /// Creates the messaging tables (outbox, inbox) and runs the service's own migrations.
    pub async fn migrate(&self, migrator: &Migrator) -> anyhow::Result<()> {
        self.ensure_messaging_tables().await?;
        migrator
            .run(&self.pool)
            .await
            .context("run the service's migrations")
    }

    /// The outbox and inbox tables, created if missing (idempotent).
    pub async fn ensure_messaging_tables(&self) -> anyhow::Result<()> {
        let outbox = crate::outbox::ddl(self.backend);
        let all = outbox
            .iter()
            .map(String::as_str)
            .chain(crate::inbox::DDL.iter().copied());
        for ddl in all {
            // Fixed DDL of our own; nothing from outside goes into it.
            self.pool
                .execute(sqlx::AssertSqlSafe(ddl))
                .await
                .with_context(|| format!("create messaging table: {ddl}"))?;
        }
        Ok(())
    }

    pub async fn ping(&self) -> bool {
        self.pool.execute("SELECT 1").await.is_ok()
    }
}

/// What to append to a `SELECT` that reads a row the transaction will then change: on PostgreSQL
/// it locks the row (`FOR UPDATE`) so concurrent transactions of other replicas wait instead of
/// both acting on the same state; SQLite needs nothing, as its write transactions are serial.
pub fn for_update(tx: &mut Tx) -> &'static str {
    if tx.backend_name() == "PostgreSQL" {
        " FOR UPDATE"
    } else {
        ""
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
