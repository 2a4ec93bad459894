//! unit_of_work: the one place where state changes are written. A unit of work is a piece of
//! code that reads and writes through [`Work`] and emits events; [`UnitOfWork`] runs it in a
//! transaction, writes its events to the outbox in that same transaction, commits, and tells
//! the relay. HTTP commands, consumer batches, deadline scans, the rebuild and the relay's own
//! bookkeeping all come through here; nothing else begins or commits a transaction.
//! [`outbox`] is the table the events are written to, for the relay to publish; every commit
//! also marks the rows the relay has published since the last one.
//!
//! *How* units run is this module's business alone ([`group`]): every unit goes to one
//! committer per service, a database thread of its own (on SQLite it owns the write connection,
//! so a unit's statements run where the connection lives, with no hand-off per statement).
//! Units that arrive while a group commits run together in the next transaction, each in a
//! savepoint of its own, or sharing one where they can run again (the decisions waiting
//! together: [`decisions`]; a consumer's batch: [`batch`]), so one that does not succeed keeps
//! nothing while the others go on, and one commit (one WAL write, one fsync on PostgreSQL)
//! serves them all. Each caller hears back only after the commit that made its effect durable.
//!
//! A unit ends in one of three ways, kept apart all the way to the boundary that maps them
//! (HTTP: 2xx / 4xx / 5xx; consumers: ack / reject / retry): success, a business rejection
//! (`Error::Rejected`, nothing it did is kept), or a technical failure (`Error::Failed`).

mod batch;
mod decisions;
mod group;
pub mod inbox;
mod job;
mod load;
pub mod outbox;
mod work;

pub use load::Load;
pub use outbox::Committed;
pub use work::{Ahead, Error, EventTooLarge, MAX_EVENT_BYTES, Never, Rejection, Unit, Work};

use crate::db::Db;
use futures::future::BoxFuture;
use tokio::sync::mpsc;
use uuid::Uuid;

/// Runs the units of work of one service.
#[derive(Clone)]
pub struct UnitOfWork {
    db: Db,
    /// Where units go to run: the group committer ([`group`]).
    jobs: mpsc::Sender<group::Submission>,
    committed: Committed,
    published: outbox::Published,
    load: Load,
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
            load: Load::default(),
        };
        let uow = UnitOfWork {
            db,
            jobs,
            committed: committer.committed.clone(),
            published: committer.published.clone(),
            load: committer.load.clone(),
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

    /// Whether the committer has had more work than it does lately: the signal to refuse new
    /// arrivals ([`crate::web::shed`]).
    pub fn load(&self) -> &Load {
        &self.load
    }

    /// The rows the relay has published, for the next commit to mark.
    pub fn published(&self) -> outbox::Published {
        self.published.clone()
    }

    /// Runs one unit of work that a business rule may reject: it commits with its events, or
    /// keeps nothing. Decisions arriving while another group commits run together in the next
    /// transaction, in one savepoint ([`decisions`]): the unit may run more than once (when one
    /// of them changed rows and then did not succeed, those before it run again without it).
    /// The answer comes after the commit.
    pub async fn decide<T, R, F>(&self, unit: F) -> Result<T, Error<R>>
    where
        F: for<'w> Fn(&'w mut Work) -> BoxFuture<'w, Result<T, Error<R>>> + Send + Sync + 'static,
        T: Send + 'static,
        R: Send + 'static,
    {
        let (job, answer) = decisions::Decisions::job(std::sync::Arc::new(unit));
        self.submit(job).await?;
        job::answered(answer).await
    }

    /// Runs one unit of work that can only succeed or fail, once: in a savepoint of its own when
    /// it shares a transaction.
    pub async fn run<T, F>(&self, unit: F) -> anyhow::Result<T>
    where
        F: for<'w> FnOnce(&'w mut Work) -> BoxFuture<'w, anyhow::Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        let (job, answer) = group::RunOnce::job(never_rejected(unit));
        self.submit(job).await?;
        Ok(job::answered(answer).await?)
    }

    /// Runs units in order, usually in one transaction and one commit: one that is rejected or
    /// fails keeps nothing while the others go on. Answers one outcome per unit, each only
    /// after the commit that made it durable. Units may run more than once: when one does not
    /// succeed, those before it are undone with it and run again ([`batch`]).
    pub async fn run_all<T, R>(&self, units: Vec<Unit<T, R>>) -> Vec<Result<T, Error<R>>>
    where
        T: Send + 'static,
        R: Send + 'static,
    {
        self.submit_batch(units, None, None).await
    }

    /// Handles a consumer's batch: as [`UnitOfWork::run_all`], each unit handling the event
    /// whose id is beside it. The ids are recorded in `consumer`'s inbox with the units'
    /// effects; a unit whose event was handled before does not run, and answers
    /// `T::default()`.
    pub async fn handle_all<T, R>(
        &self,
        consumer: &'static str,
        deliveries: Vec<(Uuid, Unit<T, R>)>,
    ) -> Vec<Result<T, Error<R>>>
    where
        T: Default + Send + 'static,
        R: Send + 'static,
    {
        self.handle_all_reading_ahead(consumer, deliveries, None)
            .await
    }

    /// As [`UnitOfWork::handle_all`], with `ahead` reading in one statement, at the start of
    /// each pass, what the units about to run will read ([`Work::keep_read_ahead`]).
    pub async fn handle_all_reading_ahead<T, R>(
        &self,
        consumer: &'static str,
        deliveries: Vec<(Uuid, Unit<T, R>)>,
        ahead: Option<Ahead>,
    ) -> Vec<Result<T, Error<R>>>
    where
        T: Default + Send + 'static,
        R: Send + 'static,
    {
        let (ids, units) = deliveries.into_iter().unzip();
        let inbox = batch::Inbox {
            consumer,
            ids,
            again: T::default,
        };
        self.submit_batch(units, Some(inbox), ahead).await
    }

    async fn submit_batch<T, R>(
        &self,
        units: Vec<Unit<T, R>>,
        inbox: Option<batch::Inbox<T>>,
        ahead: Option<Ahead>,
    ) -> Vec<Result<T, Error<R>>>
    where
        T: Send + 'static,
        R: Send + 'static,
    {
        let (job, answers) = batch::Batch::job(units, inbox, ahead);
        if let Err(e) = self.submit(job).await {
            return answers
                .iter()
                .map(|_| Err(Error::Failed(job::copy(&e))))
                .collect();
        }
        let mut outcomes = Vec::with_capacity(answers.len());
        for answer in answers {
            outcomes.push(job::answered(answer).await);
        }
        outcomes
    }

    /// Hands `job` to the committer.
    async fn submit(&self, job: Box<dyn job::Job>) -> anyhow::Result<()> {
        let at = std::time::Instant::now();
        let handing = self.load.queued();
        let sent = self.jobs.send(group::Submission { job, at }).await;
        sent.map_err(|_| anyhow::anyhow!("the unit of work's committer has stopped"))?;
        handing.handed();
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
