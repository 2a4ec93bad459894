//! http: the caller's reservations (`GET /reservations`, `GET /reservations/{id}`) and the
//! pay and cancel commands (202: accepted, carried out by the saga).

use crate::arrival;
use crate::commands::{self, Command};
use crate::domain::Rejection;
use crate::store;
use crate::watchers::Watchers;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use contracts::ReservationId;
use nats::runtime::AppState;
use nats::unit_of_work::Error;
use nats::web::ProblemType;
use nats::web::command::Refused;
use nats::web::{Answer, CommandRequest, Id, Page, Problem, User};
use serde_json::json;

/// The reservations' routes, as the OpenAPI document describes them.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list,
    get_one,
    pay,
    cancel,
    crate::live::status_stream,
    crate::stuck::list,
    crate::timeline::for_owner,
    crate::timeline::for_admin
))]
pub struct Api;

/// A command accepted: the saga carries it out.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Accepted {
    id: ReservationId,
    status: crate::domain::Status,
}

pub fn routes() -> Router<AppState<Watchers>> {
    Router::new()
        .route("/reservations", get(list))
        .route("/reservations/{id}", get(get_one))
        .route("/reservations/{id}/payment", post(pay))
        .route("/reservations/{id}/cancel", post(cancel))
}

/// Paid already, being paid, or ended.
pub const NOT_AWAITING_PAYMENT: ProblemType = ProblemType::new(
    "not-awaiting-payment",
    StatusCode::CONFLICT,
    "Not awaiting payment",
);
/// Ended, or its payment is under way.
pub const NOT_CANCELLABLE: ProblemType =
    ProblemType::new("not-cancellable", StatusCode::CONFLICT, "Not cancellable");
/// A confirmed reservation whose show has started cannot be cancelled.
pub const SHOW_STARTED: ProblemType =
    ProblemType::new("show-started", StatusCode::CONFLICT, "Show started");

impl From<Rejection> for Problem {
    fn from(r: Rejection) -> Self {
        let kind = match r {
            Rejection::Unknown(id) => return arrival::unknown(id),
            Rejection::NotAwaitingPayment(_) => NOT_AWAITING_PAYMENT,
            Rejection::NotCancellable(_) => NOT_CANCELLABLE,
            Rejection::ShowStarted => SHOW_STARTED,
        };
        Problem::new(kind, r.to_string())
    }
}

/// The caller's reservations, newest first.
#[utoipa::path(get, path = "/reservations", tag = "reservations", security(("bearer" = [])),
    params(nats::web::Page),
    responses(
        (status = 200, body = Vec<store::Reservation>),
        (status = 422, description = "invalid-page", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list(
    State(s): State<AppState<Watchers>>,
    User(user): User,
    page: Page,
) -> Result<impl IntoResponse, Problem> {
    let mut read = s.db.reader().await?;
    Ok(Json(
        store::list_for_user(&mut read, &user, page.limit, page.offset).await?,
    ))
}

/// One of the caller's reservations. One whose hold was just made is waited for briefly, then
/// 503 with Retry-After: never 404 for an id a hold handed out.
#[utoipa::path(get, path = "/reservations/{id}", tag = "reservations", security(("bearer" = [])),
    params(("id" = ReservationId, Path, description = "The reservation")),
    responses(
        (status = 200, body = store::Reservation),
        (status = 404, description = "unknown-reservation", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "reservation-not-ready", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_one(
    State(s): State<AppState<Watchers>>,
    User(user): User,
    Id(id): Id<ReservationId>,
) -> Result<impl IntoResponse, Problem> {
    let found = arrival::read_your_writes(&s, &user, id, || async {
        Ok(store::get_for_user(&mut s.db.reader().await?, id, &user).await?)
    })
    .await?;
    Ok(Json(found))
}

/// Runs a command, once per `Idempotency-Key`; 202 with the status it leaves the reservation
/// in.
async fn accept(
    s: &AppState<Watchers>,
    command: Command,
    key: CommandRequest,
) -> Result<Answer, Problem> {
    let id = command.id;
    let user = command.user.clone();
    // The body is not read: the path says all.
    let (once, _handling) = key.claim(&user, b"")?;
    // A command on a reservation that has not arrived yet waits for it, as a read does.
    arrival::before_command(s, &user, id).await?;
    let answer = arrival::read_your_writes(s, &user, id, || {
        let (command, once) = (command.clone(), once.clone());
        async move {
            let ran = s.uow.decide(move |w| {
                let (once, command) = (once.clone(), command.clone());
                Box::pin(once.run(w, move |w| {
                    Box::pin(async move {
                        let status = commands::run(w, command).await?;
                        let body = json!(Accepted { id, status });
                        Ok(Answer::new(StatusCode::ACCEPTED, body))
                    })
                }))
            });
            match ran.await {
                Err(Error::Rejected(Refused::Command(Rejection::Unknown(_)))) => Ok(None),
                answer => Ok(Some(answer?)),
            }
        }
    })
    .await?;
    if !answer.replayed {
        s.settings.changed(id);
    }
    Ok(answer)
}

/// Pays for a reservation awaiting payment: accepted at once, confirmed or failed by the saga.
#[utoipa::path(post, path = "/reservations/{id}/payment", tag = "reservations", security(("bearer" = [])),
    params(("id" = ReservationId, Path, description = "The reservation"), nats::web::openapi::Command),
    responses(
        (status = 202, body = Accepted),
        (status = 404, description = "unknown-reservation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "not-awaiting-payment, idempotency-key-in-use", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "reservation-not-ready", body = Problem, content_type = "application/problem+json"),
    ))]
async fn pay(
    State(s): State<AppState<Watchers>>,
    User(user): User,
    Id(id): Id<ReservationId>,
    key: CommandRequest,
) -> Result<Answer, Problem> {
    accept(&s, commands::pay(user, id), key).await
}

/// Cancels a reservation: its seats are released and, if it was paid, its points refunded.
#[utoipa::path(post, path = "/reservations/{id}/cancel", tag = "reservations", security(("bearer" = [])),
    params(("id" = ReservationId, Path, description = "The reservation"), nats::web::openapi::Command),
    responses(
        (status = 202, body = Accepted),
        (status = 404, description = "unknown-reservation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "not-cancellable, show-started, idempotency-key-in-use", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "reservation-not-ready", body = Problem, content_type = "application/problem+json"),
    ))]
async fn cancel(
    State(s): State<AppState<Watchers>>,
    User(user): User,
    Id(id): Id<ReservationId>,
    key: CommandRequest,
) -> Result<Answer, Problem> {
    accept(&s, commands::cancel(user, id), key).await
}
