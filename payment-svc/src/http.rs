//! http: the caller's wallet — balance, charge points, and the ledger.

use crate::domain::parse_charge;
use crate::store;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use platform::auth::User;
use platform::db::Db;
use platform::http::{Body, Problem};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/wallet", get(wallet))
        .route("/wallet/charge", post(charge))
        .route("/wallet/ledger", get(ledger))
        .with_state(state)
}

async fn wallet(State(s): State<AppState>, User(user): User) -> Result<impl IntoResponse, Problem> {
    let balance = store::balance(s.db.pool(), &user).await?;
    Ok(Json(json!({"user_id": user, "balance": balance})))
}

#[derive(Deserialize)]
struct Charge {
    amount: i64,
}

async fn charge(
    State(s): State<AppState>,
    User(user): User,
    Body(body): Body<Charge>,
) -> Result<impl IntoResponse, Problem> {
    let amount = parse_charge(body.amount).map_err(|e| Problem::unprocessable(e.to_string()))?;
    let now = platform::to_millis(OffsetDateTime::now_utc());
    let mut tx = s.db.begin().await?;
    let balance = store::charge(&mut tx, &user, amount, now).await?;
    tx.commit().await?;
    Ok(Json(json!({"user_id": user, "balance": balance})))
}

async fn ledger(State(s): State<AppState>, User(user): User) -> Result<impl IntoResponse, Problem> {
    Ok(Json(store::ledger(s.db.pool(), &user).await?))
}
