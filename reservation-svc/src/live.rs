//! live: `GET /reservations/{id}/events`, the live status of a reservation as server-sent
//! events — the current status first, then one event per change, until a terminal status — and
//! who is watching which reservation ([`Watchers`]), woken by the commits that change it.

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
use nats::web::{Id, Problem, Session};
use serde_json::json;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often a stream reads its reservation with no word of a change: another replica may have
/// made it (changes made here wake the stream at once).
const ELSEWHERE_POLL: Duration = Duration::from_secs(1);
/// Live streams one user may have open at once.
pub const STREAMS_PER_USER: usize = 8;

pub fn routes() -> Router<AppState<Watchers>> {
    Router::new().route("/reservations/{id}/events", get(status_stream))
}

/// The open status streams of this process: a signal per watched reservation, and how many
/// streams each user has open.
#[derive(Clone, Default)]
pub struct Watchers(Arc<Mutex<Inner>>);

#[derive(Default)]
struct Inner {
    signals: HashMap<ReservationId, Weak<watch::Sender<()>>>,
    open: HashMap<UserId, usize>,
}

/// One open stream: its reservation's signal, and its place in the user's count.
struct Watching {
    watchers: Watchers,
    user: UserId,
    _signal: Arc<watch::Sender<()>>,
    changed: watch::Receiver<()>,
}

impl Watchers {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every change below is one step: a panic cannot leave the maps half-changed.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A change to `id` is committed: wakes its streams in this process.
    pub fn changed(&self, id: ReservationId) {
        if let Some(signal) = self.inner().signals.get(&id).and_then(Weak::upgrade) {
            signal.send_replace(());
        }
    }

    /// Opens a stream of `user` on `id`, unless the user has [`STREAMS_PER_USER`] open.
    fn watch(&self, user: &UserId, id: ReservationId) -> Result<Watching, Problem> {
        let mut inner = self.inner();
        let open = inner.open.entry(user.clone()).or_default();
        if *open >= STREAMS_PER_USER {
            return Err(Problem::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                format!("{STREAMS_PER_USER} live streams are open for this user; close one first"),
            )
            .retry_after(5));
        }
        *open += 1;
        inner.signals.retain(|_, s| s.strong_count() > 0);
        let signal = match inner.signals.get(&id).and_then(Weak::upgrade) {
            Some(signal) => signal,
            None => {
                let signal = Arc::new(watch::Sender::new(()));
                inner.signals.insert(id, Arc::downgrade(&signal));
                signal
            }
        };
        let changed = signal.subscribe();
        Ok(Watching {
            watchers: self.clone(),
            user: user.clone(),
            _signal: signal,
            changed,
        })
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let mut inner = self.watchers.inner();
        if let Some(open) = inner.open.get_mut(&self.user) {
            *open -= 1;
            if *open == 0 {
                inner.open.remove(&self.user);
            }
        }
    }
}

/// Server-sent events: the current status first, then one `status` event per change, ending
/// after a terminal status, when the token that opened it expires, or when the service stops.
async fn status_stream(
    State(s): State<AppState<Watchers>>,
    session: Session,
    Id(id): Id<ReservationId>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, Problem> {
    // Watch before the first read: a change committed in between still wakes the stream.
    let watching = s.settings.watch(&session.user, id)?;
    let first = store::get_for_user(&mut s.db.reader().await?, id, &session.user)
        .await?
        .ok_or(Rejection::Unknown(id))?;
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
                        _ = w.watching.changed.changed() => {}
                        _ = tokio::time::sleep(ELSEWHERE_POLL) => {}
                    }
                    let user = &w.watching.user;
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
