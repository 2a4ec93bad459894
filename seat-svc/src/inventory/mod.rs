//! inventory: the seats of each schedule, as concert-svc opened them. Built from
//! `concert.schedule_opened`; holds move seats from available to held to sold and back.

pub mod domain;
pub mod store;

pub use domain::SeatStatus;

use axum::http::StatusCode;
use contracts::{ConcertEvent, ConcertKind, Context, ScheduleId};
use nats::messaging::consumer::{Delivery, EventHandler, NotHandled};
use nats::messaging::topology::{Subscription, caught_up};
use nats::unit_of_work::{Error, Work};
use nats::web::{Problem, ProblemType};

/// The concert events that build inventory.
pub const SUBSCRIPTION: Subscription<ConcertEvent> =
    Subscription::to(&[ConcertKind::ScheduleOpened]);

/// Builds a schedule's inventory from its opening event.
pub struct Builder;

impl EventHandler<ConcertEvent> for Builder {
    async fn handle(
        &self,
        w: &mut Work,
        d: &Delivery<ConcertEvent>,
    ) -> Result<(), Error<NotHandled>> {
        match &d.event {
            ConcertEvent::ScheduleOpened(opened) => store::insert_schedule(w, opened).await?,
        }
        Ok(())
    }
}

pub const UNKNOWN_SCHEDULE: ProblemType = ProblemType::new(
    "unknown-schedule",
    StatusCode::NOT_FOUND,
    "Unknown schedule",
);
/// A schedule that concert-svc opened but whose seats this service has not set up yet.
pub const SCHEDULE_NOT_READY: ProblemType = ProblemType::new(
    "schedule-not-ready",
    StatusCode::SERVICE_UNAVAILABLE,
    "Schedule not ready",
);

/// The answer for a schedule seat-svc (`service`) does not know: 404 once it has caught up on
/// concert-svc's events and never saw it; 503 while they are still on their way (the inventory
/// may simply not be built yet).
pub async fn unknown_schedule(
    js: &async_nats::jetstream::Context,
    service: &str,
    schedule: ScheduleId,
) -> Problem {
    match caught_up(js, Context::Concert.stream(), service).await {
        Ok(true) => Problem::new(UNKNOWN_SCHEDULE, format!("no schedule {schedule}")),
        Ok(false) | Err(_) => Problem::new(
            SCHEDULE_NOT_READY,
            format!(
                "the seat inventory of schedule {schedule} is not built yet; retry in a moment"
            ),
        )
        .retry_after(1),
    }
}
