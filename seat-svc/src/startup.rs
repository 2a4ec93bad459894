//! startup: builds the app from config (database, NATS, listener, consumers, routes); used by
//! `main` and by the tests alike.

use crate::SERVICE;
use crate::events::{CONCERT_EVENTS, InventoryBuilder, PAYMENT_EVENTS, PaymentReactions};
use crate::http::{AppState, Limits, router};
use axum::Router;
use contracts::{ConcertEvent, PaymentEvent};
use platform::service::{Runtime, ServiceConfig, env_parse};
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Clone, Debug)]
pub struct Config {
    pub service: ServiceConfig,
    pub limits: Limits,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let limits = Limits {
            hold_ttl: Duration::from_secs(env_parse("SEAT_HOLD_TTL_SECS", 300)?),
            queue_active_limit: env_parse("QUEUE_ACTIVE_LIMIT", 100)?,
            queue_token_ttl: Duration::from_secs(env_parse("QUEUE_TOKEN_TTL_SECS", 600)?),
        };
        anyhow::ensure!(
            limits.queue_active_limit > 0,
            "QUEUE_ACTIVE_LIMIT must be at least 1"
        );
        anyhow::ensure!(
            !limits.hold_ttl.is_zero(),
            "SEAT_HOLD_TTL_SECS must be at least 1"
        );
        Ok(Config {
            service: ServiceConfig::from_env(SERVICE, 8082)?,
            limits,
        })
    }
}

pub struct App {
    runtime: Runtime,
    router: Router,
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let mut runtime = Runtime::start(&config.service, &MIGRATOR).await?;
        runtime.consume::<ConcertEvent, _>(CONCERT_EVENTS, InventoryBuilder);
        runtime.consume::<PaymentEvent, _>(PAYMENT_EVENTS, PaymentReactions);
        let router = router(AppState {
            db: runtime.db.clone(),
            outbox: runtime.outbox.clone(),
            auth: runtime.auth.clone(),
            js: runtime.js.clone(),
            limits: config.limits,
        });
        Ok(App { runtime, router })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.runtime.local_addr()
    }

    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.runtime.run(self.router, shutdown).await
    }
}
