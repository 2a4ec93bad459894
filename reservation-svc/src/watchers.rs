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
/// Requests of one user that may wait at once for a reservation to arrive: a client cannot make
/// the service hold many requests open by asking about ids that are fresh but never come.
pub const ARRIVALS_PER_USER: usize = 8;

/// What a user holds places for, each capped per user.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Stream,
    Arrival,
}

/// The open status streams of this process and its requests waiting for a reservation: a signal
/// per watched reservation, and how many places of each kind each user holds.
#[derive(Clone, Default)]
pub struct Watchers(Arc<Mutex<Inner>>);

#[derive(Default)]
struct Inner {
    signals: HashMap<ReservationId, Weak<watch::Sender<()>>>,
    /// How many signals there may be before those nobody holds are forgotten.
    sweep_at: usize,
    held: HashMap<(Kind, UserId), usize>,
}

/// A user's place among their streams or waiting requests; given back when dropped.
struct Place {
    watchers: Watchers,
    kind: Kind,
    user: UserId,
}

/// An open stream, or a request waiting for its reservation to arrive: the reservation's
/// signal, and the user's place.
pub struct Watching {
    place: Place,
    pub signal: Signal,
}

impl Watching {
    pub fn user(&self) -> &UserId {
        &self.place.user
    }
}

impl Kind {
    /// Places of this kind one user may hold at once.
    fn limit(self) -> usize {
        match self {
            Kind::Stream => STREAMS_PER_USER,
            Kind::Arrival => ARRIVALS_PER_USER,
        }
    }

    /// The answer to a user who holds [`Kind::limit`] already.
    fn refused(self) -> Problem {
        let (detail, retry_after) = match self {
            Kind::Stream => (
                format!("{STREAMS_PER_USER} live streams are open for this user; close one first"),
                5,
            ),
            Kind::Arrival => (
                format!(
                    "{ARRIVALS_PER_USER} requests of this user already wait for reservations \
                     that are being set up; try again in a moment"
                ),
                1,
            ),
        };
        Problem::new(nats::web::kinds::TOO_MANY_REQUESTS, detail).retry_after(retry_after)
    }
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
        self.open(Kind::Stream, user, id)
    }

    /// A request of `user` waits for `id` to arrive, unless the user has
    /// [`ARRIVALS_PER_USER`] waiting.
    pub fn await_arrival(&self, user: &UserId, id: ReservationId) -> Result<Watching, Problem> {
        self.open(Kind::Arrival, user, id)
    }

    /// One more place of `kind` for `user` (unless they hold its limit), watching `id`.
    fn open(&self, kind: Kind, user: &UserId, id: ReservationId) -> Result<Watching, Problem> {
        let mut inner = self.inner();
        let held = inner.held.entry((kind, user.clone())).or_default();
        if *held >= kind.limit() {
            return Err(kind.refused());
        }
        *held += 1;
        drop(inner);
        let place = Place {
            watchers: self.clone(),
            kind,
            user: user.clone(),
        };
        Ok(Watching {
            place,
            signal: self.signal(id),
        })
    }

    /// The signal of `id`'s changes committed in this process, from now on.
    fn signal(&self, id: ReservationId) -> Signal {
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

impl Drop for Place {
    fn drop(&mut self) {
        let mut inner = self.watchers.inner();
        let key = (self.kind, self.user.clone());
        if let Some(held) = inner.held.get_mut(&key) {
            *held -= 1;
            if *held == 0 {
                inner.held.remove(&key);
            }
        }
    }
}
