//! service: what every service's start-up shares — typed config from the environment, the
//! database, NATS and listener, the outbox relay, the consumers, `/healthz` `/readyz` `/metrics`,
//! and graceful shutdown (stop HTTP, finish the batch in hand, flush the outbox, drain NATS).

use crate::apply::{Apply, Transactional};
use crate::auth::Auth;
use crate::consumer::{self, Handler};
use crate::db::Db;
use crate::http::{Problem, method_not_allowed_fallback, not_found_fallback};
use crate::outbox::Outbox;
use crate::topology::{ConsumerSpec, ensure_streams};
use anyhow::Context as _;
use async_nats::jetstream;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use contracts::Event;
use futures::future::BoxFuture;
use serde_json::json;
use sqlx::migrate::Migrator;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long shutdown waits for consumers and the relay before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Reads `key`, or `default` when unset.
pub fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}

/// Reads and parses `key`, or `default` when unset; a value that does not parse is an error
/// naming the variable.
pub fn env_parse<T: FromStr>(key: &str, default: T) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(key) {
        Ok(v) => v
            .parse()
            .map_err(|e| anyhow::anyhow!("environment variable {key}={v:?} is invalid: {e}")),
        Err(_) => Ok(default),
    }
}

/// The settings every service has; each has defaults that run on a laptop.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    pub name: &'static str,
    pub http_addr: String,
    pub nats_url: String,
    pub database_url: String,
    pub jwt_secret: String,
    /// Replicas of streams and consumers (1 on one node, 3 on a cluster).
    pub nats_replicas: usize,
    /// Deliveries of a failing event before it goes to the DLQ.
    pub max_deliver: i64,
    /// SQLite's `synchronous` setting (`SQLITE_SYNCHRONOUS`: NORMAL or FULL).
    pub durability: crate::db::Durability,
    /// The service's own NATS user (`NATS_USER`, `NATS_PASSWORD`), when the bus has users.
    pub nats_credentials: Option<(String, String)>,
}

pub const DEV_JWT_SECRET: &str = "dev-secret-change-me";

impl ServiceConfig {
    pub fn from_env(name: &'static str, default_port: u16) -> anyhow::Result<Self> {
        let jwt_secret = env_or("JWT_SECRET", DEV_JWT_SECRET);
        if jwt_secret == DEV_JWT_SECRET {
            tracing::warn!("JWT_SECRET is not set: using the development secret");
        }
        Ok(ServiceConfig {
            name,
            http_addr: env_or("HTTP_ADDR", &format!("127.0.0.1:{default_port}")),
            nats_url: env_or("NATS_URL", "nats://127.0.0.1:4222"),
            database_url: env_or("DATABASE_URL", &format!("sqlite://data/{name}.db")),
            jwt_secret,
            nats_replicas: env_parse("NATS_REPLICAS", 1)?,
            max_deliver: env_parse("CONSUMER_MAX_DELIVER", 10)?,
            durability: env_parse("SQLITE_SYNCHRONOUS", crate::db::Durability::Normal)?,
            nats_credentials: match (std::env::var("NATS_USER"), std::env::var("NATS_PASSWORD")) {
                (Ok(user), Ok(password)) => Some((user, password)),
                _ => None,
            },
        })
    }
}

type PeriodicTask = Box<dyn Fn() -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

type ConsumerTask =
    Box<dyn FnOnce(jetstream::Context, CancellationToken) -> BoxFuture<'static, ()> + Send>;

/// A service's connections and background work, before it runs.
pub struct Runtime {
    pub name: &'static str,
    pub db: Db,
    pub nats: async_nats::Client,
    pub js: jetstream::Context,
    pub outbox: Outbox,
    pub auth: Arc<Auth>,
    replicas: usize,
    retry: consumer::RetryPolicy,
    listener: TcpListener,
    consumers: Vec<ConsumerTask>,
    periodic: Vec<(&'static str, Duration, PeriodicTask)>,
    stopping: CancellationToken,
}

impl Runtime {
    /// Connects the database (and migrates it), connects NATS (a service may start while NATS is
    /// down: the client keeps trying) and binds the listener (port 0 allowed).
    pub async fn start(config: &ServiceConfig, migrator: &Migrator) -> anyhow::Result<Runtime> {
        // Install the recorder before anything counts, or early counts are lost.
        crate::telemetry::metrics();
        let db = Db::connect_with(&config.database_url, config.durability).await?;
        db.migrate(migrator).await?;
        let mut options = async_nats::ConnectOptions::new();
        if let Some((user, password)) = &config.nats_credentials {
            options = options.user_and_password(user.clone(), password.clone());
        }
        let nats = options
            .name(config.name)
            .retry_on_initial_connect()
            // A cluster is given as a comma-separated list; the client also learns the other
            // nodes from the one it reaches.
            .connect(
                config
                    .nats_url
                    .split(',')
                    .map(str::trim)
                    .collect::<Vec<_>>(),
            )
            .await
            .with_context(|| format!("connect to NATS at {}", config.nats_url))?;
        let js = jetstream::new(nats.clone());
        let listener = TcpListener::bind(&config.http_addr)
            .await
            .with_context(|| format!("bind HTTP_ADDR {}", config.http_addr))?;
        Ok(Runtime {
            name: config.name,
            outbox: Outbox::new(db.clone()),
            db,
            nats,
            js,
            auth: Auth::new(&config.jwt_secret),
            replicas: config.nats_replicas,
            retry: consumer::RetryPolicy {
                max_deliver: config.max_deliver.max(1),
            },
            listener,
            consumers: Vec::new(),
            periodic: Vec::new(),
            stopping: CancellationToken::new(),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Adds a durable consumer (named after the service) of the events `names` of `E`'s
    /// context, applying each batch in one transaction with the inbox.
    pub fn consume<E: Event, A: Apply<E>>(&mut self, names: &[&str], apply: A) {
        let handler = Arc::new(Transactional::new(
            self.db.clone(),
            self.outbox.clone(),
            E::CONTEXT.stream().to_owned(),
            apply,
        ));
        self.consume_with(names, handler);
    }

    /// Adds a durable consumer with a hand-written batch handler.
    pub fn consume_with<E: Event, H: Handler<E>>(&mut self, names: &[&str], handler: Arc<H>) {
        let mut spec = ConsumerSpec::new(self.name, E::CONTEXT, names, self.replicas);
        spec.retry = self.retry;
        let service = self.name.to_owned();
        self.consumers.push(Box::new(move |js, shutdown| {
            Box::pin(consumer::run::<E, H>(js, service, spec, handler, shutdown))
        }));
    }

    /// Runs `task` every `period` until shutdown (e.g. expiry scans). Its state lives in the
    /// database, so any replica may run it and a restart loses nothing.
    pub fn every<F, Fut>(&mut self, name: &'static str, period: Duration, task: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.periodic
            .push((name, period, Box::new(move || Box::pin(task()))));
    }

    /// Cancelled when the service starts to stop: long-lived responses (server-sent events)
    /// end on it so a graceful shutdown is not held open by them.
    pub fn stopping(&self) -> CancellationToken {
        self.stopping.clone()
    }

    /// The service, ready to run: the runtime with its routes.
    pub fn with_routes(self, routes: Router) -> App {
        App {
            runtime: self,
            routes,
        }
    }

    /// Serves `routes` plus health and metrics until `shutdown`, then stops in order.
    async fn run(self, routes: Router, shutdown: CancellationToken) -> anyhow::Result<()> {
        let readiness = Arc::new(Readiness {
            db: self.db.clone(),
            nats: self.nats.clone(),
            topology: AtomicBool::new(false),
        });
        let addr = self.local_addr();
        let consumers_stop = shutdown.child_token();
        let relay_stop = CancellationToken::new();
        let relay = tokio::spawn(self.outbox.clone().run(self.js.clone(), relay_stop.clone()));
        let mut periodic = JoinSet::new();
        for (name, period, task) in self.periodic {
            let stop = consumers_stop.clone();
            periodic.spawn(async move {
                let mut tick = tokio::time::interval(period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tick.tick() => {}
                    }
                    if let Err(e) = task().await {
                        tracing::warn!(task = name, error = %format!("{e:#}"), "periodic task failed");
                    }
                }
            });
        }
        let background = tokio::spawn(start_consumers(
            self.js.clone(),
            self.replicas,
            self.consumers,
            readiness.clone(),
            consumers_stop,
        ));

        let app = routes
            .merge(health_routes(readiness))
            .route_layer(middleware::from_fn(track_requests))
            .layer(Extension(self.auth.clone()))
            .fallback(not_found_fallback)
            .method_not_allowed_fallback(method_not_allowed_fallback);
        tracing::info!(service = self.name, %addr, "listening");
        // The test harness and the demo read this line to learn the port.
        println!("{} listening on http://{addr}", self.name);

        let stopping = self.stopping.clone();
        let signal = shutdown.clone();
        tokio::spawn(async move {
            signal.cancelled().await;
            stopping.cancel();
        });
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .await
            .context("serve HTTP")?;

        // HTTP has stopped taking requests: let consumers finish their batch, then flush the
        // outbox, then drain NATS so every buffered ack reaches the server.
        shutdown.cancel();
        if tokio::time::timeout(SHUTDOWN_GRACE, background)
            .await
            .is_err()
        {
            tracing::warn!("consumers did not stop in time");
        }
        relay_stop.cancel();
        if tokio::time::timeout(SHUTDOWN_GRACE, relay).await.is_err() {
            tracing::warn!("outbox relay did not flush in time");
        }
        if let Err(e) = self.nats.drain().await {
            tracing::warn!(error = %e, "drain NATS");
        }
        tracing::info!(service = self.name, "stopped");
        Ok(())
    }
}

/// A built service: what `main` and the tests run.
pub struct App {
    runtime: Runtime,
    routes: Router,
}

impl App {
    pub fn local_addr(&self) -> SocketAddr {
        self.runtime.local_addr()
    }

    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.runtime.run(self.routes, shutdown).await
    }
}

/// Ensures the streams (retrying while NATS is away), then runs every consumer until shutdown.
async fn start_consumers(
    js: jetstream::Context,
    replicas: usize,
    consumers: Vec<ConsumerTask>,
    readiness: Arc<Readiness>,
    shutdown: CancellationToken,
) {
    let mut attempt = 0;
    loop {
        match ensure_streams(&js, replicas).await {
            Ok(()) => break,
            Err(e) => {
                attempt += 1;
                tracing::warn!(error = %format!("{e:#}"), attempt, "topology not ensured yet");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(consumer::retry_delay(attempt)) => {}
                }
            }
        }
    }
    readiness.topology.store(true, Ordering::Release);
    let mut tasks = JoinSet::new();
    for start in consumers {
        tasks.spawn(start(js.clone(), shutdown.clone()));
    }
    while tasks.join_next().await.is_some() {}
}

struct Readiness {
    db: Db,
    nats: async_nats::Client,
    topology: AtomicBool,
}

fn health_routes(readiness: Arc<Readiness>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(ready))
        .route(
            "/metrics",
            get(|| async { crate::telemetry::metrics().render() }),
        )
        .with_state(readiness)
}

async fn ready(State(r): State<Arc<Readiness>>) -> Response {
    let database = r.db.ping().await;
    let nats = r.nats.connection_state() == async_nats::connection::State::Connected;
    let topology = r.topology.load(Ordering::Acquire);
    if database && nats && topology {
        Json(json!({"status": "ready", "database": "up", "nats": "up", "topology": "ensured"}))
            .into_response()
    } else {
        Problem::unavailable(format!(
            "not ready: database {}, NATS {}, topology {}",
            up(database),
            up(nats),
            if topology { "ensured" } else { "pending" }
        ))
        .into_response()
    }
}

fn up(ok: bool) -> &'static str {
    if ok { "up" } else { "down" }
}

async fn track_requests(req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let method = req.method().to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method.clone(), "path" => path.clone(), "status" => status).increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "path" => path)
        .record(start.elapsed().as_secs_f64());
    resp
}

/// A token cancelled on SIGTERM or Ctrl-C.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("installing a SIGTERM handler only fails outside a runtime");
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown requested");
        t.cancel();
    });
    token
}
