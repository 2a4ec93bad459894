//! http: the caller's wallet — `GET /wallet` (balance), `POST /wallet/charge` (add points) and
//! `GET /wallet/ledger`.

use super::domain::{ChargeInvalid, KeyReused, parse_charge, parse_idempotency_key};
use super::{charge, store};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use nats::runtime::AppState;
use nats::web::{Body, Page, Problem, ProblemType, User};
use serde::Deserialize;
use serde_json::json;

pub fn routes() -> Router<AppState<()>> {
    Router::new()
        .route("/wallet", get(wallet))
        .route("/wallet/charge", post(charge_points))
        .route("/wallet/ledger", get(ledger))
}

/// An `Idempotency-Key` sent again with another request than the first time.
pub const KEY_REUSED: ProblemType = ProblemType::new(
    "idempotency-key-reused",
    StatusCode::UNPROCESSABLE_ENTITY,
    "Idempotency key reused",
);
/// An amount that is not a positive number of points, or a malformed key.
pub const INVALID_CHARGE: ProblemType = ProblemType::new(
    "invalid-charge",
    StatusCode::UNPROCESSABLE_ENTITY,
    "Invalid charge",
);

impl From<KeyReused> for Problem {
    fn from(e: KeyReused) -> Self {
        Problem::new(KEY_REUSED, e.to_string())
    }
}

impl From<ChargeInvalid> for Problem {
    fn from(e: ChargeInvalid) -> Self {
        Problem::new(INVALID_CHARGE, e.to_string())
    }
}

async fn wallet(
    State(s): State<AppState<()>>,
    User(user): User,
) -> Result<impl IntoResponse, Problem> {
    let balance = store::balance(&mut s.db.reader().await?, &user).await?;
    Ok(Json(json!({"user_id": user, "balance": balance})))
}

#[derive(Deserialize)]
struct Charge {
    amount: i64,
}

/// Adds points. A client that may send a charge again (it lost the answer) sends an
/// `Idempotency-Key`: the same key charges once.
async fn charge_points(
    State(s): State<AppState<()>>,
    User(user): User,
    headers: HeaderMap,
    Body(body): Body<Charge>,
) -> Result<impl IntoResponse, Problem> {
    let amount = parse_charge(body.amount)?;
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(parse_idempotency_key(v.to_str().unwrap_or_default())?),
    };
    let who = user.clone();
    let balance = s
        .uow
        .decide(move |w| Box::pin(charge(w, who, amount, key)))
        .await?;
    Ok(Json(json!({"user_id": user, "balance": balance})))
}

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
