//! live: `GET /reservations/{id}/events`, the live status of a reservation as server-sent
//! events — the current status first, then one event per change, until a terminal status.

use crate::arrival;
use crate::domain::{FailureReason, Status};
use crate::store::{self, Reservation};
use crate::watchers::{Watchers, Watching};
use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::get;
use contracts::ReservationId;
use futures::Stream;
use nats::db::Db;
use nats::runtime::AppState;
use nats::web::{Id, Problem, Session};
use serde_json::json;
use std::convert::Infallible;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often a stream reads its reservation with no word of a change: another replica may have
/// made it (changes made here wake the stream at once).
const ELSEWHERE_POLL: Duration = Duration::from_secs(1);

pub fn routes() -> Router<AppState<Watchers>> {
    Router::new().route("/reservations/{id}/events", get(status_stream))
}

/// Server-sent events: the current status first, then one `status` event per change, ending
/// after a terminal status, when the token that opened it expires, or when the service stops.
#[utoipa::path(get, path = "/reservations/{id}/events", tag = "reservations", security(("bearer" = [])),
    params(("id" = ReservationId, Path, description = "The reservation")),
    responses(
        (status = 200, description = "Server-sent `status` events, each `{id, status, reason?}`", content_type = "text/event-stream", body = String),
        (status = 404, description = "unknown-reservation", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "reservation-not-ready", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn status_stream(
    State(s): State<AppState<Watchers>>,
    session: Session,
    Id(id): Id<ReservationId>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, Problem> {
    // Watch before the first read: a change committed in between still wakes the stream.
    let watching = s.settings.watch(&session.user, id)?;
    let first = arrival::read_your_writes(&s, &session.user, id, || async {
        Ok(store::get_for_user(&mut s.db.reader().await?, id, &session.user).await?)
    })
    .await?;
    let left = (session.expires_at - time::OffsetDateTime::now_utc()).max(time::Duration::ZERO);
    struct Watch {
        db: Db,
        watching: Watching,
        stopping: CancellationToken,
        expires: tokio::time::Instant,
        next: Option<Reservation>,
        last: Option<(Status, Option<FailureReason>)>,
    }
    let start = Watch {
        db: s.db.clone(),
        watching,
        stopping: s.stopping.clone(),
        expires: tokio::time::Instant::now() + left.unsigned_abs(),
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
                        _ = tokio::time::sleep_until(w.expires) => return None,
                        _ = w.watching.signal.changed() => {}
                        _ = tokio::time::sleep(ELSEWHERE_POLL) => {}
                    }
                    let user = w.watching.user();
                    let read =
                        async { store::get_for_user(&mut w.db.reader().await?, id, user).await };
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
