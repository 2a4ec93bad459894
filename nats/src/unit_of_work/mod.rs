//! unit_of_work: the one place where state changes are written. A unit of work is a piece of
//! code that reads and writes through [`Work`] and emits events; [`UnitOfWork`] runs it in a
//! transaction, writes its events to the outbox in that same transaction, commits, and tells
//! the relay. HTTP commands, consumer batches, deadline scans, the rebuild and the relay's own
//! bookkeeping all come through here; nothing else begins or commits a transaction.
//! [`outbox`] is the table the events are written to, for the relay to publish; every commit
//! also marks the rows the relay has published since the last one.
//!
//! *How* units run is this module's business alone ([`group`]): every unit goes to one
//! committer per service (on SQLite a database thread that owns the write connection, so a
//! unit's statements run where the connection lives, with no hand-off per statement). Units
//! that arrive while a group commits run together in the next transaction, each in a savepoint
//! of its own, so one that does not succeed keeps nothing while the others go on, and one
//! commit (one WAL write, one fsync on PostgreSQL) serves them all. Each caller hears back only
//! after the commit that made its effect durable.
//!
//! A unit ends in one of three ways, kept apart all the way to the boundary that maps them
//! (HTTP: 2xx / 4xx / 5xx; consumers: ack / reject / retry): success, a business rejection
//! (`Error::Rejected`, nothing it did is kept), or a technical failure (`Error::Failed`).

mod group;
pub mod outbox;

use crate::db::{Clock, Db, Sql, Statement, Tx, to_millis};
use contracts::{Event, Message};
use futures::future::BoxFuture;
use std::borrow::Cow;
use std::sync::Arc;
use time::OffsetDateTime;
use tokio::sync::{Notify, mpsc};
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
    fn new(tx: Tx, service: &'static str, clock: Clock) -> Work {
        Work {
            tx,
            service,
            now: clock.now(),
            clock,
            cause: None,
            emitted: Vec::new(),
            committing: Vec::new(),
            hooks: Vec::new(),
            committed_hooks: Vec::new(),
        }
    }

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
        let mut outcome = unit(self).await;
        // One oversized event would stall the relay: a unit emitting one keeps nothing.
        if outcome.is_ok()
            && let Some(msg) = self.emitted.iter().find(|m| size_of(m) > MAX_EVENT_BYTES)
        {
            let (subject, bytes) = (msg.subject.clone(), size_of(msg));
            outcome = Err(Error::Failed(EventTooLarge { subject, bytes }.into()));
        }
        if outcome.is_ok() {
            self.committing.append(&mut self.emitted);
            self.committed_hooks.append(&mut self.hooks);
        }
        outcome
    }
}

impl Sql for Work {
    fn statement(&mut self, text: Cow<'static, str>) -> Statement<'_> {
        self.tx.statement(text)
    }
}

/// A unit of work of a batch: code over [`Work`] with an outcome.
pub type Unit<T, R> =
    Arc<dyn for<'w> Fn(&'w mut Work) -> BoxFuture<'w, Result<T, Error<R>>> + Send + Sync>;

/// Said after a commit that wrote events, with the rows it wrote: the relay waits on it and
/// publishes them from memory instead of reading them back.
#[derive(Clone, Default)]
pub struct Committed(Arc<CommittedRows>);

#[derive(Default)]
struct CommittedRows {
    told: Notify,
    rows: std::sync::Mutex<std::collections::VecDeque<outbox::Pending>>,
}

/// Committed rows the relay has not taken at most; beyond it they are dropped, and the relay
/// reads them from the table instead (a relay that does not lead takes none).
const COMMITTED_ROWS: usize = 50_000;

impl Committed {
    /// Resolves after the next commit that wrote events (or at once if one came since the last
    /// wait).
    pub async fn wait(&self) {
        self.0.told.notified().await
    }

    /// The rows committed since the last call, in commit order (with a gap in their order
    /// where rows were dropped).
    pub fn take(&self) -> Vec<outbox::Pending> {
        self.rows().drain(..).collect()
    }

    fn rows(&self) -> std::sync::MutexGuard<'_, std::collections::VecDeque<outbox::Pending>> {
        self.0
            .rows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn tell(&self, written: Vec<outbox::Pending>) {
        {
            let mut rows = self.rows();
            if rows.len() + written.len() <= COMMITTED_ROWS {
                rows.extend(written);
            }
        }
        self.0.told.notify_one();
    }
}

/// Runs the units of work of one service.
#[derive(Clone)]
pub struct UnitOfWork {
    db: Db,
    /// Where units go to run: the group committer ([`group`]).
    jobs: mpsc::Sender<Box<dyn group::Job>>,
    committed: Committed,
    published: outbox::Published,
}

impl UnitOfWork {
    /// Starts the service's group committer: on SQLite a database thread of its own, which owns
    /// the write connection; on PostgreSQL a task.
    pub fn new(db: Db, service: &'static str) -> Self {
        let (jobs, queue) = mpsc::channel(group::QUEUE);
        let committer = group::Committer {
            db: db.clone(),
            service,
            committed: Committed::default(),
            published: outbox::Published::default(),
        };
        let uow = UnitOfWork {
            db,
            jobs,
            committed: committer.committed.clone(),
            published: committer.published.clone(),
        };
        committer.start(queue);
        uow
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
    /// keeps nothing. Units arriving while another group commits run together in the next
    /// transaction, each in a savepoint of its own; the answer comes after the commit.
    pub async fn decide<T, R, F>(&self, unit: F) -> Result<T, Error<R>>
    where
        F: for<'w> FnOnce(&'w mut Work) -> BoxFuture<'w, Result<T, Error<R>>> + Send + 'static,
        T: Send + 'static,
        R: Send + 'static,
    {
        let (job, answer) = group::Decision::new(unit);
        self.submit(vec![job]).await?;
        group::answered(answer).await
    }

    /// Runs one unit of work that can only succeed or fail.
    pub async fn run<T, F>(&self, unit: F) -> anyhow::Result<T>
    where
        F: for<'w> FnOnce(&'w mut Work) -> BoxFuture<'w, anyhow::Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        Ok(self.decide(never_rejected(unit)).await?)
    }

    /// Runs units in order (a consumer's batch), each in a savepoint of its own, usually in one
    /// transaction and one commit: one that is rejected or fails keeps nothing while the others
    /// go on. Answers one outcome per unit, each only after the commit that made it durable.
    pub async fn run_all<T, R>(&self, units: Vec<Unit<T, R>>) -> Vec<Result<T, Error<R>>>
    where
        T: Send + 'static,
        R: Send + 'static,
    {
        let (jobs, answers): (Vec<_>, Vec<_>) = units
            .into_iter()
            .map(|unit| group::Decision::new(move |w: &mut Work| unit(w)))
            .unzip();
        if let Err(e) = self.submit(jobs).await {
            return answers
                .iter()
                .map(|_| Err(Error::Failed(group::copy(&e))))
                .collect();
        }
        let mut outcomes = Vec::with_capacity(answers.len());
        for answer in answers {
            outcomes.push(group::answered(answer).await);
        }
        outcomes
    }

    async fn submit(&self, jobs: Vec<Box<dyn group::Job>>) -> anyhow::Result<()> {
        for job in jobs {
            self.jobs
                .send(job)
                .await
                .map_err(|_| anyhow::anyhow!("the unit of work's committer has stopped"))?;
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
