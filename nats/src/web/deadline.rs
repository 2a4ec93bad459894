//! deadline: how long a request may take to be answered, reading its body included. A client
//! that sends its body slowly, or a handler stuck on something, gets a 503 problem instead of
//! holding a connection and a task for ever. (Server-sent events answer at once and stream
//! after: the deadline is on the answer's start, not on the stream.)

use super::problem::{Problem, kinds};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// How long a request may take, unless `REQUEST_TIMEOUT_SECS` says.
pub const DEFAULT: Duration = Duration::from_secs(30);

/// The middleware: `axum::middleware::from_fn_with_state(limit, deadline::bounded)`.
pub async fn bounded(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(
                limit_ms = limit.as_millis() as u64,
                "a request ran out of time"
            );
            Problem::new(
                kinds::TIMED_OUT,
                format!(
                    "the request was not answered within {} ms (a body sent too slowly, or the \
                 service too busy); whether a command in it took effect is not known: check \
                 before sending it again",
                    limit.as_millis()
                ),
            )
            .retry_after(1)
            .into_response()
        }
    }
}
