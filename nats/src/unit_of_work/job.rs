//! job: what the committer runs, its answer types erased: a unit, a consumer's batch, or
//! decisions that share a pass; how each ended, and its callers' answers once the group's
//! commit is known.

use super::work::{Error, Work};
use crate::db;
use futures::future::BoxFuture;
use tokio::sync::oneshot;

/// What the committer does after a unit ran: answer its caller, once the group's commit is
/// known (`None`: committed).
pub(super) type Reply = Box<dyn FnOnce(Option<&anyhow::Error>) + Send>;

/// Units waiting to run (one, decisions sharing a pass: [`super::decisions`], or a consumer's
/// batch: [`super::batch`]), their answer types erased.
pub(super) trait Job: Send {
    /// Runs in `work`: in a savepoint of its own, unless it is the group's only job (`alone`:
    /// then the transaction is its savepoint).
    fn run<'w>(self: Box<Self>, work: &'w mut Work, alone: bool) -> BoxFuture<'w, Step>;
    /// Answers the callers that their units could not run.
    fn fail(self: Box<Self>, error: &anyhow::Error);
    /// How many units it holds.
    fn units(&self) -> usize;
    /// The decisions it holds, which may share a pass with the ones next to them
    /// (`decisions::join`); any other job is given back.
    fn decisions(self: Box<Self>) -> Result<Vec<Box<dyn Again>>, Box<dyn Job>>;
}

/// A decision whose answer's types are erased, so that decisions of any kind share a pass
/// ([`super::decisions`]).
pub(super) trait Again: Send {
    /// Runs it (again, after the pass was undone), keeping its outcome.
    fn run<'w>(&'w mut self, work: &'w mut Work) -> BoxFuture<'w, Ended>;
    /// Answers its caller once the group's commit is known.
    fn reply(self: Box<Self>) -> Reply;
}

/// How a decision ended, for its pass.
pub(super) enum Ended {
    Succeeded,
    /// Rejected having changed nothing: its outcome stands, nothing to undo.
    Refused,
    /// Did not succeed after changing rows (or a statement failed): the pass is undone.
    Undo,
}

pub(super) type Answer<T, R> = oneshot::Receiver<Result<T, Error<R>>>;

/// Answers each caller (`None`: its unit did not run) once the group's commit is known.
pub(super) fn reply_each<T, R>(
    answers: Vec<oneshot::Sender<Result<T, Error<R>>>>,
    outcomes: Vec<Option<Result<T, Error<R>>>>,
) -> Reply
where
    T: Send + 'static,
    R: Send + 'static,
{
    Box::new(move |failed| {
        for (answer, outcome) in answers.into_iter().zip(outcomes) {
            let outcome = match (failed, outcome) {
                // Not durable, whatever the unit said: a "no" may rest on a group that is
                // gone too.
                (Some(e), _) => Err(Error::Failed(copy(e))),
                (None, Some(outcome)) => outcome,
                (None, None) => Err(Error::Failed(anyhow::anyhow!(
                    "the unit of work did not run (its transaction broke first)"
                ))),
            };
            // The caller may have gone (a request that timed out): nothing to tell.
            let _ = answer.send(outcome);
        }
    })
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

/// How a job of a group ended.
pub(super) enum Step {
    /// The group goes on; the job's units are answered at its commit (with their own
    /// outcomes, if they did not succeed: they were rolled back to a savepoint).
    Next(Reply),
    /// It ran alone and did not succeed: the transaction is dropped.
    Undone(Reply),
    /// The transaction can go no further (a savepoint could not be taken or rolled back to).
    Broken(anyhow::Error, Option<Reply>),
}
