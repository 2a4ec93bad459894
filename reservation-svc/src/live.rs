//! live: `GET /reservations/{id}/events`, the live status of a reservation as server-sent
//! events — the current status first, then one event per change, until a terminal status.

use crate::domain::{FailureReason, Rejection, Status};
use crate::store::{self, Reservation};
use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::get;
use contracts::{ReservationId, UserId};
use futures::Stream;
use nats::db::Db;
use nats::runtime::AppState;
use nats::web::{Id, Problem, User};
use serde_json::json;
use std::convert::Infallible;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often a live status stream looks for a change (any replica may have made it).
const STATUS_POLL: Duration = Duration::from_millis(50);

pub fn routes() -> Router<AppState<()>> {
    Router::new().route("/reservations/{id}/events", get(status_stream))
}

/// Server-sent events: the current status first, then one `status` event per change, ending
/// after a terminal status (or when the service stops).
async fn status_stream(
    State(s): State<AppState<()>>,
    User(user): User,
    Id(id): Id<ReservationId>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, Problem> {
    let first = store::get_for_user(&mut s.db.reader().await?, id, &user)
        .await?
        .ok_or(Rejection::Unknown(id))?;
    struct Watch {
        db: Db,
        user: UserId,
        stopping: CancellationToken,
        next: Option<Reservation>,
        last: Option<(Status, Option<FailureReason>)>,
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
                    let read =
                        async { store::get_for_user(&mut w.db.reader().await?, id, &w.user).await };
                    match read.await {
                        Ok(Some(r)) => r,
                        Ok(None) => return None,
                        Err(e) => {
                            tracing::warn!(error = %format!("{e:#}"), "status stream read failed");
                            continue;
                        }
                    }
                }
            };
            let now = (r.status, r.reason);
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
