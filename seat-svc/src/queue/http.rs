//! http: `POST /schedules/{id}/queue` (take a token: 201, or 200 with the live one) and
//! `GET /queue/{token}` (where it stands).

use super::domain::QueueToken;
use super::{Place, QueueRefused, join, peek, status};
use crate::config::AppState;
use crate::inventory::{UNKNOWN_SCHEDULE, schedule_past, unknown_schedule};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use contracts::ScheduleId;
use nats::unit_of_work::Error;
use nats::web::command::Refused;
use nats::web::shed::Admitted;
use nats::web::{Answer, CommandRequest, Id, Problem, ProblemType, User};
use serde_json::json;

/// The queue's routes, as the OpenAPI document describes them.
#[derive(utoipa::OpenApi)]
#[openapi(paths(join_queue, queue_status))]
pub struct Api;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/schedules/{id}/queue", post(join_queue))
        .route("/queue/{token}", get(queue_status))
}

/// No such queue token, or not the caller's.
pub const UNKNOWN_QUEUE_TOKEN: ProblemType = ProblemType::new(
    "unknown-queue-token",
    StatusCode::NOT_FOUND,
    "Unknown queue token",
);

impl From<QueueRefused> for Problem {
    fn from(r: QueueRefused) -> Self {
        match r {
            QueueRefused::UnknownSchedule => Problem::new(UNKNOWN_SCHEDULE, "no such schedule"),
            QueueRefused::UnknownToken => Problem::new(UNKNOWN_QUEUE_TOKEN, "no such queue token"),
            QueueRefused::SchedulePast => schedule_past(),
        }
    }
}

/// Where a queue token stands.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct TokenPlace {
    /// Sent as `Queue-Token` to hold seats once active.
    #[schema(value_type = String)]
    token: QueueToken,
    status: super::domain::TokenStatus,
    /// 1 for the first in line; 0 when not waiting.
    position: i64,
}

fn answer(p: &Place) -> serde_json::Value {
    json!(TokenPlace {
        token: p.token.token.clone(),
        status: p.status,
        position: p.position,
    })
}

/// Takes a place in the schedule's line (201), or answers the user's live token again (200).
#[utoipa::path(post, path = "/schedules/{id}/queue", tag = "queue", security(("bearer" = [])),
    params(("id" = ScheduleId, Path, description = "The schedule"), nats::web::openapi::Command),
    responses(
        (status = 201, description = "A new token", body = TokenPlace),
        (status = 200, description = "The user's live token", body = TokenPlace),
        (status = 404, description = "unknown-schedule", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "schedule-past", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "schedule-not-ready, overloaded", body = Problem, content_type = "application/problem+json"),
    ))]
async fn join_queue(
    // Joining is where a user arrives: refused while seat-svc is overloaded, so the users
    // already in keep their pace. First, so a refusal costs the least.
    _: Admitted,
    State(s): State<AppState>,
    User(user): User,
    Id(schedule): Id<ScheduleId>,
    key: CommandRequest,
) -> Result<Answer, Problem> {
    let limit = s.settings.queue_active_limit;
    // The body is not read: the path says all.
    let (once, _handling) = key.claim(&user, b"")?;
    let joined = s.uow.decide(move |w| {
        let (once, user) = (once.clone(), user.clone());
        Box::pin(once.run(w, move |w| {
            Box::pin(async move {
                let place = join(w, user, schedule, limit).await?;
                let code = if place.new {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                Ok(Answer::new(code, answer(&place)))
            })
        }))
    });
    match joined.await {
        Err(Error::Rejected(Refused::Command(QueueRefused::UnknownSchedule))) => {
            Err(unknown_schedule(&s.js, s.name, schedule).await)
        }
        joined => Ok(joined?),
    }
}

/// Where the user's token stands; asking keeps it alive.
#[utoipa::path(get, path = "/queue/{token}", tag = "queue", security(("bearer" = [])),
    params(("token" = String, Path, description = "The queue token")),
    responses(
        (status = 200, body = TokenPlace),
        (status = 404, description = "unknown-queue-token", body = Problem, content_type = "application/problem+json"),
    ))]
async fn queue_status(
    State(s): State<AppState>,
    User(user): User,
    Path(token): Path<QueueToken>,
) -> Result<impl IntoResponse, Problem> {
    // A token is a UUID: text with a NUL in it (a path's `%00`) was never issued, and no
    // database could even look it up.
    if token.as_str().contains('\0') {
        return Err(QueueRefused::UnknownToken.into());
    }
    let limit = s.settings.queue_active_limit;
    // Asking keeps a token alive; a tenth of its time to live is soon enough to write that down.
    let touch_every = (s.settings.queue_token_ttl / 10).as_millis() as i64;
    let now = s.db.clock().now_ms();
    let mut read = s.db.reader().await?;
    if let Some(place) = peek(&mut read, &user, token.clone(), now, touch_every, limit).await? {
        return Ok(Json(answer(&place)));
    }
    drop(read);
    let place = s
        .uow
        .decide(move |w| Box::pin(status(w, user.clone(), token.clone(), limit)))
        .await?;
    Ok(Json(answer(&place)))
}
