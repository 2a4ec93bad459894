//! env: the fixture of an in-process service test — its own nats-server, SQLite folder and
//! token issuer.

use super::NatsServer;
use crate::auth::{ADMIN_ROLE, Auth};
use crate::service::ServiceConfig;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

/// What an in-process service test needs: its own nats-server, a folder for SQLite files and
/// a token issuer; each test gets fresh ones, so tests run in parallel.
pub struct TestEnv {
    pub nats: NatsServer,
    pub auth: Arc<Auth>,
    secret: String,
    databases: super::Databases,
    pub dir: TempDir,
}

impl TestEnv {
    pub fn new() -> anyhow::Result<TestEnv> {
        let secret = "test-secret".to_owned();
        let dir = tempfile::Builder::new().prefix("svc-test-").tempdir()?;
        Ok(TestEnv {
            nats: NatsServer::start()?,
            auth: Auth::new(&secret),
            secret,
            databases: super::Databases::from_env(dir.path().to_path_buf()),
            dir,
        })
    }

    /// Config for `name` on a free port with a fresh database of its own.
    pub async fn config(&self, name: &'static str) -> anyhow::Result<ServiceConfig> {
        Ok(ServiceConfig {
            name,
            http_addr: "127.0.0.1:0".into(),
            nats_url: self.nats.url(),
            database_url: self.databases.create(name).await?,
            jwt_secret: self.secret.clone(),
            nats_replicas: 1,
            max_deliver: 10,
            durability: Default::default(),
            nats_credentials: None,
        })
    }

    /// Runs a built service in the background for the rest of the test; answers its API once
    /// `/readyz` says ready.
    pub async fn run<F>(&self, addr: std::net::SocketAddr, run: F) -> anyhow::Result<super::Api>
    where
        F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        tokio::spawn(async move {
            if let Err(e) = run.await {
                eprintln!("service stopped with an error: {e:#}");
            }
        });
        let api = super::Api::new(format!("http://{addr}"));
        super::eventually(
            "the service to be ready",
            Duration::from_secs(20),
            async || Ok(api.get("/readyz", None).await?.is(200).then_some(())),
        )
        .await?;
        Ok(api)
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
        super::eventually(subject, Duration::from_secs(15), async || {
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
        super::eventually(
            &format!("{durable} to handle all of {stream}"),
            Duration::from_secs(15),
            async || {
                Ok(crate::topology::caught_up(&js, stream, durable)
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

/// Publishes a prepared message (headers included) and waits for the broker's ack.
pub async fn publish_message(
    js: &async_nats::jetstream::Context,
    msg: &contracts::Message,
) -> anyhow::Result<()> {
    let headers = crate::outbox::header_map(&msg.headers);
    js.publish_with_headers(msg.subject.clone(), headers, msg.payload.clone().into())
        .await?
        .await?;
    Ok(())
}
