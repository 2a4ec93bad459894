//! http: the user's reservations and the pay command.

use crate::domain::request_payment;
use crate::{SERVICE, store};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use contracts::events::PaymentRequested;
use contracts::{Points, ReservationEvent, ReservationId};
use platform::auth::User;
use platform::db::Db;
use platform::http::{Id, Problem};
use platform::outbox::{Outbox, emit};
use serde_json::json;
use time::OffsetDateTime;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub outbox: Outbox,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/reservations", get(list))
        .route("/reservations/{id}", get(get_one))
        .route("/reservations/{id}/payment", post(pay))
        .with_state(state)
}

fn not_found(id: ReservationId) -> Problem {
    // The same answer whether it does not exist (yet) or is someone else's.
    Problem::not_found(format!("no reservation {id} of yours (yet)"))
}

async fn list(State(s): State<AppState>, User(user): User) -> Result<impl IntoResponse, Problem> {
    Ok(Json(store::list_for_user(s.db.pool(), &user).await?))
}

async fn get_one(
    State(s): State<AppState>,
    User(user): User,
    Id(id): Id<ReservationId>,
) -> Result<impl IntoResponse, Problem> {
    store::get_for_user(s.db.pool(), id, &user)
        .await?
        .map(Json)
        .ok_or_else(|| not_found(id))
}

/// Accepted (202) once the request is durably in the outbox, even if payment-svc is down.
async fn pay(
    State(s): State<AppState>,
    User(user): User,
    Id(id): Id<ReservationId>,
) -> Result<impl IntoResponse, Problem> {
    let now = OffsetDateTime::now_utc();
    let mut tx = s.db.begin().await?;
    let reservation = store::get(&mut tx, id)
        .await?
        .filter(|r| r.user_id == user.0)
        .ok_or_else(|| not_found(id))?;
    let next = request_payment(reservation.status).map_err(|e| Problem::conflict(e.to_string()))?;
    store::set_status(&mut tx, id, next, None, platform::to_millis(now)).await?;
    let amount = Points::new(reservation.amount).map_err(Problem::internal)?;
    let requested = ReservationEvent::PaymentRequested(PaymentRequested {
        reservation_id: id,
        user_id: user,
        amount,
    });
    emit(&mut tx, SERVICE, &requested, None, now).await?;
    tx.commit().await?;
    s.outbox.wake();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "status": next})),
    ))
}
