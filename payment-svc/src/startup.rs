//! startup: builds the app from config (database, NATS, listener, consumers, routes); used by
//! `main` and by the tests alike.

use crate::SERVICE;
use crate::events::{Cashier, RESERVATION_EVENTS};
use crate::http::{AppState, router};
use axum::Router;
use contracts::ReservationEvent;
use platform::service::{Runtime, ServiceConfig};
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Clone, Debug)]
pub struct Config {
    pub service: ServiceConfig,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Config {
            service: ServiceConfig::from_env(SERVICE, 8084)?,
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
        runtime.consume::<ReservationEvent, _>(RESERVATION_EVENTS, Cashier);
        let router = router(AppState {
            db: runtime.db.clone(),
            auth: runtime.auth.clone(),
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
