//! http: the catalog API — admin commands to register concerts and open schedules, public
//! reads of concerts, schedules with live seat counts, and seats with their live status.

use crate::domain::{self, SeatInput};
use crate::{SERVICE, store};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use contracts::events::ScheduleOpened;
use contracts::{ConcertEvent, ConcertId, ScheduleId, SeatSpec};
use platform::auth::Admin;
use platform::db::Db;
use platform::http::{Body, Id, Problem, Query};
use platform::outbox::{Outbox, emit};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub outbox: Outbox,
    pub js: async_nats::jetstream::Context,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/concerts", post(create_concert).get(list_concerts))
        .route(
            "/concerts/{id}/schedules",
            post(open_schedule).get(list_schedules),
        )
        .route("/schedules/{id}/seats", get(schedule_seats))
        .route("/admin/view/rebuild", post(rebuild_view))
        .with_state(state)
}

#[derive(Deserialize)]
struct NewConcert {
    title: String,
}

async fn create_concert(
    State(s): State<AppState>,
    _admin: Admin,
    Body(body): Body<NewConcert>,
) -> Result<impl IntoResponse, Problem> {
    let title =
        domain::parse_title(&body.title).map_err(|e| Problem::unprocessable(e.to_string()))?;
    let id = ConcertId::new();
    let now = platform::to_millis(OffsetDateTime::now_utc());
    let mut tx = s.db.begin().await?;
    store::insert_concert(&mut tx, id, &title, now).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(json!({"id": id, "title": title}))))
}

async fn list_concerts(State(s): State<AppState>) -> Result<impl IntoResponse, Problem> {
    Ok(Json(store::list_concerts(s.db.pool()).await?))
}

#[derive(Deserialize)]
struct NewSchedule {
    starts_at: String,
    seats: Vec<SeatInput>,
}

async fn open_schedule(
    State(s): State<AppState>,
    _admin: Admin,
    Id(concert): Id<ConcertId>,
    Body(body): Body<NewSchedule>,
) -> Result<impl IntoResponse, Problem> {
    let starts_at = domain::parse_starts_at(&body.starts_at).map_err(Problem::unprocessable)?;
    let seats =
        domain::parse_seat_map(&body.seats).map_err(|e| Problem::unprocessable(e.to_string()))?;
    let id = ScheduleId::new();
    let now = OffsetDateTime::now_utc();
    let mut tx = s.db.begin().await?;
    if !store::concert_exists(&mut tx, concert).await? {
        return Err(Problem::not_found(format!("no concert {concert}")));
    }
    store::insert_schedule(
        &mut tx,
        id,
        concert,
        platform::to_millis(starts_at),
        &seats,
        platform::to_millis(now),
    )
    .await?;
    let event = ConcertEvent::ScheduleOpened(ScheduleOpened {
        schedule_id: id,
        concert_id: concert,
        starts_at,
        seats: seats
            .iter()
            .map(|seat| SeatSpec {
                seat_id: seat.id,
                label: seat.label.clone(),
                grade: seat.grade.clone(),
                price: seat.price,
            })
            .collect(),
    });
    emit(&mut tx, SERVICE, &event, None, now).await?;
    tx.commit().await?;
    s.outbox.wake();
    let seats: Vec<_> = seats
        .iter()
        .map(|seat| json!({"seat_id": seat.id, "label": seat.label}))
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "concert_id": concert, "seats": seats})),
    ))
}

#[derive(Deserialize)]
struct ScheduleFilter {
    #[serde(default)]
    include_sold_out: bool,
}

/// The available dates: schedules with seats left (`?include_sold_out=true` for all).
async fn list_schedules(
    State(s): State<AppState>,
    Id(concert): Id<ConcertId>,
    Query(filter): Query<ScheduleFilter>,
) -> Result<impl IntoResponse, Problem> {
    store::list_schedules(s.db.pool(), concert, filter.include_sold_out)
        .await?
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no concert {concert}")))
}

async fn schedule_seats(
    State(s): State<AppState>,
    Id(schedule): Id<ScheduleId>,
) -> Result<impl IntoResponse, Problem> {
    store::schedule_seats(s.db.pool(), schedule)
        .await?
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no schedule {schedule}")))
}

#[derive(Deserialize)]
struct RebuildOptions {
    #[serde(default)]
    apply: bool,
}

/// Rebuilds the availability view from the `SEAT` stream; `?apply=true` merges it in.
async fn rebuild_view(
    State(s): State<AppState>,
    _admin: Admin,
    Query(options): Query<RebuildOptions>,
) -> Result<impl IntoResponse, Problem> {
    let report = crate::rebuild::rebuild(&s.db, &s.js, options.apply).await?;
    Ok(Json(report))
}
