//! database: a fresh database per service for each test — a SQLite file in the test's folder, or,
//! with `TEST_DATABASE=postgres`, a PostgreSQL database created for the test (on
//! `TEST_POSTGRES_URL`, default [`TCP_SERVER`]) and dropped after it.

use crate::outage::{Breaker, Proxy};
use anyhow::Context as _;
use sqlx::{AnyConnection, Connection, Executor};
use std::path::PathBuf;
use std::sync::Mutex;

/// The PostgreSQL server tests use unless `TEST_POSTGRES_URL` says otherwise: over TCP, so
/// that a test can cut it with a proxy ([`Databases::create_breakable`]).
pub const TCP_SERVER: &str = "postgres://postgres@127.0.0.1:5432";

/// The local PostgreSQL server over its Unix socket, if it has one where Debian puts it: a
/// service on the database's host connects this way (no TCP stack on either side of each
/// round trip).
pub fn local_socket_server() -> Option<String> {
    std::path::Path::new("/var/run/postgresql/.s.PGSQL.5432")
        .exists()
        .then(|| "postgres://postgres@%2Fvar%2Frun%2Fpostgresql".to_owned())
}

/// The PostgreSQL server of `TEST_POSTGRES_URL`, or [`TCP_SERVER`].
pub fn postgres_server() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| TCP_SERVER.into())
}

/// Whether `TEST_DATABASE=postgres` asks for PostgreSQL.
pub fn postgres_from_env() -> bool {
    std::env::var("TEST_DATABASE").as_deref() == Ok("postgres")
}

pub struct Databases {
    postgres: Option<String>,
    dir: PathBuf,
    created: Mutex<Vec<String>>,
}

impl Databases {
    /// Databases for one test, SQLite files going into `dir`.
    pub fn from_env(dir: PathBuf) -> Databases {
        Self::new(postgres_from_env(), None, dir)
    }

    /// On PostgreSQL when `postgres`, on `server` (`postgres://user@host[:port]`) or else
    /// [`postgres_server`]; else SQLite files in `dir`.
    pub fn new(postgres: bool, server: Option<String>, dir: PathBuf) -> Databases {
        let postgres = postgres.then(|| server.unwrap_or_else(postgres_server));
        Databases {
            postgres,
            dir,
            created: Mutex::new(Vec::new()),
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    /// A new, empty database for `name`; its URL.
    pub async fn create(&self, name: &str) -> anyhow::Result<String> {
        let Some(server) = &self.postgres else {
            return Ok(format!(
                "sqlite://{}",
                self.dir.join(format!("{name}.db")).display()
            ));
        };
        sqlx::any::install_default_drivers();
        let db = format!(
            "t_{}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12],
            name.replace('-', "_")
        );
        let mut admin = AnyConnection::connect(&format!("{server}/postgres"))
            .await
            .with_context(|| format!("connect to PostgreSQL at {server} (is it running?)"))?;
        // The name is ours: letters, digits and underscores.
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
            .await
            .with_context(|| format!("create database {db}"))?;
        self.created.lock().unwrap().push(db.clone());
        Ok(format!("{server}/{db}"))
    }
}

impl Databases {
    /// A new, empty database for `name` that a test can make unavailable: its URL (through a
    /// proxy on PostgreSQL) and what cuts it.
    pub async fn create_breakable(&self, name: &str) -> anyhow::Result<(String, Breaker)> {
        let url = self.create(name).await?;
        let Some(server) = &self.postgres else {
            return Ok((url.clone(), Breaker::Sqlite(url)));
        };
        anyhow::ensure!(
            !server.contains("%2F"),
            "a database that can be cut is reached through a TCP proxy: {server} is a Unix socket"
        );
        // postgres://user@host:port[/db]: the proxy stands in for host:port.
        let authority_start = server
            .find('@')
            .map(|i| i + 1)
            .unwrap_or(server.find("://").map(|i| i + 3).unwrap_or(0));
        let authority_end = server[authority_start..]
            .find('/')
            .map(|i| authority_start + i)
            .unwrap_or(server.len());
        let target = server[authority_start..authority_end].to_owned();
        let proxy = Proxy::start(target.clone()).await?;
        let proxied = url.replacen(&target, &format!("127.0.0.1:{}", proxy.port()), 1);
        Ok((proxied, Breaker::Proxy(proxy)))
    }
}

impl Drop for Databases {
    fn drop(&mut self) {
        let (Some(server), dbs) = (
            self.postgres.clone(),
            std::mem::take(&mut *self.created.lock().unwrap()),
        ) else {
            return;
        };
        if dbs.is_empty() {
            return;
        }
        // Drop may run inside a runtime: do the async clean-up on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let mut admin = AnyConnection::connect(&format!("{server}/postgres")).await?;
                for db in dbs {
                    admin
                        .execute(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
                        )))
                        .await?;
                }
                anyhow::Ok(())
            })
        })
        .join();
    }
}
