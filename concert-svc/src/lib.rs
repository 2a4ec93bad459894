//! concert-svc: concerts, schedules, seat maps and prices, and the live availability view (a
//! read model kept from seat events).
//!
//! # Layout
//! - [`catalog`]: what the admin registers (concerts, schedules with seat maps) and the public
//!   lists; opening a schedule emits `concert.schedule_opened`.
//! - [`view`]: the availability view: its rules, its table, the consumer that keeps it from
//!   `SEAT`, and the rebuild that replays `SEAT` through that same code.
//! - [`audit`]: the view's statuses, for the whole-system checks.
//!
//! Each has its `domain` (pure rules), `store` (SQL) and `http` handlers; every state change
//! runs as a unit of work (`nats::unit_of_work`).

pub mod audit;
pub mod catalog;
pub mod view;

use axum::Router;
use contracts::SeatEvent;
use nats::runtime::{Runtime, Service};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub struct ConcertSvc;

impl Service for ConcertSvc {
    const NAME: &'static str = "concert-svc";
    const DEFAULT_PORT: u16 = 8081;
    type Settings = ();

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    fn wire(rt: &mut Runtime, _: ()) -> Router {
        rt.consume::<SeatEvent, _>(view::updater::SUBSCRIPTION, view::updater::ViewUpdater);
        Router::new()
            .merge(catalog::http::routes())
            .merge(view::http::routes())
            .with_state(rt.state(()))
    }

    fn consumes() -> Vec<nats::messaging::topology::Consumes> {
        vec![view::updater::SUBSCRIPTION.into()]
    }

    fn problems() -> Vec<nats::web::ProblemType> {
        use catalog::http as c;
        vec![
            c::UNKNOWN_CONCERT,
            c::INVALID_CATALOG_ENTRY,
            c::SCHEDULE_PAST,
            c::SEAT_MAP_TOO_LARGE,
            view::http::UNKNOWN_SCHEDULE,
            view::http::REBUILD_RUNNING,
        ]
    }

    fn api() -> utoipa::openapi::OpenApi {
        use utoipa::OpenApi as _;
        let mut api = catalog::http::Api::openapi();
        api.merge(view::http::Api::openapi());
        api
    }
}
