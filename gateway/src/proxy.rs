//! proxy: a request under `/api` passed to the service that owns its path, unchanged but for the
//! prefix and the connection's own headers, and the answer streamed back.

use crate::config::Upstream;
use crate::state::Gateway;
use crate::upstream::{Outgoing, relay};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use nats::web::{Problem, kinds};
use std::sync::Arc;

/// The largest body passed on: a seat map of 10,000 seats fits with room to spare.
const MAX_BODY: usize = 4 << 20;

/// The public prefix of every proxied path.
pub const API: &str = "/api";

/// The request as it goes to the service: `/api` taken off, its body read (bounded).
pub async fn outgoing(req: Request) -> Result<Outgoing, Problem> {
    let (parts, body) = req.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let path_and_query = path_and_query
        .strip_prefix(API)
        .unwrap_or(path_and_query)
        .to_owned();
    let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        Problem::new(
            kinds::BODY_TOO_LARGE,
            format!("the body is larger than {MAX_BODY} bytes, or was cut off"),
        )
    })?;
    Ok(Outgoing {
        method: parts.method,
        path_and_query,
        headers: parts.headers,
        body,
    })
}

/// Passes the request to `which` and its answer back.
pub async fn forward(gw: Arc<Gateway>, which: Upstream, req: Request) -> Response {
    let out = match outgoing(req).await {
        Ok(out) => out,
        Err(problem) => return problem.into_response(),
    };
    match gw.upstreams.send(which, out).await {
        Ok(resp) => relay(resp),
        Err(failure) => Problem::from(failure).into_response(),
    }
}
