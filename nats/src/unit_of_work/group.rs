//! group: the committer — the one place a service's transactions run. It takes the units that
//! are waiting, runs them in one transaction (a savepoint each, when there are several),
//! writes their events to the outbox, marks what the relay has published, commits once, and
//! only then answers each caller, tells the relay and runs the units' after-commit hooks.

use super::load::Load;
use super::outbox::{self, Committed};
use super::work::{Error, Work};
use crate::db::{self, Backend, Db};
use futures::FutureExt as _;
use futures::future::BoxFuture;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{Mutex, mpsc, oneshot};

/// Submissions waiting for the committer at most; callers wait beyond it (backpressure).
pub(super) const QUEUE: usize = 4096;
/// Submissions (a unit, or a consumer's batch) per transaction at most: a group's commit is
/// not held back by an endless queue. Groups of two replicas of a service on PostgreSQL may
/// wait for each other's row locks: the server gives up one statement of the deadlock, whose
/// unit alone is rolled back to its savepoint and answered "unavailable" (a consumer's event
/// comes again, an HTTP caller hears 503 with `Retry-After`), and both groups go on.
const GROUP: usize = 128;

/// Units handed over together: they run in order in one group.
pub(super) struct Submission {
    pub(super) jobs: Vec<Box<dyn Job>>,
    /// When it was handed over: how long it waited tells the [`Load`].
    pub(super) at: Instant,
}

/// What the committer does after a unit ran: answer its caller, once the group's commit is
/// known (`None`: committed).
pub(super) type Reply = Box<dyn FnOnce(Option<&anyhow::Error>) + Send>;

/// A unit waiting to run, its answer type erased.
pub(super) trait Job: Send {
    /// Runs the unit; whether it succeeded, and how to answer its caller.
    fn run<'w>(self: Box<Self>, work: &'w mut Work) -> BoxFuture<'w, (bool, Reply)>;
    /// Answers the caller that its unit could not run.
    fn fail(self: Box<Self>, error: &anyhow::Error);
}

/// A unit of work and where its caller waits for the outcome.
pub(super) struct Decision<F, T, R> {
    unit: F,
    answer: oneshot::Sender<Result<T, Error<R>>>,
}

pub(super) type Answer<T, R> = oneshot::Receiver<Result<T, Error<R>>>;

impl<F, T, R> Decision<F, T, R>
where
    F: for<'w> FnOnce(&'w mut Work) -> BoxFuture<'w, Result<T, Error<R>>> + Send + 'static,
    T: Send + 'static,
    R: Send + 'static,
{
    pub(super) fn job(unit: F) -> (Box<dyn Job>, Answer<T, R>) {
        let (answer, waiting) = oneshot::channel();
        (Box::new(Decision { unit, answer }), waiting)
    }
}

impl<F, T, R> Job for Decision<F, T, R>
where
    F: for<'w> FnOnce(&'w mut Work) -> BoxFuture<'w, Result<T, Error<R>>> + Send + 'static,
    T: Send + 'static,
    R: Send + 'static,
{
    fn run<'w>(self: Box<Self>, work: &'w mut Work) -> BoxFuture<'w, (bool, Reply)> {
        let Decision { unit, answer } = *self;
        Box::pin(async move {
            let outcome = work.unit(unit).await;
            let succeeded = outcome.is_ok();
            let reply: Reply = Box::new(move |failed| {
                let outcome = match failed {
                    None => outcome,
                    // Not durable, whatever the unit said: a "no" may rest on a group that
                    // is gone too.
                    Some(e) => Err(Error::Failed(copy(e))),
                };
                // The caller may have gone (a request that timed out): nothing to tell.
                let _ = answer.send(outcome);
            });
            (succeeded, reply)
        })
    }

    fn fail(self: Box<Self>, error: &anyhow::Error) {
        let _ = self.answer.send(Err(Error::Failed(copy(error))));
    }
}

/// The outcome the committer sent.
pub(super) async fn answered<T, R>(answer: Answer<T, R>) -> Result<T, Error<R>> {
    answer.await.unwrap_or_else(|_| {
        Err(Error::Failed(anyhow::anyhow!(
            "the unit of work ended without an answer (it panicked, or the committer stopped)"
        )))
    })
}

/// One error for one of many callers: the text, and whether the database was unavailable (so
/// each caller still waits or answers 503 as it should).
pub(super) fn copy(e: &anyhow::Error) -> anyhow::Error {
    if db::unavailable(e) {
        db::Unavailable(format!("{e:#}")).into()
    } else {
        anyhow::anyhow!("{e:#}")
    }
}

/// How a unit of a group ended.
enum Step {
    /// The group goes on; the unit is answered at its commit (with its own outcome, if it
    /// did not succeed: its savepoint is rolled back).
    Next(Reply),
    /// It ran alone and did not succeed: the transaction is dropped.
    Undone(Reply),
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
    /// SQLite: a thread of its own, where every statement of a unit runs synchronously on the
    /// write connection; PostgreSQL's driver is async: a task.
    pub(super) fn start(self, queue: mpsc::Receiver<Submission>) {
        let queue = Arc::new(Mutex::new(queue));
        match self.db.backend() {
            Backend::Sqlite => {
                let name = format!("{}-db", self.service);
                let spawned = std::thread::Builder::new()
                    .name(name)
                    .spawn(move || futures::executor::block_on(self.serve(queue)));
                if let Err(e) = spawned {
                    // Every unit is answered with the failure instead (its queue is closed).
                    tracing::error!(error = %e, "start the database thread");
                }
            }
            Backend::Postgres => {
                // A committer per connection (`db::COMMITTERS`: one, as on SQLite, whose
                // one writer needs no more).
                let committer = Arc::new(self);
                for _ in 0..committer.db.committers() {
                    let (committer, queue) = (committer.clone(), queue.clone());
                    tokio::spawn(async move { committer.serve(queue).await });
                }
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
            self.run(submissions.drain(..).flat_map(|s| s.jobs).collect())
                .await;
        }
    }

    /// Runs `group` in one transaction and answers each of its units after the commit.
    async fn run(&self, group: Vec<Box<dyn Job>>) {
        let mut work = match self.db.begin().await {
            Ok(tx) => Work::new(tx, self.service, self.db.clock().clone()),
            Err(e) => {
                let e = e.context("begin a transaction");
                return group.into_iter().for_each(|job| job.fail(&e));
            }
        };
        let alone = group.len() == 1;
        let mut replies = Vec::with_capacity(group.len());
        let mut jobs = group.into_iter();
        let mut broken = None;
        for job in jobs.by_ref() {
            match self.step(&mut work, job, alone).await {
                Ok(Step::Next(reply)) => replies.push(reply),
                // A unit alone that did not succeed: its transaction keeps nothing.
                Ok(Step::Undone(reply)) => {
                    drop(work);
                    return reply(None);
                }
                Err((e, reply)) => {
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
                metrics::counter!("unit_of_work_units_total").increment(replies.len() as u64);
                replies.into_iter().for_each(|reply| reply(None))
            }
            Err(e) => {
                replies.into_iter().for_each(|reply| reply(Some(e)));
                jobs.for_each(|job| job.fail(e));
            }
        }
    }

    /// Runs one unit of the group; an error when the transaction can go no further.
    async fn step(
        &self,
        work: &mut Work,
        job: Box<dyn Job>,
        alone: bool,
    ) -> Result<Step, (anyhow::Error, Option<Reply>)> {
        if !alone && let Err(e) = work.tx.savepoint().await {
            job.fail(&e);
            return Err((e, None));
        }
        // A unit that panics is answered as failed; the others go on.
        let ran = AssertUnwindSafe(job.run(work)).catch_unwind().await;
        let (succeeded, reply) = match ran {
            Ok(ran) => ran,
            Err(_) => (false, Box::new(|_: Option<&anyhow::Error>| {}) as Reply),
        };
        if alone {
            return Ok(match succeeded {
                true => Step::Next(reply),
                false => Step::Undone(reply),
            });
        }
        match work.tx.end_savepoint(succeeded).await {
            // One that did not succeed keeps nothing, and is told so at the commit.
            Ok(()) => Ok(Step::Next(reply)),
            Err(e) => Err((e.context("end a unit's savepoint"), Some(reply))),
        }
    }

    /// Writes the events of the units that succeeded to the outbox, marks the rows the relay
    /// has published since the last commit, commits, tells the relay and runs the hooks.
    async fn commit(&self, mut work: Work) -> anyhow::Result<()> {
        let events = std::mem::take(&mut work.committing);
        let hooks = std::mem::take(&mut work.committed_hooks);
        let now = work.now_ms();
        let written = outbox::insert(&mut work, &events, now).await?;
        let marks = self.published.take();
        let mut committed = outbox::mark_published(&mut work, &marks, now).await;
        if committed.is_ok() {
            committed = work.tx.commit().await;
        }
        match committed {
            Ok(()) => self.published.marked(&marks),
            Err(e) => {
                self.published.put_back(&marks);
                return Err(e);
            }
        }
        if !written.is_empty() {
            self.committed.tell(written);
        }
        for hook in hooks {
            hook();
        }
        Ok(())
    }
}
