//! group: the committer — the one place a service's transactions run. It takes the units that
//! are waiting, runs them in one transaction (a savepoint each, adjacent decisions one for all:
//! [`super::decisions`]), writes their events to the outbox, marks what the relay has
//! published, commits once, and only then answers each caller, tells the relay and runs the
//! units' after-commit hooks.

use super::decisions;
use super::job::{Again, Answer, Job, Step, copy, reply_each};
use super::load::Load;
use super::outbox::{self, Committed};
use super::work::{Error, Work};
use crate::db::Db;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{Mutex, mpsc, oneshot};

/// Submissions waiting for the committer at most; callers wait beyond it (backpressure).
pub(super) const QUEUE: usize = 4096;
/// Submissions (a unit, or a consumer's batch) per transaction at most: a group's commit is
/// not held back by an endless queue. Groups of two replicas of a service on PostgreSQL may
/// wait for each other's row locks: the server gives up one statement of the deadlock, whose
/// unit keeps nothing and is answered "unavailable" (a consumer's event comes again, an HTTP
/// caller hears 503 with `Retry-After`; the units that shared its savepoint run again), and
/// both groups go on.
const GROUP: usize = 128;

/// A job handed over to the committer.
pub(super) struct Submission {
    pub(super) job: Box<dyn Job>,
    /// When it was handed over: how long it waited tells the [`Load`].
    pub(super) at: Instant,
}

/// A unit of work that runs once (`UnitOfWork::run`: code that cannot run again, unlike a
/// decision's), and where its caller waits for the outcome.
pub(super) struct RunOnce<F, T, R> {
    unit: F,
    answer: oneshot::Sender<Result<T, Error<R>>>,
}

impl<F, T, R> RunOnce<F, T, R>
where
    F: for<'w> FnOnce(&'w mut Work) -> BoxFuture<'w, Result<T, Error<R>>> + Send + 'static,
    T: Send + 'static,
    R: Send + 'static,
{
    pub(super) fn job(unit: F) -> (Box<dyn Job>, Answer<T, R>) {
        let (answer, waiting) = oneshot::channel();
        (Box::new(RunOnce { unit, answer }), waiting)
    }
}

impl<F, T, R> Job for RunOnce<F, T, R>
where
    F: for<'w> FnOnce(&'w mut Work) -> BoxFuture<'w, Result<T, Error<R>>> + Send + 'static,
    T: Send + 'static,
    R: Send + 'static,
{
    fn run<'w>(self: Box<Self>, work: &'w mut Work, alone: bool) -> BoxFuture<'w, Step> {
        let RunOnce { unit, answer } = *self;
        Box::pin(async move {
            if !alone && let Err(e) = work.tx.savepoint().await {
                let _ = answer.send(Err(Error::Failed(copy(&e))));
                return Step::Broken(e, None);
            }
            let outcome = work.unit(unit).await;
            let succeeded = outcome.is_ok();
            let reply = reply_each(vec![answer], vec![Some(outcome)]);
            if alone {
                return match succeeded {
                    true => Step::Next(reply),
                    false => Step::Undone(reply),
                };
            }
            match work.tx.end_savepoint(succeeded).await {
                // One that did not succeed keeps nothing, and is told so at the commit.
                Ok(()) => Step::Next(reply),
                Err(e) => Step::Broken(e.context("end a unit's savepoint"), Some(reply)),
            }
        })
    }

    fn fail(self: Box<Self>, error: &anyhow::Error) {
        let _ = self.answer.send(Err(Error::Failed(copy(error))));
    }

    fn units(&self) -> usize {
        1
    }

    fn decisions(self: Box<Self>) -> Result<Vec<Box<dyn Again>>, Box<dyn Job>> {
        Err(self)
    }
}

/// Runs a service's units of work, a group at a time.
pub(super) struct Committer {
    pub(super) db: Db,
    pub(super) service: &'static str,
    pub(super) committed: Committed,
    pub(super) published: outbox::Published,
    pub(super) load: Load,
}

impl Committer {
    /// Each committer on a thread of its own, with a runtime of its own. On SQLite every
    /// statement of a unit runs there synchronously on the write connection; on PostgreSQL the
    /// committer's connection is opened there too (`Db::begin`), so each answer of the server
    /// wakes that thread at once instead of waiting for a turn among the service's requests and
    /// consumers on the shared runtime: its transactions are a chain of round trips, one after
    /// another (paired runs +8-14 % sagas/s: docs/benchmarks.md).
    pub(super) fn start(self, queue: mpsc::Receiver<Submission>) {
        let queue = Arc::new(Mutex::new(queue));
        let committer = Arc::new(self);
        for _ in 0..committer.db.committers() {
            let (committer, queue) = (committer.clone(), queue.clone());
            let name = format!("{}-db", committer.service);
            let spawned = std::thread::Builder::new().name(name).spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    // The committer, and with it maybe the last handle on the database and
                    // the connections opened here, is dropped on its runtime: a pooled
                    // connection's drop needs one.
                    Ok(runtime) => runtime.block_on(async move { committer.serve(queue).await }),
                    Err(e) => tracing::error!(error = %e, "start the database thread's runtime"),
                }
            });
            if let Err(e) = spawned {
                // Its units are answered with the failure instead (once no committer is left,
                // the queue is closed).
                tracing::error!(error = %e, "start the database thread");
            }
        }
    }

    /// Until every [`super::UnitOfWork`] of the service is gone.
    async fn serve(&self, queue: Arc<Mutex<mpsc::Receiver<Submission>>>) {
        let mut submissions = Vec::with_capacity(GROUP);
        loop {
            // One committer takes what waits; the others wait their turn to take.
            if queue.lock().await.recv_many(&mut submissions, GROUP).await == 0 {
                return;
            }
            self.load.taken(submissions.len());
            // The first waited longest.
            self.load.waited(submissions[0].at.elapsed());
            self.run(submissions.drain(..).map(|s| s.job).collect())
                .await;
        }
    }

    /// Runs `group` in one transaction and answers each of its units after the commit.
    async fn run(&self, group: Vec<Box<dyn Job>>) {
        let group = decisions::join(group);
        let mut work = match self.db.begin().await {
            Ok(tx) => Work::new(tx, self.service, self.db.clock().clone()),
            Err(e) => {
                let e = e.context("begin a transaction");
                return group.into_iter().for_each(|job| job.fail(&e));
            }
        };
        let alone = group.len() == 1;
        let units: usize = group.iter().map(|job| job.units()).sum();
        let mut replies = Vec::with_capacity(group.len());
        let mut jobs = group.into_iter();
        let mut broken = None;
        for job in jobs.by_ref() {
            match job.run(&mut work, alone).await {
                Step::Next(reply) => replies.push(reply),
                // A job alone that did not succeed: its transaction keeps nothing.
                Step::Undone(reply) => {
                    drop(work);
                    return reply(None);
                }
                Step::Broken(e, reply) => {
                    replies.extend(reply);
                    broken = Some(e);
                    break;
                }
            }
        }
        let outcome = match broken {
            None => self.commit(work).await,
            Some(e) => Err(e),
        };
        match &outcome {
            Ok(()) => {
                // Units per commit: how well commits are grouped.
                metrics::counter!("unit_of_work_commits_total").increment(1);
                metrics::counter!("unit_of_work_units_total").increment(units as u64);
                replies.into_iter().for_each(|reply| reply(None))
            }
            Err(e) => {
                replies.into_iter().for_each(|reply| reply(Some(e)));
                jobs.for_each(|job| job.fail(e));
            }
        }
    }

    /// Marks the rows the relay has published since the last commit, writes the events of the
    /// units that succeeded to the outbox (on PostgreSQL both in one statement: the marks are
    /// a write sent later), commits, tells the relay and runs the hooks.
    async fn commit(&self, mut work: Work) -> anyhow::Result<()> {
        let events = std::mem::take(&mut work.committing);
        let hooks = std::mem::take(&mut work.committed_hooks);
        let now = work.now_ms();
        let marks = self.published.take();
        let written = async {
            outbox::mark_published(&mut work, &marks, now).await?;
            let written = outbox::insert(&mut work, &events, now).await?;
            work.tx.commit().await?;
            anyhow::Ok(written)
        }
        .await;
        let written = match written {
            Ok(written) => {
                self.published.marked(&marks);
                written
            }
            Err(e) => {
                self.published.put_back(&marks);
                return Err(e);
            }
        };
        if !written.is_empty() {
            self.committed.tell(written);
        }
        for hook in hooks {
            hook();
        }
        Ok(())
    }
}
