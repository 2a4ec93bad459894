//! reservation-svc: the reservations and their status, the user's pay and cancel commands, and
//! a live status stream. It follows every saga from seat and payment events.
//!
//! # Layout
//! - [`domain`]: a reservation as the facts learned about its saga; its status derives from
//!   them; the rules of the pay and cancel commands.
//! - [`store`]: reservations in SQL.
//! - [`tracker`]: the consumer of seat and payment events.
//! - [`commands`]: pay and cancel, each one unit of work.
//! - [`http`] and [`live`]: the routes, and the server-sent status stream; [`arrival`]: a
//!   reservation just handed out by seat-svc is waited for briefly, never answered 404;
//!   [`watchers`]: who in this process waits on which reservation.
//! - [`stuck`]: sagas not ended long after they should be: a gauge, and a list for admins;
//!   [`timeline`]: a saga's events on the bus, for its owner and for admins.
//! - [`audit`]: every reservation's status, for the whole-system checks.

pub mod arrival;
pub mod audit;
pub mod commands;
pub mod domain;
pub mod http;
pub mod live;
pub mod store;
pub mod stuck;
pub mod timeline;
pub mod tracker;
pub mod watchers;

use axum::Router;
use contracts::{PaymentEvent, SeatEvent};
use nats::runtime::{Runtime, Service};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub struct ReservationSvc;

impl Service for ReservationSvc {
    const NAME: &'static str = "reservation-svc";
    const DEFAULT_PORT: u16 = 8083;
    type Settings = stuck::Threshold;

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    fn consumes() -> Vec<nats::messaging::topology::Consumes> {
        vec![tracker::SEATS.into(), tracker::PAYMENTS.into()]
    }

    fn problems() -> Vec<nats::web::ProblemType> {
        vec![
            http::NOT_AWAITING_PAYMENT,
            http::NOT_CANCELLABLE,
            http::SHOW_STARTED,
            arrival::UNKNOWN_RESERVATION,
            arrival::RESERVATION_NOT_READY,
        ]
    }

    fn api() -> utoipa::openapi::OpenApi {
        use utoipa::OpenApi as _;
        http::Api::openapi()
    }

    fn wire(rt: &mut Runtime, threshold: stuck::Threshold) -> Router {
        // The status streams of this process, woken by the commits that change their reservation.
        let watchers = watchers::Watchers::default();
        let tracker = tracker::SagaTracker {
            watchers: watchers.clone(),
        };
        rt.consume::<SeatEvent, _>(tracker::SEATS, tracker.clone());
        rt.consume::<PaymentEvent, _>(tracker::PAYMENTS, tracker);
        let db = rt.db();
        let counting = threshold.clone();
        rt.every("count stuck sagas", threshold.recount_every(), move || {
            stuck::count(db.clone(), counting.clone())
        });
        Router::new()
            .merge(http::routes())
            .merge(live::routes())
            .merge(timeline::routes())
            .with_state(rt.state(watchers))
            .merge(stuck::routes().with_state(rt.state(threshold)))
    }
}
