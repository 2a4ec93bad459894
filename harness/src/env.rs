//! env: the fixture of an in-process service test — its own nats-server, databases and token
//! issuer — and the service itself, built and run as `main` runs it.

use crate::api::Api;
use crate::bus::publish_message;
use crate::database::Databases;
use crate::server::NatsServer;
use crate::wait::eventually;
use nats::messaging::topology::ensure_streams;
use nats::runtime::{Config, Service, ServiceConfig};
use nats::web::auth::{ADMIN_ROLE, Auth};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

/// What an in-process service test needs: its own nats-server, a folder for SQLite files and
/// a token issuer; each test gets fresh ones, so tests run in parallel.
pub struct TestEnv {
    pub nats: NatsServer,
    pub auth: Arc<Auth>,
    secret: String,
    databases: Databases,
    /// The database each service was given, by name.
    urls: std::sync::Mutex<std::collections::HashMap<&'static str, String>>,
    pub dir: TempDir,
    /// How long the services it starts give a request (30 s unless a test says otherwise).
    pub request_timeout: Duration,
}

impl TestEnv {
    pub fn new() -> anyhow::Result<TestEnv> {
        let secret = "test-secret".to_owned();
        let dir = tempfile::Builder::new().prefix("svc-test-").tempdir()?;
        Ok(TestEnv {
            nats: NatsServer::start()?,
            auth: Auth::new(&secret),
            secret,
            databases: Databases::from_env(dir.path().to_path_buf()),
            urls: Default::default(),
            dir,
            request_timeout: nats::web::deadline::DEFAULT,
        })
    }

    /// Config for `name` on a free port with a fresh database of its own.
    async fn config(&self, name: &'static str) -> anyhow::Result<ServiceConfig> {
        let database_url = self.databases.create(name).await?;
        self.urls
            .lock()
            .expect("no test panics while holding it")
            .insert(name, database_url.clone());
        Ok(ServiceConfig {
            name,
            http_addr: "127.0.0.1:0".into(),
            nats_url: self.nats.url(),
            database_url,
            auth: nats::web::auth::AuthConfig::secret(&self.secret),
            nats_replicas: 1,
            max_deliver: 10,
            durability: Default::default(),
            // Tests run side by side on one PostgreSQL server.
            database_connections: 4,
            nats_credentials: None,
            retention: Default::default(),
            housekeeping_every: nats::runtime::housekeeping::EVERY,
            stream_limits: Default::default(),
            request_timeout: self.request_timeout,
        })
    }

    /// Builds service `S` with `settings` on a fresh database and runs it in the background for
    /// the rest of the test; answers its API once `/readyz` says ready.
    pub async fn start<S: Service>(&self, settings: S::Settings) -> anyhow::Result<Api> {
        // The operator's step of a deployment: every stream in place before any service.
        ensure_streams(&self.jetstream().await?, 1, Default::default()).await?;
        let config = Config {
            service: self.config(S::NAME).await?,
            settings,
        };
        let app = nats::runtime::build::<S>(config).await?;
        let addr = app.local_addr();
        tokio::spawn(async move {
            if let Err(e) = app.run_until_stopped(CancellationToken::new()).await {
                eprintln!("service stopped with an error: {e:#}");
            }
        });
        let api = Api::new(format!("http://{addr}"));
        eventually(
            "the service to be ready",
            Duration::from_secs(20),
            async || Ok(api.get("/readyz", None).await?.is(200).then_some(())),
        )
        .await?;
        Ok(api)
    }

    /// The database service `name` was last given.
    pub fn database_url(&self, name: &str) -> Option<String> {
        self.urls
            .lock()
            .expect("no test panics while holding it")
            .get(name)
            .cloned()
    }

    pub fn user(&self, sub: &str) -> String {
        self.auth.issue(sub, None, Duration::from_secs(600))
    }

    pub fn admin(&self) -> String {
        self.auth
            .issue("admin", Some(ADMIN_ROLE), Duration::from_secs(600))
    }

    pub async fn jetstream(&self) -> anyhow::Result<async_nats::jetstream::Context> {
        let client = async_nats::connect(self.nats.url()).await?;
        Ok(async_nats::jetstream::new(client))
    }

    /// Waits for the last message on `subject` in `stream` (e.g. an event a service emitted).
    pub async fn event(
        &self,
        stream: &str,
        subject: &str,
    ) -> anyhow::Result<async_nats::jetstream::message::StreamMessage> {
        let js = self.jetstream().await?;
        eventually(subject, Duration::from_secs(15), async || {
            Ok(js
                .get_stream(stream)
                .await?
                .get_last_raw_message_by_subject(subject)
                .await
                .ok())
        })
        .await
    }

    /// Waits until `durable` has been given everything in `stream` and has acked it all.
    pub async fn handled_all(&self, stream: &str, durable: &str) -> anyhow::Result<()> {
        let js = self.jetstream().await?;
        eventually(
            &format!("{durable} to handle all of {stream}"),
            Duration::from_secs(15),
            async || {
                Ok(nats::messaging::topology::caught_up(&js, stream, durable)
                    .await?
                    .then_some(()))
            },
        )
        .await
    }

    /// Publishes `event` as `source` would, with its envelope; returns the message's id.
    pub async fn publish<E: contracts::Event>(
        &self,
        source: &str,
        event: &E,
    ) -> anyhow::Result<uuid::Uuid> {
        let js = self.jetstream().await?;
        let msg = contracts::Message::new(source, event, None, time::OffsetDateTime::now_utc());
        publish_message(&js, &msg).await?;
        Ok(msg.id)
    }
}
