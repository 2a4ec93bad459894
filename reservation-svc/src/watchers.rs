//! watchers: who in this process waits on which reservation — the open status streams (and how
//! many each user has open), and requests waiting for a reservation to arrive — each woken by
//! the commits that change the reservation.

use contracts::{ReservationId, UserId};
use nats::web::Problem;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::watch;

/// Live streams one user may have open at once.
pub const STREAMS_PER_USER: usize = 8;

/// The open status streams of this process: a signal per watched reservation, and how many
/// streams each user has open.
#[derive(Clone, Default)]
pub struct Watchers(Arc<Mutex<Inner>>);

#[derive(Default)]
struct Inner {
    signals: HashMap<ReservationId, Weak<watch::Sender<()>>>,
    /// How many signals there may be before those nobody holds are forgotten.
    sweep_at: usize,
    open: HashMap<UserId, usize>,
}

/// One open stream: its reservation's signal, and its place in the user's count.
pub struct Watching {
    watchers: Watchers,
    pub user: UserId,
    pub signal: Signal,
}

/// Word of a reservation's committed changes in this process, while it is held.
pub struct Signal {
    _sender: Arc<watch::Sender<()>>,
    changed: watch::Receiver<()>,
}

impl Signal {
    /// Until the next change after the last one seen (or since the signal was taken).
    pub async fn changed(&mut self) {
        // The sender lives as long as this signal: it cannot be closed.
        let _ = self.changed.changed().await;
    }
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
    pub fn watch(&self, user: &UserId, id: ReservationId) -> Result<Watching, Problem> {
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
        drop(inner);
        Ok(Watching {
            watchers: self.clone(),
            user: user.clone(),
            signal: self.signal(id),
        })
    }

    /// The signal of `id`'s changes committed in this process, from now on.
    pub fn signal(&self, id: ReservationId) -> Signal {
        let mut inner = self.inner();
        // Forgets the signals nobody holds once there are twice as many as the last time:
        // amortised, as thousands may wait at once in a sale.
        if inner.signals.len() >= inner.sweep_at {
            inner.signals.retain(|_, s| s.strong_count() > 0);
            inner.sweep_at = (2 * inner.signals.len()).max(64);
        }
        let sender = match inner.signals.get(&id).and_then(Weak::upgrade) {
            Some(sender) => sender,
            None => {
                let sender = Arc::new(watch::Sender::new(()));
                inner.signals.insert(id, Arc::downgrade(&sender));
                sender
            }
        };
        let changed = sender.subscribe();
        Signal {
            _sender: sender,
            changed,
        }
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
