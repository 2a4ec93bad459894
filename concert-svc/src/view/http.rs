//! http: `GET /schedules/{id}` (a date with its concert and live counts), `GET
//! /schedules/{id}/seats` (the seat map with live statuses) and the admin's
//! `POST /admin/view/rebuild[?apply=true]`.

use crate::catalog::store as catalog;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use contracts::ScheduleId;
use nats::runtime::AppState;
use nats::web::{Admin, Id, Problem, ProblemType, Query};
use serde::Deserialize;
use std::sync::Arc;

/// Held while this process rebuilds the view: one rebuild at a time.
#[derive(Clone, Default)]
struct Rebuilding(Arc<tokio::sync::Mutex<()>>);

pub const UNKNOWN_SCHEDULE: ProblemType = ProblemType::new(
    "unknown-schedule",
    StatusCode::NOT_FOUND,
    "Unknown schedule",
);
/// One rebuild of the view runs at a time.
pub const REBUILD_RUNNING: ProblemType =
    ProblemType::new("rebuild-running", StatusCode::CONFLICT, "Rebuild running");

/// The availability view's routes, as the OpenAPI document describes them.
#[derive(utoipa::OpenApi)]
#[openapi(paths(schedule, schedule_seats, rebuild_view))]
pub struct Api;

pub fn routes() -> Router<AppState<()>> {
    Router::new()
        .route("/schedules/{id}", get(schedule))
        .route("/schedules/{id}/seats", get(schedule_seats))
        .route(
            "/admin/view/rebuild",
            post(rebuild_view).layer(Extension(Rebuilding::default())),
        )
}

fn unknown_schedule(schedule: ScheduleId) -> Problem {
    Problem::new(UNKNOWN_SCHEDULE, format!("no schedule {schedule}"))
}

/// The schedule: its concert's title, when it starts, and its live seat counts.
#[utoipa::path(get, path = "/schedules/{id}", tag = "availability",
    params(("id" = ScheduleId, Path, description = "The schedule")),
    responses(
        (status = 200, body = crate::catalog::store::ScheduleDetail),
        (status = 404, description = "unknown-schedule", body = Problem, content_type = "application/problem+json"),
    ))]
async fn schedule(
    State(s): State<AppState<()>>,
    Id(schedule): Id<ScheduleId>,
) -> Result<impl IntoResponse, Problem> {
    catalog::schedule(&mut s.db.reader().await?, schedule)
        .await?
        .map(Json)
        .ok_or_else(|| unknown_schedule(schedule))
}

/// The schedule's seat map with each seat's live status.
#[utoipa::path(get, path = "/schedules/{id}/seats", tag = "availability",
    params(("id" = ScheduleId, Path, description = "The schedule")),
    responses(
        (status = 200, body = Vec<crate::catalog::store::SeatRow>),
        (status = 404, description = "unknown-schedule", body = Problem, content_type = "application/problem+json"),
    ))]
async fn schedule_seats(
    State(s): State<AppState<()>>,
    Id(schedule): Id<ScheduleId>,
) -> Result<impl IntoResponse, Problem> {
    catalog::schedule_seats(&mut s.db.reader().await?, schedule)
        .await?
        .map(Json)
        .ok_or_else(|| unknown_schedule(schedule))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct RebuildOptions {
    /// Merge the rebuilt view into the live one.
    #[serde(default)]
    apply: bool,
}

/// Rebuilds the availability view from the `SEAT` stream (admin); `?apply=true` merges it in.
#[utoipa::path(post, path = "/admin/view/rebuild", tag = "availability", security(("bearer" = [])),
    params(RebuildOptions),
    responses(
        (status = 200, body = super::rebuild::Report),
        (status = 403, description = "admin-only", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "rebuild-running", body = Problem, content_type = "application/problem+json"),
    ))]
async fn rebuild_view(
    State(s): State<AppState<()>>,
    _admin: Admin,
    Extension(rebuilding): Extension<Rebuilding>,
    Query(options): Query<RebuildOptions>,
) -> Result<impl IntoResponse, Problem> {
    // One rebuild at a time: its replay consumer has one name (the only one concert-svc may
    // create on SEAT), so a second one would share its messages. In this process a lock says so;
    // across replicas, the consumer existing does.
    let busy = || {
        Problem::new(
            REBUILD_RUNNING,
            "a rebuild of the view is running; try again when it has ended",
        )
    };
    let Ok(_running) = rebuilding.0.try_lock() else {
        return Err(busy());
    };
    if super::rebuild::running_elsewhere(&s.js, s.name).await? {
        return Err(busy());
    }
    let report = super::rebuild::rebuild(&s.uow, &s.db, &s.js, options.apply).await?;
    Ok(Json(report))
}
