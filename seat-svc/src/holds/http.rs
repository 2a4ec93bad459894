//! http: `POST /schedules/{id}/holds` with header `Queue-Token`: parse, hold in a unit of work,
//! answer 201 (or the problem the refusal names).

use super::domain::{HoldInvalid, parse_seat_ids};
use super::{HoldRefused, HoldRequest, hold};
use crate::config::AppState;
use crate::inventory::{UNKNOWN_SCHEDULE, schedule_past, unknown_schedule};
use crate::queue::domain::QueueToken;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use contracts::ScheduleId;
use nats::unit_of_work::Error;
use nats::web::command::Refused;
use nats::web::{Answer, CommandRequest, Id, Problem, ProblemType, Sent, User};
use serde::Deserialize;
use serde_json::json;

pub const QUEUE_TOKEN_HEADER: &str = "Queue-Token";

/// The holds' routes, as the OpenAPI document describes them.
#[derive(utoipa::OpenApi)]
#[openapi(paths(hold_seats))]
pub struct Api;

pub fn routes() -> Router<AppState> {
    Router::new().route("/schedules/{id}/holds", post(hold_seats))
}

/// A seat that is not in the schedule (or not a seat id at all).
pub const UNKNOWN_SEAT: ProblemType =
    ProblemType::new("unknown-seat", StatusCode::NOT_FOUND, "Unknown seat");
/// No seats, too many, or one named twice.
pub const INVALID_SEAT_SELECTION: ProblemType = ProblemType::new(
    "invalid-seat-selection",
    StatusCode::UNPROCESSABLE_ENTITY,
    "Invalid seat selection",
);
pub const QUEUE_TOKEN_REQUIRED: ProblemType = ProblemType::new(
    "queue-token-required",
    StatusCode::FORBIDDEN,
    "Queue token required",
);
/// The queue token is someone else's, or for another schedule.
pub const TOKEN_NOT_YOURS: ProblemType = ProblemType::new(
    "token-not-yours",
    StatusCode::FORBIDDEN,
    "Queue token not yours",
);
/// The queue token is still waiting in line, or has expired or been used.
pub const TOKEN_NOT_ACTIVE: ProblemType = ProblemType::new(
    "token-not-active",
    StatusCode::FORBIDDEN,
    "Queue token not active",
);
pub const ALREADY_HOLDING: ProblemType = ProblemType::new(
    "already-holding",
    StatusCode::CONFLICT,
    "Already holding seats",
);
pub const SEAT_UNAVAILABLE: ProblemType =
    ProblemType::new("seat-unavailable", StatusCode::CONFLICT, "Seat unavailable");
pub const TOO_EXPENSIVE: ProblemType = ProblemType::new(
    "too-expensive",
    StatusCode::UNPROCESSABLE_ENTITY,
    "Too expensive",
);

impl From<HoldInvalid> for Problem {
    fn from(e: HoldInvalid) -> Self {
        match e {
            HoldInvalid::UnknownSeat(_) => Problem::new(UNKNOWN_SEAT, e.to_string()),
            _ => Problem::new(INVALID_SEAT_SELECTION, e.to_string()),
        }
    }
}

impl From<HoldRefused> for Problem {
    fn from(r: HoldRefused) -> Self {
        match r {
            HoldRefused::UnknownSchedule => Problem::new(UNKNOWN_SCHEDULE, "no such schedule"),
            HoldRefused::NotYourToken => Problem::new(
                TOKEN_NOT_YOURS,
                "the queue token is not yours or not for this schedule",
            ),
            HoldRefused::NotActive(status) => Problem::new(
                TOKEN_NOT_ACTIVE,
                format!("the queue token is {status}, not active"),
            ),
            HoldRefused::AlreadyHolding(r) => Problem::new(
                ALREADY_HOLDING,
                format!(
                    "this queue token already holds seats for reservation {r}; pay for or cancel \
                     it first"
                ),
            ),
            HoldRefused::UnknownSeats => Problem::new(
                UNKNOWN_SEAT,
                "one or more of those seats do not exist in this schedule",
            ),
            HoldRefused::SeatsTaken => Problem::new(
                SEAT_UNAVAILABLE,
                "one or more of those seats are not available any more",
            ),
            HoldRefused::SchedulePast => schedule_past(),
            HoldRefused::TooExpensive => Problem::new(
                TOO_EXPENSIVE,
                "those seats together cost more points than can be paid",
            ),
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct HoldBody {
    /// 1 to a few seats of the schedule, none twice: all are held or none.
    #[schema(min_items = 1, max_items = 10)]
    seat_ids: Vec<String>,
}

/// Seats held for a new reservation, until `expires_at` unless paid.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Held {
    reservation_id: contracts::ReservationId,
    seat_ids: Vec<contracts::SeatId>,
    amount: contracts::Points,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: time::OffsetDateTime,
}

/// Holds seats for a new reservation, with an active queue token.
#[utoipa::path(post, path = "/schedules/{id}/holds", tag = "holds", security(("bearer" = [])),
    params(
        ("id" = ScheduleId, Path, description = "The schedule"),
        ("Queue-Token" = String, Header, description = "An active queue token of this schedule"),
        nats::web::openapi::Command,
    ),
    request_body = HoldBody,
    responses(
        (status = 201, body = Held),
        (status = 403, description = "token-not-active, token-not-yours, queue-token-required", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "unknown-seat, unknown-schedule", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "seat-unavailable, already-holding", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "schedule-past, too-expensive, invalid-seat-selection", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "schedule-not-ready", body = Problem, content_type = "application/problem+json"),
    ))]
async fn hold_seats(
    State(s): State<AppState>,
    User(user): User,
    Id(schedule): Id<ScheduleId>,
    headers: HeaderMap,
    key: CommandRequest,
    sent: Sent<HoldBody>,
) -> Result<Answer, Problem> {
    let seats = parse_seat_ids(&sent.body.seat_ids)?;
    let token = headers
        .get(QUEUE_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(QueueToken::from)
        .ok_or_else(|| {
            Problem::new(
                QUEUE_TOKEN_REQUIRED,
                "a Queue-Token header with an active queue token is required to hold seats",
            )
        })?;
    let (once, _handling) = key.claim(&user, &sent.bytes)?;
    let request = HoldRequest {
        user,
        schedule,
        token,
        seats,
        ttl: s.settings.hold_ttl,
        active_limit: s.settings.queue_active_limit,
    };
    let held = s.uow.decide(move |w| {
        let (once, request) = (once.clone(), request.clone());
        Box::pin(once.run(w, move |w| {
            Box::pin(async move {
                let held = hold(w, request).await?;
                let body = json!(Held {
                    reservation_id: held.reservation,
                    seat_ids: held.seats,
                    amount: held.amount,
                    expires_at: held.expires_at,
                });
                Ok(Answer::new(StatusCode::CREATED, body))
            })
        }))
    });
    let held = held.await;
    // An admitted user's step served, whatever its answer: the pace at which those refused at
    // the queue come back.
    if !matches!(held, Err(Error::Failed(_))) {
        s.door.served();
    }
    match held {
        Err(Error::Rejected(Refused::Command(HoldRefused::UnknownSchedule))) => {
            Err(unknown_schedule(&s.js, s.name, schedule).await)
        }
        held => Ok(held?),
    }
}
