//! health: `/healthz` (the process answers), `/readyz` (database and NATS up, topology
//! ensured), `/metrics` (Prometheus text), and the request metrics every route records.

use crate::db::Db;
use crate::messaging::consumer::Down;
use crate::web::{Problem, kinds};
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// What `/readyz` checks.
pub(crate) struct Readiness {
    pub db: Db,
    pub nats: async_nats::Client,
    /// Set once the streams are ensured and the consumers start.
    pub topology: AtomicBool,
    /// Consumers restarting after an error or a panic.
    pub consumers_down: Down,
}

impl Readiness {
    pub fn topology_ensured(&self) {
        self.topology.store(true, Ordering::Release);
    }
}

pub(crate) fn routes(readiness: Arc<Readiness>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(ready))
        .route(
            "/metrics",
            get(|| async { super::telemetry::metrics().render() }),
        )
        .with_state(readiness)
}

async fn ready(State(r): State<Arc<Readiness>>) -> Response {
    let database = r.db.ping().await;
    let nats = r.nats.connection_state() == async_nats::connection::State::Connected;
    let topology = r.topology.load(Ordering::Acquire);
    let down = r.consumers_down.count();
    if database && nats && topology && down == 0 {
        Json(json!({"status": "ready", "database": "up", "nats": "up", "topology": "ensured"}))
            .into_response()
    } else {
        Problem::new(
            kinds::NOT_READY,
            format!(
                "not ready: database {}, NATS {}, topology {}, {down} consumer(s) restarting",
                up(database),
                up(nats),
                if topology { "ensured" } else { "pending" }
            ),
        )
        .into_response()
    }
}

fn up(ok: bool) -> &'static str {
    if ok { "up" } else { "down" }
}

/// Counts and times every request by route and status.
pub(crate) async fn track_requests(req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let method = req.method().to_string();
    let start = Instant::now();
    // The request's span continues the caller's trace (`traceparent`), when spans are exported.
    let span = tracing::info_span!(target: crate::traces::TARGET, "http request",
        http.method = %method, http.route = %path, http.status_code = tracing::field::Empty);
    crate::traces::follow(
        &span,
        req.headers()
            .get(contracts::envelope::header::TRACEPARENT)
            .and_then(|v| v.to_str().ok()),
    );
    let resp = tracing::Instrument::instrument(next.run(req), span.clone()).await;
    span.record("http.status_code", resp.status().as_u16());
    let status = resp.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method.clone(), "path" => path.clone(), "status" => status.clone()).increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => path, "status" => status)
        .record(start.elapsed().as_secs_f64());
    resp
}
