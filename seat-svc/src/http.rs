//! http: the queue (take a token, see its position) and holds (needs an active token).

use crate::SERVICE;
use crate::domain::{self, HoldInvalid, TokenStatus};
use crate::store::{self, NewHold, Token};
use async_nats::jetstream;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use contracts::events::SeatHeld;
use contracts::{Context, Points, ReservationId, ScheduleId, SeatEvent};
use platform::auth::User;
use platform::db::{Db, Tx};
use platform::http::{Body, Id, Problem};
use platform::outbox::{Outbox, emit};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;
use time::OffsetDateTime;

pub const QUEUE_TOKEN_HEADER: &str = "Queue-Token";

#[derive(Clone, Debug)]
pub struct Limits {
    pub hold_ttl: Duration,
    pub queue_active_limit: i64,
    pub queue_token_ttl: Duration,
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub outbox: Outbox,
    pub js: jetstream::Context,
    pub limits: Limits,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/schedules/{id}/queue", post(join_queue))
        .route("/queue/{token}", get(queue_status))
        .route("/schedules/{id}/holds", post(hold_seats))
        .with_state(state)
}

/// 404 for a schedule seat-svc has fully caught up on and never saw; 503 while events from
/// concert-svc are still on their way (the inventory may simply not be built yet).
async fn unknown_schedule(s: &AppState, schedule: ScheduleId) -> Problem {
    match platform::topology::caught_up(&s.js, Context::Concert.stream(), SERVICE).await {
        Ok(true) => Problem::not_found(format!("no schedule {schedule}")),
        Ok(false) | Err(_) => Problem::unavailable(format!(
            "the seat inventory of schedule {schedule} is not built yet; retry in a moment"
        )),
    }
}

async fn token_answer(tx: &mut Tx, t: &Token) -> Result<serde_json::Value, Problem> {
    let position = store::position(tx, t).await?;
    Ok(json!({"token": t.token, "status": t.status.as_str(), "position": position}))
}

async fn join_queue(
    State(s): State<AppState>,
    User(user): User,
    Id(schedule): Id<ScheduleId>,
) -> Result<impl IntoResponse, Problem> {
    let now = platform::to_millis(OffsetDateTime::now_utc());
    let mut tx = s.db.begin().await?;
    if !store::schedule_exists(&mut tx, schedule).await? {
        drop(tx);
        return Err(unknown_schedule(&s, schedule).await);
    }
    // One live token per user and schedule: asking again answers the same token.
    if let Some(t) = store::live_token(&mut tx, &user, schedule).await? {
        let body = token_answer(&mut tx, &t).await?;
        tx.commit().await?;
        return Ok((StatusCode::OK, Json(body)));
    }
    let token = uuid::Uuid::new_v4().to_string();
    store::insert_token(&mut tx, &token, schedule, &user, now).await?;
    store::admit(&mut tx, &schedule.to_string(), s.limits.queue_active_limit).await?;
    let t = store::get_token(&mut tx, &token)
        .await?
        .ok_or_else(|| Problem::internal("a token vanished inside its own transaction"))?;
    let body = token_answer(&mut tx, &t).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(body)))
}

async fn queue_status(
    State(s): State<AppState>,
    User(user): User,
    axum::extract::Path(token): axum::extract::Path<String>,
) -> Result<impl IntoResponse, Problem> {
    let mut tx = s.db.begin().await?;
    let Some(t) = store::get_token(&mut tx, &token).await? else {
        return Err(Problem::not_found("no such queue token"));
    };
    if t.user_id != user.0 {
        // Someone else's token is not theirs to look at: same answer as a wrong token.
        return Err(Problem::not_found("no such queue token"));
    }
    // Asking keeps the token alive; and room may have opened up since they joined.
    let now = platform::to_millis(OffsetDateTime::now_utc());
    store::touch_token(&mut tx, &token, now).await?;
    store::admit(&mut tx, &t.schedule_id, s.limits.queue_active_limit).await?;
    let t = store::get_token(&mut tx, &token).await?.unwrap_or(t);
    let body = token_answer(&mut tx, &t).await?;
    tx.commit().await?;
    Ok(Json(body))
}

#[derive(Deserialize)]
struct HoldRequest {
    seat_ids: Vec<String>,
}

async fn hold_seats(
    State(s): State<AppState>,
    User(user): User,
    Id(schedule): Id<ScheduleId>,
    headers: HeaderMap,
    Body(body): Body<HoldRequest>,
) -> Result<impl IntoResponse, Problem> {
    let seats = domain::parse_seat_ids(&body.seat_ids).map_err(|e| match e {
        HoldInvalid::UnknownSeat(_) => Problem::not_found(e.to_string()),
        _ => Problem::unprocessable(e.to_string()),
    })?;
    let token = headers
        .get(QUEUE_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            Problem::new(
                StatusCode::FORBIDDEN,
                "a Queue-Token header with an active queue token is required to hold seats",
            )
        })?
        .to_owned();

    let now = OffsetDateTime::now_utc();
    let now_ms = platform::to_millis(now);
    let mut tx = s.db.begin().await?;
    // A token is only ever issued for an existing schedule, so a matching token proves the
    // schedule exists; only without one does the schedule need looking up (404 rather than 403).
    let live_hold = match store::token_with_live_hold(&mut tx, &token).await? {
        Some((t, live_hold)) if t.user_id == user.0 && t.schedule_id == schedule.to_string() => {
            if t.status != TokenStatus::Active {
                return Err(Problem::new(
                    StatusCode::FORBIDDEN,
                    format!("the queue token is {}, not active", t.status.as_str()),
                ));
            }
            live_hold
        }
        _ => {
            if !store::schedule_exists(&mut tx, schedule).await? {
                drop(tx);
                return Err(unknown_schedule(&s, schedule).await);
            }
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "the queue token is not yours or not for this schedule",
            ));
        }
    };
    // One live hold per token: a second would let one admission take seats twice.
    if let Some(r) = live_hold {
        return Err(Problem::conflict(format!(
            "this queue token already holds seats for reservation {r}; pay for or cancel it first"
        )));
    }
    store::touch_token(&mut tx, &token, now_ms).await?;
    let reservation = ReservationId::new();
    let prices = store::claim_seats(&mut tx, schedule, reservation, &seats).await?;
    if prices.len() != seats.len() {
        let known = store::count_known_seats(&mut tx, schedule, &seats).await?;
        tx.rollback().await?;
        return Err(if known < seats.len() as i64 {
            Problem::not_found("one or more of those seats do not exist in this schedule")
        } else {
            Problem::conflict("one or more of those seats are not available any more")
        });
    }
    let amount: i64 = prices.iter().sum();
    let expires_at = now + s.limits.hold_ttl;
    store::insert_hold(
        &mut tx,
        &NewHold {
            reservation,
            user: &user,
            schedule,
            token: &token,
            seats: &seats,
            amount,
            expires_at_ms: platform::to_millis(expires_at),
            now_ms,
        },
    )
    .await?;
    let amount = Points::new(amount).map_err(Problem::internal)?;
    let held = SeatEvent::Held(SeatHeld {
        reservation_id: reservation,
        user_id: user,
        schedule_id: schedule,
        seat_ids: seats.clone(),
        amount,
        expires_at,
    });
    emit(&mut tx, SERVICE, &held, None, now).await?;
    tx.commit().await?;
    s.outbox.wake();
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "reservation_id": reservation,
            "seat_ids": seats,
            "amount": amount,
            "expires_at": expires_at.format(&time::format_description::well_known::Rfc3339).map_err(Problem::internal)?,
        })),
    ))
}
