//! wait: waiting on a condition with a deadline — never a fixed sleep.

use anyhow::bail;
use std::time::{Duration, Instant};

/// Polls `check` until it yields `Some`, or fails after `within` naming `what` and the last
/// error seen. Never a fixed sleep: the wait ends as soon as the condition holds.
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
            bail!(
                "timed out after {within:?} waiting for {what}{}",
                last_error
                    .map(|e| format!(" (last error: {e:#})"))
                    .unwrap_or_default()
            );
        }
        // Short: everything runs on loopback, and the wait is part of what demos print.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
