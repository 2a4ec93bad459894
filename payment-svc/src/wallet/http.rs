//! http: the caller's wallet — `GET /wallet` (balance), `POST /wallet/charge` (add points) and
//! `GET /wallet/ledger`.

use super::domain::{ChargeInvalid, parse_charge};
use super::{charge, store};
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use nats::runtime::AppState;
use nats::web::{Body, Problem, User};
use serde::Deserialize;
use serde_json::json;

pub fn routes() -> Router<AppState<()>> {
    Router::new()
        .route("/wallet", get(wallet))
        .route("/wallet/charge", post(charge_points))
        .route("/wallet/ledger", get(ledger))
}

impl From<ChargeInvalid> for Problem {
    fn from(e: ChargeInvalid) -> Self {
        Problem::unprocessable(e.to_string())
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

async fn charge_points(
    State(s): State<AppState<()>>,
    User(user): User,
    Body(body): Body<Charge>,
) -> Result<impl IntoResponse, Problem> {
    let amount = parse_charge(body.amount)?;
    let who = user.clone();
    let balance = s.uow.run(move |w| Box::pin(charge(w, who, amount))).await?;
    Ok(Json(json!({"user_id": user, "balance": balance})))
}

async fn ledger(
    State(s): State<AppState<()>>,
    User(user): User,
) -> Result<impl IntoResponse, Problem> {
    Ok(Json(store::ledger(&mut s.db.reader().await?, &user).await?))
}
