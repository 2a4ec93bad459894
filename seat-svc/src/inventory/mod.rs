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

/// A schedule whose show has started: its line is closed and its seats are not held any more.
pub const SCHEDULE_PAST: ProblemType = ProblemType::new(
    "schedule-past",
    StatusCode::UNPROCESSABLE_ENTITY,
    "Schedule in the past",
);

pub fn schedule_past() -> Problem {
    Problem::new(
        SCHEDULE_PAST,
        "the show of this schedule has started: it cannot be queued for or held any more",
    )
}

/// How long after its id was made a schedule may still be on its way here: concert-svc answers
/// its 201 before its relay has published `schedule_opened` (ids are UUIDv7, made by
/// concert-svc's clock; this also absorbs clocks that disagree by less than a minute).
const FRESH: time::Duration = time::Duration::minutes(1);

/// The answer for a schedule seat-svc (`service`) does not know: 404 once it has caught up on
/// concert-svc's events and never saw it, unless the id is fresh; 503 while they may still be on
/// their way (the inventory may simply not be built yet).
pub async fn unknown_schedule(
    js: &async_nats::jetstream::Context,
    service: &str,
    schedule: ScheduleId,
) -> Problem {
    let fresh = schedule.made_within(FRESH, time::OffsetDateTime::now_utc());
    match caught_up(js, Context::Concert.stream(), service).await {
        Ok(true) if !fresh => Problem::new(UNKNOWN_SCHEDULE, format!("no schedule {schedule}")),
        _ => Problem::new(
            SCHEDULE_NOT_READY,
            format!(
                "the seat inventory of schedule {schedule} is not built yet; retry in a moment"
            ),
        )
        .retry_after(1),
    }
}
