//! http: `POST /schedules/{id}/holds` with header `Queue-Token`: parse, hold in a unit of work,
//! answer 201 (or the problem the refusal names).

use super::domain::{HoldInvalid, parse_seat_ids};
use super::{HoldRefused, HoldRequest, hold};
use crate::config::AppState;
use crate::inventory::unknown_schedule;
use crate::queue::domain::QueueToken;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use contracts::ScheduleId;
use nats::unit_of_work::Error;
use nats::web::{Body, Id, Problem, User};
use serde::Deserialize;
use serde_json::json;
use time::format_description::well_known::Rfc3339;

pub const QUEUE_TOKEN_HEADER: &str = "Queue-Token";

pub fn routes() -> Router<AppState> {
    Router::new().route("/schedules/{id}/holds", post(hold_seats))
}

impl From<HoldInvalid> for Problem {
    fn from(e: HoldInvalid) -> Self {
        match e {
            HoldInvalid::UnknownSeat(_) => Problem::not_found(e.to_string()),
            _ => Problem::unprocessable(e.to_string()),
        }
    }
}

impl From<HoldRefused> for Problem {
    fn from(r: HoldRefused) -> Self {
        let forbidden = |detail: String| Problem::new(StatusCode::FORBIDDEN, detail);
        match r {
            HoldRefused::UnknownSchedule => Problem::not_found("no such schedule"),
            HoldRefused::NotYourToken => {
                forbidden("the queue token is not yours or not for this schedule".into())
            }
            HoldRefused::NotActive(status) => {
                forbidden(format!("the queue token is {status}, not active"))
            }
            HoldRefused::AlreadyHolding(r) => Problem::conflict(format!(
                "this queue token already holds seats for reservation {r}; pay for or cancel it first"
            )),
            HoldRefused::UnknownSeats => {
                Problem::not_found("one or more of those seats do not exist in this schedule")
            }
            HoldRefused::SeatsTaken => {
                Problem::conflict("one or more of those seats are not available any more")
            }
            HoldRefused::TooExpensive => {
                Problem::unprocessable("those seats together cost more points than can be paid")
            }
        }
    }
}

#[derive(Deserialize)]
struct HoldBody {
    seat_ids: Vec<String>,
}

async fn hold_seats(
    State(s): State<AppState>,
    User(user): User,
    Id(schedule): Id<ScheduleId>,
    headers: HeaderMap,
    Body(body): Body<HoldBody>,
) -> Result<impl IntoResponse, Problem> {
    let seats = parse_seat_ids(&body.seat_ids)?;
    let token = headers
        .get(QUEUE_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(QueueToken::from)
        .ok_or_else(|| {
            Problem::new(
                StatusCode::FORBIDDEN,
                "a Queue-Token header with an active queue token is required to hold seats",
            )
        })?;
    let request = HoldRequest {
        user,
        schedule,
        token,
        seats,
        ttl: s.settings.hold_ttl,
    };
    let held = match s.uow.decide(move |w| Box::pin(hold(w, request))).await {
        Err(Error::Rejected(HoldRefused::UnknownSchedule)) => {
            return Err(unknown_schedule(&s.js, s.name, schedule).await);
        }
        held => held?,
    };
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "reservation_id": held.reservation,
            "seat_ids": held.seats,
            "amount": held.amount,
            "expires_at": held.expires_at.format(&Rfc3339).map_err(Problem::internal)?,
        })),
    ))
}
