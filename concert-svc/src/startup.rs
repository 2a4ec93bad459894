//! startup: builds the service from config (database, NATS, listener, consumers, routes); used
//! by `main` and by the tests alike.

use crate::SERVICE;
use crate::events::{SEAT_EVENTS, ViewUpdater};
use crate::http::{AppState, router};
use contracts::SeatEvent;
use platform::service::{App, Runtime, ServiceConfig};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Clone, Debug)]
pub struct Config {
    pub service: ServiceConfig,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Config {
            service: ServiceConfig::from_env(SERVICE, 8081)?,
        })
    }
}

/// Connects, migrates, subscribes and routes: the service ready to run.
pub async fn build(config: Config) -> anyhow::Result<App> {
    let mut runtime = Runtime::start(&config.service, &MIGRATOR).await?;
    runtime.consume::<SeatEvent, _>(SEAT_EVENTS, ViewUpdater);
    let router = router(AppState {
        db: runtime.db.clone(),
        outbox: runtime.outbox.clone(),
        js: runtime.js.clone(),
    });
    Ok(runtime.with_routes(router))
}
