//! system: the whole system for a test or a tool — NATS (one server, a secured one, or a
//! three-node cluster) and the four services as processes (with replicas if asked), each on a
//! database of its own (SQLite files in one temporary folder, or PostgreSQL).

use crate::invariants::{Audits, Databases, Report};
pub use crate::options::Options;
use crate::process::{SERVICES, ServiceProcess};
use anyhow::Context as _;
use harness::{Api, NatsServer, eventually};
use nats::web::Auth;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The client URL of every NATS node.
fn node_urls(first: &NatsServer, peers: &[NatsServer]) -> Vec<String> {
    std::iter::once(first)
        .chain(peers)
        .map(NatsServer::url)
        .collect()
}

/// NATS plus the four services, each with its own SQLite file under one temporary folder.
pub struct System {
    pub concert: ServiceProcess,
    pub seat: ServiceProcess,
    pub reservation: ServiceProcess,
    pub payment: ServiceProcess,
    /// Further processes of seat, reservation and payment when `replicas` > 1.
    pub replicas: Vec<ServiceProcess>,
    pub nats: NatsServer,
    /// The other nodes when the bus is a cluster.
    pub peers: Vec<NatsServer>,
    auth: Arc<Auth>,
    /// The secret tokens are signed with (a gateway in front of this system verifies with it).
    secret: String,
    urls: Databases,
    /// What makes each service's database unavailable, when `outages` asked for it.
    breakers: Vec<(&'static str, harness::Breaker)>,
    // Dropped after the processes above, so their databases are no longer in use.
    databases: harness::Databases,
    dir: tempfile::TempDir,
}

/// Password of every NATS user of a secured test bus (the `admin` user's too).
pub const BUS_PASSWORD: &str = "bus-secret";

impl System {
    pub async fn start() -> anyhow::Result<System> {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> anyhow::Result<System> {
        let secured = opts.secured || opts.cluster;
        let (nats, peers) = if opts.cluster {
            let mut nodes = harness::NatsCluster::start(3, BUS_PASSWORD)?.nodes;
            (nodes.remove(0), nodes)
        } else {
            let mut config = String::new();
            if secured {
                config += &nats::messaging::users::authorization_block(|_| BUS_PASSWORD.into());
            }
            if opts.sync_always {
                config += "\njetstream { sync_interval: always }\n";
            }
            (NatsServer::start_with_config(&config)?, Vec::new())
        };
        let nats_url = node_urls(&nats, &peers).join(",");
        // E2E_KEEP: the system's folder (logs, SQLite files) stays for a look after the run.
        let dir = tempfile::Builder::new()
            .prefix("ticketing-e2e-")
            .disable_cleanup(std::env::var_os("E2E_KEEP").is_some())
            .tempdir()?;
        let server = opts.postgres_server.clone();
        let databases = harness::Databases::new(opts.postgres, server, dir.path().into());
        // A fresh random secret per system: services refuse short or publicly known ones.
        let secret = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let [concert, seat, reservation, payment] = SERVICES;
        let mut breakers = Vec::new();
        let mut create = async |name: &'static str| -> anyhow::Result<String> {
            if !opts.outages {
                return databases.create(name).await;
            }
            let (url, breaker) = databases.create_breakable(name).await?;
            breakers.push((name, breaker));
            Ok(url)
        };
        let urls = Databases {
            concert: create(concert).await?,
            seat: create(seat).await?,
            reservation: create(reservation).await?,
            payment: create(payment).await?,
        };
        let url_of = |name: &str| {
            [
                (concert, &urls.concert),
                (seat, &urls.seat),
                (reservation, &urls.reservation),
                (payment, &urls.payment),
            ]
            .into_iter()
            .find_map(|(n, url)| (n == name).then(|| url.clone()))
            .unwrap_or_default()
        };
        let spawn = |name: &str| -> anyhow::Result<ServiceProcess> {
            let mut env = vec![
                ("HTTP_ADDR".into(), "127.0.0.1:0".into()),
                ("NATS_URL".into(), nats_url.clone()),
                (
                    "NATS_REPLICAS".into(),
                    if opts.cluster { "3" } else { "1" }.into(),
                ),
                ("DATABASE_URL".into(), url_of(name)),
                ("JWT_SECRET".into(), secret.clone()),
                // E2E_SERVICE_LOG: the services' log filter, e.g. `sqlx=debug` to see statements.
                (
                    "RUST_LOG".into(),
                    std::env::var("E2E_SERVICE_LOG").unwrap_or_else(|_| {
                        let handled = if opts.log_json {
                            ",nats::messaging::consumer=debug"
                        } else {
                            ""
                        };
                        format!("info{handled}")
                    }),
                ),
                (
                    "LOG_FORMAT".into(),
                    if opts.log_json { "json" } else { "text" }.into(),
                ),
                ("CONSUMER_MAX_DELIVER".into(), opts.max_deliver.to_string()),
                (
                    "DATABASE_MAX_CONNECTIONS".into(),
                    opts.db_connections.to_string(),
                ),
            ];
            if let Some(endpoint) = &opts.otlp_endpoint {
                env.push(("OTEL_EXPORTER_OTLP_ENDPOINT".into(), endpoint.clone()));
                // Spans leave within a fifth of a second, not the default five.
                env.push(("OTEL_BSP_SCHEDULE_DELAY".into(), "200".into()));
            }
            if secured {
                env.push(("NATS_USER".into(), name.to_owned()));
                env.push(("NATS_PASSWORD".into(), BUS_PASSWORD.into()));
            }
            if name == reservation {
                env.push((
                    "SAGA_STUCK_AFTER_SECS".into(),
                    opts.saga_stuck_after_secs.to_string(),
                ));
            }
            if name == seat {
                env.push(("SEAT_HOLD_TTL_SECS".into(), opts.hold_ttl_secs.to_string()));
                env.push((
                    "QUEUE_ACTIVE_LIMIT".into(),
                    opts.queue_active_limit.to_string(),
                ));
                env.push((
                    "QUEUE_TOKEN_TTL_SECS".into(),
                    opts.queue_token_ttl_secs.to_string(),
                ));
            }
            ServiceProcess::spawn(name, env, dir.path().join(format!("{name}.log")))
        };
        let (concert, seat, reservation, payment) = (
            spawn(concert)?,
            spawn(seat)?,
            spawn(reservation)?,
            spawn(payment)?,
        );
        let mut replicas = Vec::new();
        for n in 2..=opts.replicas {
            for p in [&seat, &reservation, &payment] {
                replicas.push(p.replica(n)?);
            }
        }
        let system = System {
            concert,
            seat,
            reservation,
            payment,
            replicas,
            nats,
            peers,
            auth: Auth::new(&secret),
            secret,
            urls,
            breakers,
            databases,
            dir,
        };
        for p in system.services().into_iter().chain(&system.replicas) {
            system.wait_ready(p).await?;
        }
        Ok(system)
    }

    /// JetStream as `user` of a secured bus (`admin` may do anything).
    pub async fn bus_as(&self, user: &str) -> anyhow::Result<async_nats::jetstream::Context> {
        let client =
            async_nats::ConnectOptions::with_user_and_password(user.into(), BUS_PASSWORD.into())
                .connect(node_urls(&self.nats, &self.peers))
                .await
                .with_context(|| format!("connect to NATS as {user}"))?;
        Ok(async_nats::jetstream::new(client))
    }

    /// A client of a secured bus as `user`, with replies on that user's own inbox prefix, that
    /// records what the server denies it.
    pub async fn watched_as(&self, user: &str) -> anyhow::Result<harness::Watched> {
        harness::Watched::connect(
            node_urls(&self.nats, &self.peers),
            user,
            BUS_PASSWORD,
            &nats::messaging::users::inbox_prefix(user),
        )
        .await
    }

    /// Process `i`: the four services in the order of [`SERVICES`], then the replicas.
    pub fn service_mut(&mut self, i: usize) -> &mut ServiceProcess {
        match i {
            0 => &mut self.concert,
            1 => &mut self.seat,
            2 => &mut self.reservation,
            3 => &mut self.payment,
            n => &mut self.replicas[n - 4],
        }
    }

    /// NATS node `i`: the first node, then its peers.
    pub fn nats_node_mut(&mut self, i: usize) -> &mut NatsServer {
        match i {
            0 => &mut self.nats,
            n => &mut self.peers[n - 1],
        }
    }

    pub fn services(&self) -> [&ServiceProcess; 4] {
        [&self.concert, &self.seat, &self.reservation, &self.payment]
    }

    pub async fn wait_ready(&self, p: &ServiceProcess) -> anyhow::Result<()> {
        let api = p.api();
        eventually(
            &format!("{} to be ready", p.name),
            Duration::from_secs(30),
            async || {
                let reply = api.get("/readyz", None).await?;
                anyhow::ensure!(reply.is(200), "{}", reply.body);
                Ok(Some(()))
            },
        )
        .await
        .with_context(|| format!("{} log:\n{}", p.name, p.log_tail(20)))
    }

    /// The system as a frontend sees it, to hand to tasks.
    pub fn client(&self) -> crate::frontend::Client {
        crate::frontend::Client {
            concert: self.concert.api(),
            seat: self.seat.api(),
            reservation: self.reservation.api(),
            payment: self.payment.api(),
            auth: self.auth.clone(),
        }
    }

    /// The secret tokens are signed with, for a gateway in front of this system.
    pub(crate) fn secret(&self) -> &str {
        &self.secret
    }

    /// What makes `service`'s database unavailable (with `Options::outages`).
    pub fn breaker(&self, service: &str) -> Option<&harness::Breaker> {
        self.breakers
            .iter()
            .find_map(|(name, b)| (*name == service).then_some(b))
    }

    /// The databases of the four services.
    pub fn databases(&self) -> Databases {
        self.urls.clone()
    }

    /// What the four services hold, read through their audit functions.
    pub async fn audits(&self) -> anyhow::Result<Audits> {
        Audits::connect(&self.urls).await
    }

    /// Whether the services run on PostgreSQL (`TEST_DATABASE=postgres`).
    pub fn on_postgres(&self) -> bool {
        self.databases.is_postgres()
    }

    /// Waits until the broker has let go of the pull requests of `service`, whose process was
    /// killed: one it still counted would be handed the next events, and they would come again
    /// only after the consumer's ack wait (30 s). That is what a crash may cost, not what a
    /// service that is down does.
    pub async fn let_go(&self, service: &str) -> anyhow::Result<()> {
        use async_nats::jetstream::ErrorCode;
        use async_nats::jetstream::consumer::pull;
        use async_nats::jetstream::stream::ConsumerErrorKind;
        let bus = self.bus_as("admin").await?;
        eventually(
            &format!("the broker to let go of {service}'s pull requests"),
            Duration::from_secs(20),
            async || {
                let mut found = 0;
                for context in contracts::Context::ALL {
                    let consumer = bus
                        .get_consumer_from_stream::<pull::Config, _, _>(service, context.stream())
                        .await;
                    let mut consumer = match consumer {
                        Ok(consumer) => consumer,
                        // Not every service consumes every stream.
                        Err(e)
                            if matches!(e.kind(), ConsumerErrorKind::JetStream(j)
                            if j.error_code() == ErrorCode::CONSUMER_NOT_FOUND) =>
                        {
                            continue;
                        }
                        Err(e) => return Err(e.into()),
                    };
                    found += 1;
                    if consumer.info().await?.num_waiting > 0 {
                        return Ok(None);
                    }
                }
                anyhow::ensure!(found > 0, "{service} has no consumer on the bus");
                Ok(Some(()))
            },
        )
        .await
    }

    /// Waits until every saga is terminal and the view has caught up, then checks the
    /// invariants; the report says what is wrong, if anything.
    pub async fn settle(&self, within: Duration) -> anyhow::Result<Report> {
        let audits = self.audits().await?;
        // One connection for every look at the DLQ (on an open bus the credentials are ignored).
        let bus = self.bus_as("admin").await?;
        let mut last = None;
        let settled = eventually(
            "every saga to finish and the invariants to hold",
            within,
            async || {
                let mut report = crate::invariants::check(&audits).await?;
                // 7. Nothing dead-lettered: every event was handled by every consumer.
                let dead = harness::stream_messages(&bus, contracts::DLQ_STREAM).await?;
                if dead > 0 {
                    report.violations.push(format!("{dead} events in the DLQ"));
                }
                let done = report.is_clean();
                last = Some(report);
                Ok(done.then_some(()))
            },
        )
        .await;
        let report = last.expect("checked at least once");
        settled.map_err(|e| anyhow::anyhow!("{e}: {report}"))?;
        Ok(report)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last lines of every service log, for a failing test's message.
    pub fn logs_tail(&self, lines: usize) -> String {
        self.services()
            .into_iter()
            .chain(&self.replicas)
            .map(|p| format!("--- {} ---\n{}", p.name, p.log_tail(lines)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl crate::frontend::Frontend for System {
    fn concert(&self) -> Api {
        self.concert.api()
    }
    fn seat(&self) -> Api {
        self.seat.api()
    }
    fn reservation(&self) -> Api {
        self.reservation.api()
    }
    fn payment(&self) -> Api {
        self.payment.api()
    }
    fn auth(&self) -> &Auth {
        &self.auth
    }
}
