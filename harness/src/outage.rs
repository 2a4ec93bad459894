//! outage: a service's real database made unavailable on demand, for the tests and the chaos
//! tool. PostgreSQL is reached through a TCP proxy that can be cut (every connection dropped,
//! new ones refused); a SQLite file is locked by another connection holding its write lock, as
//! a long backup or a stuck writer would.

use anyhow::Context as _;
use sqlx::{AnyConnection, Connection, Executor};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// What can make one database unavailable.
#[derive(Clone)]
pub enum Breaker {
    /// PostgreSQL behind a proxy of ours.
    Proxy(Arc<Proxy>),
    /// A SQLite file, locked by a connection of ours.
    Sqlite(String),
}

/// A database made unavailable until this is dropped.
pub enum Cut {
    Proxy(Arc<Proxy>),
    Sqlite(AnyConnection),
}

impl Breaker {
    /// Makes the database unavailable until the answer is dropped.
    pub async fn cut(&self) -> anyhow::Result<Cut> {
        match self {
            Breaker::Proxy(p) => {
                p.cut();
                Ok(Cut::Proxy(p.clone()))
            }
            Breaker::Sqlite(url) => {
                sqlx::any::install_default_drivers();
                let mut conn = AnyConnection::connect(url)
                    .await
                    .with_context(|| format!("open {url}"))?;
                // In WAL mode this is the write lock: readers go on, writers wait, then fail.
                conn.execute("BEGIN EXCLUSIVE")
                    .await
                    .context("take the write lock")?;
                Ok(Cut::Sqlite(conn))
            }
        }
    }
}

impl Drop for Cut {
    fn drop(&mut self) {
        // A dropped SQLite connection rolls its transaction back and lets go of the lock.
        if let Cut::Proxy(p) = self {
            p.restore();
        }
    }
}

/// A TCP proxy to one address, which can be cut.
pub struct Proxy {
    port: u16,
    up: AtomicBool,
    connections: Mutex<Vec<AbortHandle>>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `target` (`host:port`). It runs on a
    /// thread of its own: a test's runtime may be blocked (waiting for a process to start,
    /// which needs the proxy to reach its database).
    pub async fn start(target: String) -> anyhow::Result<Arc<Proxy>> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("bind a proxy port")?;
        listener.set_nonblocking(true)?;
        let proxy = Arc::new(Proxy {
            port: listener.local_addr()?.port(),
            up: AtomicBool::new(true),
            connections: Mutex::new(Vec::new()),
        });
        let p = proxy.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("a runtime for the proxy")?;
        std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = TcpListener::from_std(listener) else {
                    return;
                };
                while let Ok((client, _)) = listener.accept().await {
                    if !p.up.load(Ordering::Acquire) {
                        continue; // dropped: refused
                    }
                    let target = target.clone();
                    let task = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(&target).await {
                            let mut client = client;
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    p.track().push(task.abort_handle());
                }
            })
        });
        Ok(proxy)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn track(&self) -> std::sync::MutexGuard<'_, Vec<AbortHandle>> {
        self.connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn cut(&self) {
        self.up.store(false, Ordering::Release);
        for connection in self.track().drain(..) {
            connection.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::Release);
    }
}
