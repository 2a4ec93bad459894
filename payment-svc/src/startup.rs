//! startup: builds the service from config (database, NATS, listener, consumers, routes); used
//! by `main` and by the tests alike.

use crate::SERVICE;
use crate::events::{Cashier, RESERVATION_EVENTS, SEAT_EVENTS};
use crate::http::{AppState, router};
use contracts::{ReservationEvent, SeatEvent};
use platform::service::{App, Runtime, ServiceConfig};

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

/// Connects, migrates, subscribes and routes: the service ready to run.
pub async fn build(config: Config) -> anyhow::Result<App> {
    let mut runtime = Runtime::start(&config.service, &MIGRATOR).await?;
    runtime.consume::<ReservationEvent, _>(RESERVATION_EVENTS, Cashier);
    runtime.consume::<SeatEvent, _>(SEAT_EVENTS, Cashier);
    let router = router(AppState {
        db: runtime.db.clone(),
    });
    Ok(runtime.with_routes(router))
}
