//! http: the user's reservations, the pay and cancel commands, and a live status stream.

use crate::SERVICE;
use crate::domain::{self, Fact, Facts, Rejection};
use crate::store::{self, Reservation};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::{get, post};
use axum::{Json, Router};
use contracts::events::{PaymentRequested, ReservationCancelled};
use contracts::{Points, ReservationEvent, ReservationId, UserId};
use futures::Stream;
use platform::auth::User;
use platform::db::Db;
use platform::http::{Id, Problem};
use platform::outbox::{Outbox, emit};
use serde_json::json;
use std::convert::Infallible;
use std::time::Duration;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

/// How often a live status stream looks for a change (any replica may have made it).
const STATUS_POLL: Duration = Duration::from_millis(50);

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub outbox: Outbox,
    pub stopping: CancellationToken,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/reservations", get(list))
        .route("/reservations/{id}", get(get_one))
        .route("/reservations/{id}/payment", post(pay))
        .route("/reservations/{id}/cancel", post(cancel))
        .route("/reservations/{id}/events", get(status_stream))
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

/// Runs a command on the caller's reservation: `decide` turns its facts into the new fact (or a
/// 409), `event` names what to announce; both are committed together. Answers 202: the effects
/// follow through the saga, even if the services that carry them out are down right now.
async fn command(
    s: &AppState,
    user: UserId,
    id: ReservationId,
    decide: fn(&Facts) -> Result<Fact, Rejection>,
    event: impl FnOnce(&Reservation, UserId) -> Result<ReservationEvent, Problem>,
) -> Result<(StatusCode, Json<serde_json::Value>), Problem> {
    let now = OffsetDateTime::now_utc();
    let mut tx = s.db.begin().await?;
    let mut r = store::get(&mut tx, id)
        .await?
        .filter(|r| r.user_id == user.0)
        .ok_or_else(|| not_found(id))?;
    let fact = decide(&r.facts).map_err(|e| Problem::conflict(e.to_string()))?;
    r.facts.learn(&fact);
    store::save_facts(&mut tx, id, &r.facts, platform::to_millis(now)).await?;
    emit(&mut tx, SERVICE, &event(&r, user)?, None, now).await?;
    tx.commit().await?;
    s.outbox.wake();
    let (status, _) = r.facts.status();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "status": status})),
    ))
}

async fn pay(
    State(s): State<AppState>,
    User(user): User,
    Id(id): Id<ReservationId>,
) -> Result<impl IntoResponse, Problem> {
    command(&s, user, id, domain::request_payment, move |r, user| {
        let amount = Points::new(r.amount).map_err(Problem::internal)?;
        Ok(ReservationEvent::PaymentRequested(PaymentRequested {
            reservation_id: id,
            user_id: user,
            amount,
        }))
    })
    .await
}

async fn cancel(
    State(s): State<AppState>,
    User(user): User,
    Id(id): Id<ReservationId>,
) -> Result<impl IntoResponse, Problem> {
    command(&s, user, id, domain::cancel, move |_, user| {
        Ok(ReservationEvent::Cancelled(ReservationCancelled {
            reservation_id: id,
            user_id: user,
        }))
    })
    .await
}

/// Server-sent events: the current status first, then one `status` event per change, ending
/// after a terminal status (or when the service stops).
async fn status_stream(
    State(s): State<AppState>,
    User(user): User,
    Id(id): Id<ReservationId>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, Problem> {
    let first = store::get_for_user(s.db.pool(), id, &user)
        .await?
        .ok_or_else(|| not_found(id))?;
    struct Watch {
        db: Db,
        user: UserId,
        stopping: CancellationToken,
        next: Option<Reservation>,
        last: Option<(domain::Status, Option<String>)>,
    }
    let start = Watch {
        db: s.db.clone(),
        user,
        stopping: s.stopping.clone(),
        next: Some(first),
        last: None,
    };
    let stream = futures::stream::unfold(start, move |mut w| async move {
        if w.last.as_ref().is_some_and(|(st, _)| st.is_terminal()) {
            return None;
        }
        loop {
            let r = match w.next.take() {
                Some(r) => r,
                None => {
                    tokio::select! {
                        _ = w.stopping.cancelled() => return None,
                        _ = tokio::time::sleep(STATUS_POLL) => {}
                    }
                    match store::get_for_user(w.db.pool(), id, &w.user).await {
                        Ok(Some(r)) => r,
                        Ok(None) => return None,
                        Err(e) => {
                            tracing::warn!(error = %e, "status stream read failed");
                            continue;
                        }
                    }
                }
            };
            let now = (r.status, r.reason.clone());
            if w.last.as_ref() != Some(&now) {
                let data = json!({"id": id, "status": r.status, "reason": r.reason});
                w.last = Some(now);
                let event = SseEvent::default().event("status").data(data.to_string());
                return Some((Ok(event), w));
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
