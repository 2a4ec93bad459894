//! startup: builds the service from config (database, NATS, listener, consumers, routes); used
//! by `main` and by the tests alike.

use crate::SERVICE;
use crate::events::{
    CONCERT_EVENTS, HoldKeeper, InventoryBuilder, PAYMENT_EVENTS, RESERVATION_EVENTS,
};
use crate::expiry;
use crate::http::{AppState, Limits, router};
use contracts::{ConcertEvent, PaymentEvent, ReservationEvent};
use platform::service::{App, Runtime, ServiceConfig, env_parse};
use std::time::Duration;

/// How often deadlines are checked: a hold is released at most this late.
const HOLD_SCAN: Duration = Duration::from_millis(200);
const TOKEN_SCAN: Duration = Duration::from_secs(1);

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

/// Connects, migrates, subscribes and routes: the service ready to run.
pub async fn build(config: Config) -> anyhow::Result<App> {
    let mut runtime = Runtime::start(&config.service, &MIGRATOR).await?;
    runtime.consume::<ConcertEvent, _>(CONCERT_EVENTS, InventoryBuilder);
    let limit = config.limits.queue_active_limit;
    runtime.consume::<PaymentEvent, _>(
        PAYMENT_EVENTS,
        HoldKeeper {
            queue_active_limit: limit,
        },
    );
    runtime.consume::<ReservationEvent, _>(
        RESERVATION_EVENTS,
        HoldKeeper {
            queue_active_limit: limit,
        },
    );
    let (db, outbox, limits) = (
        runtime.db.clone(),
        runtime.outbox.clone(),
        config.limits.clone(),
    );
    runtime.every("expire holds", HOLD_SCAN, move || {
        let (db, outbox, limits) = (db.clone(), outbox.clone(), limits.clone());
        async move { expiry::expire_holds(&db, &outbox, &limits).await.map(drop) }
    });
    let (db, limits) = (runtime.db.clone(), config.limits.clone());
    runtime.every("expire queue tokens", TOKEN_SCAN, move || {
        let (db, limits) = (db.clone(), limits.clone());
        async move { expiry::expire_tokens(&db, &limits).await }
    });
    let router = router(AppState {
        db: runtime.db.clone(),
        outbox: runtime.outbox.clone(),
        js: runtime.js.clone(),
        limits: config.limits,
    });
    Ok(runtime.with_routes(router))
}
