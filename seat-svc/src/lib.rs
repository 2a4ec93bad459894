//! seat-svc: seat inventory per schedule, holds that expire, and the waiting queue that admits
//! users to hold seats.
//!
//! # Layout
//! - [`inventory`]: the schedules and seats, built from `concert.schedule_opened`.
//! - [`queue`]: queue tokens: who is admitted to hold seats, in order (`POST
//!   /schedules/{id}/queue`, `GET /queue/{token}`).
//! - [`holds`]: holding seats (`POST /schedules/{id}/holds`) and settling a hold when its payment
//!   completes or fails or its reservation is cancelled.
//! - [`expiry`]: the deadline scans that release holds and expire idle tokens.
//! - [`config`]: the hold time to live and the queue's limits.
//! - [`audit`]: seats and holds, for the whole-system checks.
//!
//! Each concept has its `domain` (pure rules), `store` (SQL) and `http` handlers where it has
//! them; every state change runs as a unit of work (`nats::unit_of_work`).

pub mod audit;
pub mod config;
pub mod expiry;
pub mod holds;
pub mod inventory;
pub mod queue;

use axum::Router;
use config::Limits;
use contracts::{ConcertEvent, PaymentEvent, ReservationEvent};
use nats::runtime::{Runtime, Service};
use std::time::Duration;

/// How often hold deadlines are checked: a hold is released at most this late.
const HOLD_SCAN: Duration = Duration::from_millis(200);
const TOKEN_SCAN: Duration = Duration::from_secs(1);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub struct SeatSvc;

impl Service for SeatSvc {
    const NAME: &'static str = "seat-svc";
    const DEFAULT_PORT: u16 = 8082;
    type Settings = Limits;

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    fn consumes() -> Vec<nats::messaging::topology::Consumes> {
        let settle = (
            holds::settle::PAYMENTS.into(),
            holds::settle::CANCELS.into(),
        );
        vec![inventory::SUBSCRIPTION.into(), settle.0, settle.1]
    }

    fn problems() -> Vec<nats::web::ProblemType> {
        use holds::http as h;
        vec![
            queue::http::UNKNOWN_QUEUE_TOKEN,
            inventory::UNKNOWN_SCHEDULE,
            inventory::SCHEDULE_NOT_READY,
            inventory::SCHEDULE_PAST,
            h::UNKNOWN_SEAT,
            h::INVALID_SEAT_SELECTION,
            h::QUEUE_TOKEN_REQUIRED,
            h::TOKEN_NOT_YOURS,
            h::TOKEN_NOT_ACTIVE,
            h::ALREADY_HOLDING,
            h::SEAT_UNAVAILABLE,
            h::TOO_EXPENSIVE,
        ]
    }

    fn api() -> utoipa::openapi::OpenApi {
        use utoipa::OpenApi as _;
        let mut api = queue::http::Api::openapi();
        api.merge(holds::http::Api::openapi());
        api
    }

    fn wire(rt: &mut Runtime, limits: Limits) -> Router {
        rt.consume::<ConcertEvent, _>(inventory::SUBSCRIPTION, inventory::Builder);
        let keeper = holds::settle::HoldKeeper;
        rt.consume::<PaymentEvent, _>(holds::settle::PAYMENTS, keeper.clone());
        rt.consume::<ReservationEvent, _>(holds::settle::CANCELS, keeper);
        let (uow, db) = (rt.uow(), rt.db());
        rt.every("expire holds", HOLD_SCAN, move || {
            let (uow, db) = (uow.clone(), db.clone());
            async move { expiry::expire_holds(&uow, &db).await.map(drop) }
        });
        let (uow, ttl) = (rt.uow(), limits.queue_token_ttl);
        rt.every("expire queue tokens", TOKEN_SCAN, move || {
            let uow = uow.clone();
            async move { expiry::expire_tokens(&uow, ttl).await }
        });
        let state = rt.state(limits);
        Router::new()
            .merge(queue::http::routes())
            .merge(holds::http::routes())
            .with_state(state)
    }
}
