//! app: a service's connections and background work — the database and its unit of work, NATS,
//! the listener, the outbox relay, consumers and periodic tasks — and the order they stop in:
//! HTTP first, then consumers finish the batch in hand, then the relay flushes, then NATS drains.

use super::config::ServiceConfig;
use super::health::{self, Readiness};
use super::housekeeping;
use super::state::{AppState, Shared};
use crate::db::Db;
use crate::messaging::consumer::{Consumer, Down, EventHandler};
use crate::messaging::relay::Relay;
use crate::messaging::topology::{
    ConsumerSpec, RetryPolicy, StreamLimits, Subscription, TopologyError, ensure_own_streams,
    retry_delay,
};
use crate::messaging::users;
use crate::unit_of_work::{UnitOfWork, inbox, outbox};
use crate::web::Auth;
use crate::web::problem::{method_not_allowed_fallback, not_found_fallback};
use crate::web::shed::Door;
use anyhow::Context as _;
use async_nats::jetstream;
use axum::{Extension, Router, middleware};
use contracts::Event;
use futures::future::BoxFuture;
use sqlx::migrate::Migrator;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

/// How long shutdown waits for consumers and the relay before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How often the clock offset to the database is measured again.
const CLOCK_SYNC: Duration = Duration::from_secs(10);

type PeriodicTask = Box<dyn Fn() -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

type ConsumerTask =
    Box<dyn FnOnce(jetstream::Context, CancellationToken) -> BoxFuture<'static, ()> + Send>;

/// A service's connections and background work, before it runs.
pub struct Runtime {
    name: &'static str,
    db: Db,
    uow: UnitOfWork,
    /// One for the service, whichever of its routers admits arrivals.
    door: Door,
    nats: async_nats::Client,
    js: jetstream::Context,
    auth: Arc<Auth>,
    /// The context whose stream this service owns.
    context: contracts::Context,
    replicas: usize,
    limits: StreamLimits,
    request_timeout: Duration,
    retry: RetryPolicy,
    listener: TcpListener,
    consumers: Vec<ConsumerTask>,
    /// The streams its consumers read, for their lag gauges.
    consumed: Vec<&'static str>,
    periodic: Vec<(&'static str, Duration, PeriodicTask)>,
    /// Consumers restarting after an error or a panic: `/readyz` reports them.
    down: Down,
    stopping: CancellationToken,
}

impl Runtime {
    /// Connects the database (and migrates it), connects NATS (a service may start while NATS is
    /// down: the client keeps trying) and binds the listener (port 0 allowed).
    pub async fn start(config: &ServiceConfig, migrator: &Migrator) -> anyhow::Result<Runtime> {
        // Install the recorder before anything counts, or early counts are lost.
        super::telemetry::metrics();
        let uow = Self::database(config, migrator).await?;
        let db = uow.db().clone();
        let nats = users::connect_options(config.name, config.nats_credentials.as_ref())
            .retry_on_initial_connect()
            .connect(users::nodes(&config.nats_url))
            .await
            .with_context(|| format!("connect to NATS at {}", config.nats_url))?;
        let js = jetstream::new(nats.clone());
        let listener = TcpListener::bind(&config.http_addr)
            .await
            .with_context(|| format!("bind HTTP_ADDR {}", config.http_addr))?;
        // Clocks drift: measure this machine's against the database's again and again.
        let clock_db = db.clone();
        let (sweeper, retention) = (uow.clone(), config.retention);
        let periodic: Vec<(&'static str, Duration, PeriodicTask)> = vec![
            (
                "clock",
                CLOCK_SYNC,
                Box::new(move || {
                    let db = clock_db.clone();
                    Box::pin(async move { db.sync_clock().await })
                }),
            ),
            (
                "housekeeping",
                config.housekeeping_every,
                Box::new(move || {
                    let uow = sweeper.clone();
                    Box::pin(async move { housekeeping::sweep(&uow, retention).await.map(drop) })
                }),
            ),
            (
                "outbox gauges",
                super::gauges::EVERY,
                Box::new(super::gauges::outbox_task(db.clone())),
            ),
        ];
        Ok(Runtime {
            name: config.name,
            door: Door::new(uow.load().clone()),
            uow,
            db,
            nats,
            js,
            auth: Auth::from_config(&config.auth)?,
            context: contracts::Context::ALL
                .into_iter()
                .find(|c| c.service() == config.name)
                .with_context(|| format!("{} is not the service of any context", config.name))?,
            replicas: config.nats_replicas,
            limits: config.stream_limits,
            request_timeout: config.request_timeout,
            retry: RetryPolicy {
                max_deliver: config.max_deliver.max(1),
            },
            listener,
            consumers: Vec::new(),
            consumed: Vec::new(),
            periodic,
            down: Down::default(),
            stopping: CancellationToken::new(),
        })
    }

    /// The service's database, migrated, and the unit of work its state changes run in.
    pub async fn database(
        config: &ServiceConfig,
        migrator: &Migrator,
    ) -> anyhow::Result<UnitOfWork> {
        let db = Db::connect_with(
            &config.database_url,
            config.durability,
            config.database_connections,
        )
        .await?;
        db.ensure(&own_tables(db.backend())).await?;
        db.migrate(migrator).await?;
        Ok(UnitOfWork::new(db, config.name))
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where the service's state changes run.
    pub fn uow(&self) -> UnitOfWork {
        self.uow.clone()
    }

    /// The database, for reads.
    pub fn db(&self) -> Db {
        self.db.clone()
    }

    /// Adds a durable consumer (named after the service, shared by its replicas) of the events
    /// of `subscription`, handling each batch as units of work with the inbox.
    pub fn consume<E: Event, H: EventHandler<E>>(
        &mut self,
        subscription: Subscription<E>,
        handler: H,
    ) {
        let mut spec = ConsumerSpec::new(self.name, subscription, self.replicas);
        spec.retry = self.retry;
        self.consumed.push(spec.stream);
        let consumer = Consumer::new(spec, self.name, self.uow.clone(), handler)
            .reporting_to(self.down.clone());
        self.consumers.push(Box::new(move |js, shutdown| {
            Box::pin(consumer.run(js, shutdown))
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

    /// The state its HTTP handlers share, with the service's own `settings`.
    pub fn state<S>(&self, settings: S) -> AppState<S> {
        AppState::new(Shared {
            name: self.name,
            uow: self.uow.clone(),
            db: self.db.clone(),
            js: self.js.clone(),
            door: self.door.clone(),
            // Long-lived responses (server-sent events) end on it, so a graceful shutdown is
            // not held open by them.
            stopping: self.stopping.clone(),
            settings,
        })
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
            consumers_down: self.down.clone(),
        });
        let addr = self.local_addr();
        let consumers_stop = shutdown.child_token();
        let relay_stop = CancellationToken::new();
        let relay =
            tokio::spawn(Relay::new(self.uow.clone()).run(self.js.clone(), relay_stop.clone()));
        // The bus gauges, now that the streams its consumers read are known.
        let mut tasks = self.periodic;
        let bus = super::gauges::bus_task(self.name, self.js.clone(), self.consumed);
        tasks.push(("bus gauges", super::gauges::EVERY, Box::new(bus)));
        let mut periodic = JoinSet::new();
        for (name, period, task) in tasks {
            periodic.spawn(every(name, period, task, consumers_stop.clone()));
        }
        let background = tokio::spawn(start_consumers(
            self.js.clone(),
            self.context,
            self.replicas,
            self.limits,
            self.consumers,
            readiness.clone(),
            consumers_stop,
        ));

        let app = routes
            .merge(health::routes(readiness))
            .route_layer(middleware::from_fn(health::track_requests))
            .layer(middleware::from_fn_with_state(
                self.request_timeout,
                crate::web::deadline::bounded,
            ))
            .layer(Extension(self.auth.clone()))
            .layer(Extension(crate::web::command::InFlight::default()))
            // Every request has an id (the client's `X-Request-Id`, or one made here), and every
            // answer carries it: the cause of the events a command emits.
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
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
        // Turned into services once: served as a bare `Router`, axum does it again for every
        // connection (every handler boxed, every layer applied), and a rush of browsers opening
        // connections made that a quarter of a service's CPU (page faults for the fresh copies).
        axum::serve(self.listener, app.into_make_service())
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
        crate::traces::flush(); // the last spans leave before the process does
        tracing::info!(service = self.name, "stopped");
        Ok(())
    }
}

/// The tables the runtime keeps in every service's database, beside the service's own: the
/// outbox, the inbox and the commands' idempotency keys (created if missing).
pub fn own_tables(backend: crate::db::Backend) -> Vec<std::borrow::Cow<'static, str>> {
    let mut ddl = outbox::ddl(backend);
    ddl.extend(inbox::ddl());
    ddl.extend(crate::web::command::ddl());
    ddl
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

/// Runs `task` every `period` until `stop`; a failed run is logged and the next one comes.
async fn every(name: &'static str, period: Duration, task: PeriodicTask, stop: CancellationToken) {
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
}

/// Ensures the streams (retrying while NATS is away), then runs every consumer until shutdown.
async fn start_consumers(
    js: jetstream::Context,
    own: contracts::Context,
    replicas: usize,
    limits: StreamLimits,
    consumers: Vec<ConsumerTask>,
    readiness: Arc<Readiness>,
    shutdown: CancellationToken,
) {
    let mut attempt = 0;
    loop {
        match ensure_own_streams(&js, own, replicas, limits).await {
            Ok(()) => break,
            Err(TopologyError::Mismatch(why)) => {
                attempt += 1;
                // Not ready until an operator settles it; said loudly, retried slowly.
                tracing::error!(%why, "this service's streams are not as configured");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(retry_delay(8)) => {}
                }
            }
            Err(TopologyError::Unavailable(e)) => {
                attempt += 1;
                tracing::warn!(error = %format!("{e:#}"), attempt, "topology not ensured yet");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(retry_delay(attempt)) => {}
                }
            }
        }
    }
    readiness.topology_ensured();
    let mut tasks = JoinSet::new();
    for start in consumers {
        tasks.spawn(start(js.clone(), shutdown.clone()));
    }
    while tasks.join_next().await.is_some() {}
}
