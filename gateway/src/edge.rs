//! edge: the gateway's router — which service owns which path under `/api` and which need a
//! signed-in caller, the layers in front (request ids, CORS, identity, rate limits), health and
//! readiness — and serving it until SIGTERM.

use crate::config::{Config, Upstream};
use crate::state::Gateway;
use crate::{catalog, compose, docs, identity, limit, page, proxy};
use anyhow::Context as _;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, Method, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use nats::web::problem::{method_not_allowed_fallback, not_found_fallback};
use nats::web::{Problem, kinds};
use std::sync::Arc;
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

/// A route passed to `which`.
fn to(which: Upstream, method: Method) -> MethodRouter<Arc<Gateway>> {
    let handler =
        move |State(gw): State<Arc<Gateway>>, req: Request| proxy::forward(gw, which, req);
    axum::routing::on(method.try_into().expect("a plain method"), handler)
}

/// Only for a signed-in caller.
fn private(route: MethodRouter<Arc<Gateway>>) -> MethodRouter<Arc<Gateway>> {
    route.route_layer(from_fn(identity::required))
}

/// The API under `/api`: which service owns which path, and which need a signed-in caller.
fn api() -> Router<Arc<Gateway>> {
    use Upstream::{Concert, Payment, Reservation, Seat};
    let (get_, post_) = (Method::GET, Method::POST);
    Router::new()
        // The catalog: public reads (stale while concert-svc is down), admin commands.
        .route(
            "/api/concerts",
            get(catalog::get).merge(private(to(Concert, post_.clone()))),
        )
        .route(
            "/api/concerts/{id}/schedules",
            get(catalog::get).merge(private(to(Concert, post_.clone()))),
        )
        .route("/api/schedules/{id}", get(catalog::get))
        .route("/api/schedules/{id}/seats", get(catalog::get))
        .route(
            "/api/admin/view/rebuild",
            private(to(Concert, post_.clone())),
        )
        // Seats: the queue and holds.
        .route(
            "/api/schedules/{id}/queue",
            private(to(Seat, post_.clone())),
        )
        .route(
            "/api/schedules/{id}/holds",
            private(to(Seat, post_.clone())),
        )
        .route("/api/queue/{token}", private(to(Seat, get_.clone())))
        // Reservations, composed with the catalog.
        .route("/api/reservations", private(get(compose::reservations)))
        .route(
            "/api/reservations/{id}",
            private(get(compose::reservations)),
        )
        .route(
            "/api/reservations/{id}/payment",
            private(to(Reservation, post_.clone())),
        )
        .route(
            "/api/reservations/{id}/cancel",
            private(to(Reservation, post_.clone())),
        )
        .route(
            "/api/reservations/{id}/events",
            private(to(Reservation, get_.clone())),
        )
        .route(
            "/api/reservations/{id}/timeline",
            private(to(Reservation, get_.clone())),
        )
        // Operators: a saga's timeline (and the stuck ones, `/api/admin/sagas/stuck`).
        .route(
            "/api/admin/sagas/{id}",
            private(to(Reservation, get_.clone())),
        )
        // Wallets.
        .route("/api/wallet", private(to(Payment, get_.clone())))
        .route("/api/wallet/charge", private(to(Payment, post_)))
        .route("/api/wallet/ledger", private(to(Payment, get_)))
        // Sessions and the API's own description.
        .route(
            "/api/session",
            get(identity::whoami)
                .merge(private(post(identity::sign_in)))
                .delete(identity::sign_out),
        )
        .route("/api/dev/login", post(identity::dev_login))
        .route("/api/openapi.json", get(docs::openapi))
        .route("/api/docs", get(page::api_reference))
}

/// Headers a browser on another allowed origin may send, and may read.
const CORS_ALLOWED: [&str; 7] = [
    "authorization",
    "content-type",
    "idempotency-key",
    "x-request-id",
    "queue-token",
    "traceparent",
    "last-event-id",
];
const CORS_EXPOSED: [&str; 6] = [
    "retry-after",
    "x-request-id",
    "idempotent-replayed",
    "location",
    "x-stale",
    "age",
];

fn cors(origins: &[String]) -> anyhow::Result<CorsLayer> {
    let origins = origins
        .iter()
        .map(|o| o.parse().with_context(|| format!("CORS_ORIGINS: {o:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers(CORS_ALLOWED.map(HeaderName::from_static))
        .expose_headers(CORS_EXPOSED.map(HeaderName::from_static))
        .allow_credentials(true)
        .max_age(Duration::from_secs(600)))
}

/// The whole gateway: the API (identity, then rate limits, then the routes), the page, health.
pub fn router(gw: Arc<Gateway>) -> anyhow::Result<Router> {
    let limiter = Arc::new(limit::Limiter::new(gw.config.rate_limit_per_sec));
    let forgetting = limiter.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(30));
        loop {
            every.tick().await;
            forgetting.forget_idle();
        }
    });
    let api = api()
        .layer(from_fn_with_state(limiter, limit::per_caller))
        .layer(from_fn_with_state(gw.clone(), identity::resolve));
    let mut app = Router::new()
        .merge(api)
        .merge(page::routes())
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/problems/{slug}", get(docs::problem))
        .fallback(not_found_fallback)
        .method_not_allowed_fallback(method_not_allowed_fallback)
        .with_state(gw.clone());
    if !gw.config.cors_origins.is_empty() {
        app = app.layer(cors(&gw.config.cors_origins)?);
    }
    Ok(app
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid)))
}

/// `GET /readyz`: 200 when every upstream is ready, else 503 naming those that are not.
async fn ready(State(gw): State<Arc<Gateway>>) -> Response {
    let down = gw.upstreams.down().await;
    if down.is_empty() {
        return (
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"status":"ready"}"#,
        )
            .into_response();
    }
    let names: Vec<_> = down.iter().map(|u| u.name()).collect();
    Problem::new(
        kinds::NOT_READY,
        format!("not ready: {} down", names.join(", ")),
    )
    .into_response()
}

/// Serves until SIGTERM or Ctrl-C.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&config.http_addr)
        .await
        .with_context(|| format!("bind {}", config.http_addr))?;
    let addr = listener.local_addr()?;
    let app = router(Gateway::new(config)?)?;
    tracing::info!(%addr, "gateway listening");
    // The test harness and the demo read this line to learn the port.
    println!("gateway listening on http://{addr}");
    let shutdown = nats::runtime::shutdown::on_signal();
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned())
    .await
    .context("serve HTTP")?;
    nats::traces::flush();
    Ok(())
}
