//! unit_of_work: the one place where state changes are written. A unit of work is a piece of
//! code that reads and writes through [`Work`] and emits events; [`UnitOfWork`] runs it in a
//! transaction, writes its events to the outbox in that same transaction, commits, and tells
//! the relay. HTTP commands, consumer batches, deadline scans, the rebuild and the relay's own
//! bookkeeping all come through here; nothing else begins or commits a transaction.
//! [`outbox`] is the table the events are written to, for the relay to publish; every commit
//! also marks the rows the relay has published since the last one.
//!
//! *How* units run is this module's business alone: today each call is one transaction, and
//! the units of one [`UnitOfWork::run_all`] (a consumer's batch) share one transaction and one
//! commit; if one of them does not succeed, the transaction is dropped and each runs again alone,
//! so one that fails keeps nothing while the others go on. Units are `'static` closures that
//! only touch [`Work`], so they can later be grouped across callers or run on a database thread
//! without changing a store.
//!
//! A unit ends in one of three ways, kept apart all the way to the boundary that maps them
//! (HTTP: 2xx / 4xx / 5xx; consumers: ack / reject / retry): success, a business rejection
//! (`Error::Rejected`, nothing it did is kept), or a technical failure (`Error::Failed`).

pub mod outbox;

use crate::db::{Backend, Clock, Db, Sql, Statement, Tx, to_millis};
use anyhow::Context as _;
use contracts::{Event, Message};
use futures::future::BoxFuture;
use std::borrow::Cow;
use std::sync::Arc;
use time::OffsetDateTime;
use tokio::sync::Notify;
use uuid::Uuid;

/// The largest event (payload and headers) a unit of work may emit: nats-server's default
/// `max_payload` is 1 MiB (the committed configs keep it), less room for the protocol.
pub const MAX_EVENT_BYTES: usize = 1_000_000;

/// An event too large to publish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the event {subject} would be {bytes} bytes, more than the {MAX_EVENT_BYTES} an event may be"
)]
pub struct EventTooLarge {
    pub subject: String,
    pub bytes: usize,
}

fn size_of(msg: &Message) -> usize {
    msg.payload.len()
        + msg
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 4)
            .sum::<usize>()
}

/// How a unit of work did not succeed.
#[derive(Debug)]
pub enum Error<R> {
    /// A business "no" (seat taken, not the caller's, not awaiting payment): nothing is kept.
    Rejected(R),
    /// Something technical went wrong (database, a broken invariant): nothing is kept.
    Failed(anyhow::Error),
}

/// A business rejection a unit of work may end with; each boundary maps it once (HTTP: to a
/// 4xx problem).
pub trait Rejection: Send + 'static {}

/// For units that cannot be rejected, only fail.
#[derive(Debug)]
pub enum Never {}
impl Rejection for Never {}

impl<R: Rejection> From<R> for Error<R> {
    fn from(r: R) -> Self {
        Error::Rejected(r)
    }
}

impl<R> From<anyhow::Error> for Error<R> {
    fn from(e: anyhow::Error) -> Self {
        Error::Failed(e)
    }
}

impl From<Error<Never>> for anyhow::Error {
    fn from(e: Error<Never>) -> Self {
        match e {
            Error::Failed(e) => e,
            Error::Rejected(never) => match never {},
        }
    }
}

/// What a unit of work sees: the transaction, the time it runs at, and the events it emits.
pub struct Work {
    tx: Tx,
    backend: Backend,
    service: &'static str,
    now: OffsetDateTime,
    /// Where `now` comes from: the database's time, so every replica agrees on deadlines.
    clock: Clock,
    cause: Option<Uuid>,
    /// Events of the unit running now; they join `committing` if it succeeds.
    emitted: Vec<Message>,
    /// Events of the units that succeeded in this transaction, written at the commit.
    committing: Vec<Message>,
    /// What the unit running now asked to run once its effects are durable.
    hooks: Vec<Hook>,
    /// Those of the units that succeeded in this transaction, run after the commit.
    committed_hooks: Vec<Hook>,
}

/// Something to do once a unit's effects are committed (e.g. wake who watches them).
type Hook = Box<dyn FnOnce() + Send>;

impl Work {
    /// The time the unit runs at (the database's clock): every timestamp it writes.
    pub fn now(&self) -> OffsetDateTime {
        self.now
    }

    pub fn now_ms(&self) -> i64 {
        to_millis(self.now)
    }

    /// Emits `event`, caused by what the unit handles (see [`Work::caused_by`]): it is written
    /// to the outbox with the unit's effects and published after the commit. An event too large
    /// to publish fails the commit (see [`Work::fits`] to refuse it first).
    pub fn emit<E: Event>(&mut self, event: &E) {
        self.emitted
            .push(Message::new(self.service, event, self.cause, self.now));
    }

    /// Runs `hook` after the commit that makes this unit's effects durable; never if the unit
    /// or its transaction does not succeed. For telling this process's watchers of a change.
    pub fn after_commit(&mut self, hook: impl FnOnce() + Send + 'static) {
        self.hooks.push(Box::new(hook));
    }

    /// Whether `event` is small enough to publish, as this unit would emit it.
    pub fn fits<E: Event>(&self, event: &E) -> Result<(), EventTooLarge> {
        let msg = Message::new(self.service, event, self.cause, self.now);
        match size_of(&msg) {
            bytes if bytes > MAX_EVENT_BYTES => Err(EventTooLarge {
                subject: msg.subject,
                bytes,
            }),
            _ => Ok(()),
        }
    }

    /// The event or command the unit's events are caused by (their `ce-causationid`).
    pub fn caused_by(&mut self, cause: Uuid) {
        self.cause = Some(cause);
    }

    /// Runs `unit` in this transaction: its events are kept for the commit if it succeeds.
    async fn unit<T, R>(
        &mut self,
        unit: impl for<'w> FnOnce(&'w mut Work) -> BoxFuture<'w, Result<T, Error<R>>>,
    ) -> Result<T, Error<R>> {
        self.now = self.clock.now();
        self.cause = None;
        self.emitted.clear();
        self.hooks.clear();
        let outcome = unit(self).await;
        if outcome.is_ok() {
            self.committing.append(&mut self.emitted);
            self.committed_hooks.append(&mut self.hooks);
        }
        outcome
    }
}

impl Sql for Work {
    fn statement(&mut self, text: Cow<'static, str>) -> Statement<'_> {
        Statement::new(&mut self.tx, self.backend, text)
    }
}

/// A unit of work of a batch: code over [`Work`] with an outcome. It may run twice (see
/// [`UnitOfWork::run_all`]), so it is `Fn`.
pub type Unit<T, R> =
    Arc<dyn for<'w> Fn(&'w mut Work) -> BoxFuture<'w, Result<T, Error<R>>> + Send + Sync>;

/// Said after a commit that wrote events: the relay waits on it.
#[derive(Clone, Default)]
pub struct Committed(Arc<Notify>);

impl Committed {
    /// Resolves after the next commit that wrote events (or at once if one came since the last
    /// wait).
    pub async fn wait(&self) {
        self.0.notified().await
    }

    fn tell(&self) {
        self.0.notify_one();
    }
}

/// Runs the units of work of one service.
#[derive(Clone)]
pub struct UnitOfWork {
    db: Db,
    service: &'static str,
    committed: Committed,
    published: outbox::Published,
}

impl UnitOfWork {
    pub fn new(db: Db, service: &'static str) -> Self {
        UnitOfWork {
            db,
            service,
            committed: Committed::default(),
            published: outbox::Published::default(),
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The signal the relay waits on.
    pub fn committed(&self) -> Committed {
        self.committed.clone()
    }

    /// The rows the relay has published, for the next commit to mark.
    pub fn published(&self) -> outbox::Published {
        self.published.clone()
    }

    /// Runs one unit of work that a business rule may reject: it commits with its events, or
    /// keeps nothing.
    pub async fn decide<T, R, F>(&self, unit: F) -> Result<T, Error<R>>
    where
        F: for<'w> FnOnce(&'w mut Work) -> BoxFuture<'w, Result<T, Error<R>>> + Send + 'static,
        T: Send + 'static,
        R: Send + 'static,
    {
        let mut work = self.begin().await?;
        // If it does not succeed, dropping the transaction rolls it back.
        let value = work.unit(unit).await?;
        self.commit(work).await?;
        Ok(value)
    }

    /// Runs one unit of work that can only succeed or fail.
    pub async fn run<T, F>(&self, unit: F) -> anyhow::Result<T>
    where
        F: for<'w> FnOnce(&'w mut Work) -> BoxFuture<'w, anyhow::Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        Ok(self.decide(never_rejected(unit)).await?)
    }

    /// Runs units together, in order, in one transaction and one commit (a consumer's batch).
    /// If one of them is rejected or fails, or the commit fails, that transaction keeps nothing
    /// and each unit runs again in one of its own, so one that does not succeed never holds the
    /// others back. Answers one outcome per unit, each only after the commit that made it
    /// durable.
    pub async fn run_all<T, R>(&self, units: Vec<Unit<T, R>>) -> Vec<Result<T, Error<R>>>
    where
        T: Send + 'static,
        R: Send + 'static,
    {
        if units.len() > 1 {
            match self.together(&units).await {
                Ok(values) => return values.into_iter().map(Ok).collect(),
                Err(e) => {
                    tracing::debug!(error = %format!("{e:#}"), size = units.len(), "a batch did not commit whole; one unit at a time")
                }
            }
        }
        let mut outcomes = Vec::with_capacity(units.len());
        for unit in units {
            outcomes.push(self.decide(move |w| unit(w)).await);
        }
        outcomes
    }

    /// All `units` in one transaction, or an error if any of them did not succeed.
    async fn together<T, R>(&self, units: &[Unit<T, R>]) -> anyhow::Result<Vec<T>> {
        let mut work = self.begin().await?;
        let mut values = Vec::with_capacity(units.len());
        for unit in units {
            match work.unit(|w| unit(w)).await {
                Ok(value) => values.push(value),
                Err(Error::Rejected(_)) => anyhow::bail!("a unit was rejected"),
                Err(Error::Failed(e)) => return Err(e),
            }
        }
        self.commit(work).await?;
        Ok(values)
    }

    async fn begin(&self) -> anyhow::Result<Work> {
        let tx = self.db.begin().await.context("begin a transaction")?;
        Ok(Work {
            tx,
            backend: self.db.backend(),
            service: self.service,
            now: self.db.clock().now(),
            clock: self.db.clock().clone(),
            cause: None,
            emitted: Vec::new(),
            committing: Vec::new(),
            hooks: Vec::new(),
            committed_hooks: Vec::new(),
        })
    }

    /// Writes the events of the units that succeeded to the outbox, marks the rows the relay
    /// has published since the last commit, commits, and tells the relay.
    async fn commit(&self, mut work: Work) -> anyhow::Result<()> {
        let events = std::mem::take(&mut work.committing);
        let hooks = std::mem::take(&mut work.committed_hooks);
        // One oversized row would stall the relay: it is never written.
        if let Some(msg) = events.iter().find(|m| size_of(m) > MAX_EVENT_BYTES) {
            let (subject, bytes) = (msg.subject.clone(), size_of(msg));
            return Err(EventTooLarge { subject, bytes }.into());
        }
        let now = work.now_ms();
        outbox::insert(&mut work, &events, now).await?;
        let marks = self.published.take();
        let mut committed = outbox::mark_published(&mut work, &marks, now).await;
        if committed.is_ok() {
            committed = work.tx.commit().await.context("commit");
        }
        match committed {
            Ok(()) => self.published.marked(&marks),
            Err(e) => {
                self.published.put_back(&marks);
                return Err(e);
            }
        }
        if !events.is_empty() {
            self.committed.tell();
        }
        for hook in hooks {
            hook();
        }
        Ok(())
    }
}

/// A unit that can only fail, as one that might be rejected (but never is).
fn never_rejected<T, F>(
    unit: F,
) -> impl for<'w> FnOnce(&'w mut Work) -> BoxFuture<'w, Result<T, Error<Never>>> + Send + 'static
where
    F: for<'w> FnOnce(&'w mut Work) -> BoxFuture<'w, anyhow::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    move |w| Box::pin(async move { unit(w).await.map_err(Error::Failed) })
}
