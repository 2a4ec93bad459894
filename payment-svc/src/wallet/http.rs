//! http: the caller's wallet — `GET /wallet` (balance), `POST /wallet/charge` (add points) and
//! `GET /wallet/ledger`.

use super::domain::{ChargeInvalid, parse_charge};
use super::{charge, store};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use nats::runtime::AppState;
use nats::unit_of_work::{Error, Never};
use nats::web::{Answer, CommandRequest, Page, Problem, ProblemType, Sent, User};
use serde::Deserialize;
use serde_json::json;

/// The wallet's routes, as the OpenAPI document describes them.
#[derive(utoipa::OpenApi)]
#[openapi(paths(wallet, charge_points, ledger))]
pub struct Api;

/// A user's balance.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Balance {
    user_id: contracts::UserId,
    balance: contracts::Points,
}

pub fn routes() -> Router<AppState<()>> {
    Router::new()
        .route("/wallet", get(wallet))
        .route("/wallet/charge", post(charge_points))
        .route("/wallet/ledger", get(ledger))
}

/// An amount that is not a positive number of points, or more than one charge may add.
pub const INVALID_CHARGE: ProblemType = ProblemType::new(
    "invalid-charge",
    StatusCode::UNPROCESSABLE_ENTITY,
    "Invalid charge",
);

impl From<ChargeInvalid> for Problem {
    fn from(e: ChargeInvalid) -> Self {
        Problem::new(INVALID_CHARGE, e.to_string())
    }
}

/// The caller's balance.
#[utoipa::path(get, path = "/wallet", tag = "wallet", security(("bearer" = [])),
    responses((status = 200, body = Balance)))]
async fn wallet(
    State(s): State<AppState<()>>,
    User(user): User,
) -> Result<impl IntoResponse, Problem> {
    let balance = store::balance(&mut s.db.reader().await?, &user).await?;
    Ok(Json(Balance {
        user_id: user,
        balance,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct Charge {
    /// Points to add: 1 to 1,000,000,000.
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    amount: i64,
}

/// Adds points. A client that may send a charge again (it lost the answer) sends an
/// `Idempotency-Key`: the same key charges once.
#[utoipa::path(post, path = "/wallet/charge", tag = "wallet", security(("bearer" = [])),
    params(nats::web::openapi::Command),
    request_body = Charge,
    responses(
        (status = 200, body = Balance),
        (status = 422, description = "invalid-charge, invalid-body, idempotency-key-reused", body = Problem, content_type = "application/problem+json"),
    ))]
async fn charge_points(
    State(s): State<AppState<()>>,
    User(user): User,
    key: CommandRequest,
    sent: Sent<Charge>,
) -> Result<Answer, Problem> {
    let amount = parse_charge(sent.body.amount)?;
    let (once, _handling) = key.claim(&user, &sent.bytes)?;
    let charged = s.uow.decide(move |w| {
        let (once, user) = (once.clone(), user.clone());
        Box::pin(once.run(w, move |w| {
            Box::pin(async move {
                let balance = charge(w, &user, amount).await?;
                let body = json!(Balance {
                    user_id: user,
                    balance,
                });
                Ok::<_, Error<Never>>(Answer::new(StatusCode::OK, body))
            })
        }))
    });
    Ok(charged.await?)
}

/// The caller's ledger, oldest first.
#[utoipa::path(get, path = "/wallet/ledger", tag = "wallet", security(("bearer" = [])),
    params(nats::web::Page),
    responses(
        (status = 200, body = Vec<super::store::Entry>),
        (status = 422, description = "invalid-page", body = Problem, content_type = "application/problem+json"),
    ))]
async fn ledger(
    State(s): State<AppState<()>>,
    User(user): User,
    page: Page,
) -> Result<impl IntoResponse, Problem> {
    let mut read = s.db.reader().await?;
    Ok(Json(
        store::ledger(&mut read, &user, page.limit, page.offset).await?,
    ))
}
