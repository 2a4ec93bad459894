//! state: what a service's HTTP handlers share ([`AppState`]), as one shared value.

use crate::db::Db;
use crate::unit_of_work::UnitOfWork;
use crate::web::shed::Door;
use async_nats::jetstream;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What a service's HTTP handlers share: where its state changes run, its database for reads,
/// JetStream, the door new arrivals come through, its own settings, and the signal that it is
/// stopping. One shared value: axum clones the state for every request (and each middleware
/// with state again), and cloning and dropping the parts one by one (a dozen reference counts,
/// the database's path, the JetStream prefix) cost seat-svc some 8 % of its CPU.
pub struct AppState<S>(Arc<Shared<S>>);

impl<S> Clone for AppState<S> {
    fn clone(&self) -> Self {
        AppState(self.0.clone())
    }
}

impl<S> std::ops::Deref for AppState<S> {
    type Target = Shared<S>;

    fn deref(&self) -> &Shared<S> {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct Shared<S> {
    /// The service's name (also its durable consumers').
    pub name: &'static str,
    pub uow: UnitOfWork,
    pub db: Db,
    pub js: jetstream::Context,
    /// Where new arrivals are admitted or told when to come back.
    pub door: Door,
    /// Cancelled when the service starts to stop: long-lived responses end on it.
    pub stopping: CancellationToken,
    pub settings: S,
}

impl<S> AppState<S> {
    pub(super) fn new(parts: Shared<S>) -> Self {
        AppState(Arc::new(parts))
    }
}

/// The door, for handlers that admit arrivals ([`crate::web::shed::Admitted`]).
impl<S> axum::extract::FromRef<AppState<S>> for Door {
    fn from_ref(state: &AppState<S>) -> Door {
        state.door.clone()
    }
}
