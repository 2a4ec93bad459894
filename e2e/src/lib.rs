//! e2e: runs the whole system the way users do — a real nats-server and the four service
//! binaries as separate processes on free ports, each with its own SQLite file — and talks to
//! it over HTTP only. Used by the end-to-end tests and the demo.

pub mod api;
pub mod flows;
pub mod process;

pub use api::{Api, Reply};
pub use process::{ServiceProcess, System, service_binary};

use std::time::{Duration, Instant};

/// Polls `check` until it yields `Some`, or fails after `within` naming `what` and the last
/// value seen. Never a fixed sleep: the wait ends as soon as the condition holds.
pub async fn eventually<T, F>(what: &str, within: Duration, mut check: F) -> anyhow::Result<T>
where
    F: AsyncFnMut() -> anyhow::Result<Option<T>>,
{
    let deadline = Instant::now() + within;
    let mut last_error = None;
    loop {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_error = Some(e),
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "timed out after {within:?} waiting for {what}{}",
                last_error.map(|e| format!(" (last error: {e:#})")).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
