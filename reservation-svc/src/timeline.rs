//! timeline: a saga as it happened on the bus, over HTTP — for the reservation's owner
//! (`GET /reservations/{id}/timeline`) and for admins (`GET /admin/sagas/{id}`): every event of
//! every stream in order, and where each consumer stands on it (see
//! [`nats::messaging::timeline`]).

use crate::arrival;
use crate::store;
use crate::watchers::Watchers;
use axum::routing::get;
use axum::{Json, Router, extract::State};
use contracts::ReservationId;
use nats::messaging::timeline::{self, Step};
use nats::runtime::AppState;
use nats::web::{Admin, Id, Problem, User};

pub fn routes() -> Router<AppState<Watchers>> {
    Router::new()
        .route("/reservations/{id}/timeline", get(for_owner))
        .route("/admin/sagas/{id}", get(for_admin))
}

async fn steps(s: &AppState<Watchers>, id: ReservationId) -> Result<Vec<Step>, Problem> {
    Ok(timeline::saga(&s.js, id.0).await?)
}

/// The reservation's saga, event by event, as its owner may follow it.
#[utoipa::path(get, path = "/reservations/{id}/timeline", tag = "reservations", security(("bearer" = [])),
    params(("id" = ReservationId, Path, description = "The reservation")),
    responses(
        (status = 200, body = Vec<Step>),
        (status = 404, description = "unknown-reservation", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "reservation-not-ready", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn for_owner(
    State(s): State<AppState<Watchers>>,
    User(user): User,
    Id(id): Id<ReservationId>,
) -> Result<Json<Vec<Step>>, Problem> {
    // Only the owner's: someone else's reservation is unknown to them.
    arrival::read_your_writes(&s, &user, id, || async {
        Ok(store::get_for_user(&mut s.db.reader().await?, id, &user).await?)
    })
    .await?;
    Ok(Json(steps(&s, id).await?))
}

/// Any saga, event by event, with where each consumer stands (admin).
#[utoipa::path(get, path = "/admin/sagas/{id}", tag = "sagas", security(("bearer" = [])),
    params(("id" = ReservationId, Path, description = "The reservation: the saga's correlation id")),
    responses(
        (status = 200, body = Vec<Step>),
        (status = 403, description = "admin-only", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn for_admin(
    State(s): State<AppState<Watchers>>,
    _: Admin,
    Id(id): Id<ReservationId>,
) -> Result<Json<Vec<Step>>, Problem> {
    Ok(Json(steps(&s, id).await?))
}
