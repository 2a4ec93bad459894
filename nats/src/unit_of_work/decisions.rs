//! decisions: the decisions that wait together in a group (HTTP commands, mostly) run as one
//! pass with one savepoint, as a consumer's batch does ([`super::batch`]), rather than a
//! savepoint each: on PostgreSQL each is a round trip, two of about nine a saga on seat-svc's
//! committer. A decision rejected having changed no row (a hold whose seat was taken) needs
//! nothing undone. One that changed rows and then did not succeed is undone with the pass, which
//! runs again without it (decisions are code that can run again), so it alone keeps nothing.
//! As in a batch, a decision's writes of one record may wait past its end for the next
//! decision's statement; should one carrying them fail, the pass runs again with each
//! decision's writes sent at its end.

use super::job::{Again, Answer, Ended, Job, Reply, Step, reply_each};
use super::work::{Error, Unit, Work};
use futures::future::BoxFuture;
use tokio::sync::oneshot;

struct Decision<T, R> {
    unit: Unit<T, R>,
    outcome: Option<Result<T, Error<R>>>,
    answer: oneshot::Sender<Result<T, Error<R>>>,
}

impl<T: Send + 'static, R: Send + 'static> Again for Decision<T, R> {
    fn run<'w>(&'w mut self, work: &'w mut Work) -> BoxFuture<'w, Ended> {
        Box::pin(async move {
            let unit = self.unit.clone();
            let changes = work.tx.changes();
            let outcome = work.unit(move |w| unit(w)).await;
            let ended = match &outcome {
                Ok(_) => Ended::Succeeded,
                Err(Error::Rejected(_)) if work.tx.changes() == changes => Ended::Refused,
                Err(_) => Ended::Undo,
            };
            self.outcome = Some(outcome);
            ended
        })
    }

    fn reply(self: Box<Self>) -> Reply {
        let Decision {
            outcome, answer, ..
        } = *self;
        reply_each(vec![answer], vec![outcome])
    }
}

/// Decisions that run as one pass: a group's adjacent ones are joined ([`join`]).
pub(super) struct Decisions(Vec<Box<dyn Again>>);

/// Joins the adjacent decisions of `group` into one job each, in order.
pub(super) fn join(group: Vec<Box<dyn Job>>) -> Vec<Box<dyn Job>> {
    let mut joined: Vec<Box<dyn Job>> = Vec::with_capacity(group.len());
    let mut pass: Vec<Box<dyn Again>> = Vec::new();
    for job in group {
        match job.decisions() {
            Ok(more) => pass.extend(more),
            Err(job) => {
                if !pass.is_empty() {
                    joined.push(Box::new(Decisions(std::mem::take(&mut pass))));
                }
                joined.push(job);
            }
        }
    }
    if !pass.is_empty() {
        joined.push(Box::new(Decisions(pass)));
    }
    joined
}

impl Decisions {
    pub(super) fn job<T, R>(unit: Unit<T, R>) -> (Box<dyn Job>, Answer<T, R>)
    where
        T: Send + 'static,
        R: Send + 'static,
    {
        let (answer, waiting) = oneshot::channel();
        let decision = Decision {
            unit,
            outcome: None,
            answer,
        };
        (Box::new(Decisions(vec![Box::new(decision)])), waiting)
    }

    fn replies(self) -> Reply {
        let replies: Vec<Reply> = self.0.into_iter().map(|d| d.reply()).collect();
        Box::new(move |failed| replies.into_iter().for_each(|reply| reply(failed)))
    }
}

impl Job for Decisions {
    fn run<'w>(mut self: Box<Self>, work: &'w mut Work, alone: bool) -> BoxFuture<'w, Step> {
        Box::pin(async move {
            let n = self.0.len();
            // Alone with one decision, the transaction is the savepoint.
            let savepoint = !(alone && n == 1);
            if savepoint && let Err(e) = work.tx.savepoint().await {
                return Step::Broken(e, Some(self.replies()));
            }
            let mark = work.mark();
            let mut settled = vec![false; n];
            // A decision's writes of one record each may wait past its end for the next one's
            // statements, as a batch's do, where the pass can run again without it.
            let mut carry = savepoint && n > 1;
            loop {
                let mut undo = None;
                // A statement carrying an ended decision's writes failed: whose, is not known.
                let mut blurred = false;
                work.tx.carry(carry);
                for (i, decision) in self.0.iter_mut().enumerate() {
                    if settled[i] {
                        continue;
                    }
                    match decision.run(work).await {
                        Ended::Succeeded => {}
                        Ended::Refused => settled[i] = true,
                        Ended::Undo if work.tx.blurred() => {
                            blurred = true;
                            break;
                        }
                        Ended::Undo => {
                            undo = Some(i);
                            break;
                        }
                    }
                }
                // The writes still waiting are the pass's own: they go before its savepoint ends.
                if undo.is_none() && !blurred && work.tx.flush().await.is_err() {
                    blurred = true;
                }
                work.tx.carry(false);
                if undo.is_none() && !blurred {
                    if savepoint && let Err(e) = work.tx.end_savepoint(true).await {
                        let e = e.context("end the decisions' savepoint");
                        return Step::Broken(e, Some(self.replies()));
                    }
                    return Step::Next(self.replies());
                }
                match undo {
                    // It keeps its outcome (nothing of it is kept); the others run again.
                    Some(i) => settled[i] = true,
                    // Run again, each decision's writes sent at its end: a failure is its own.
                    None => carry = false,
                }
                if !savepoint {
                    return Step::Undone(self.replies());
                }
                if let Err(e) = work.tx.end_savepoint(false).await {
                    let e = e.context("roll back the decisions to their savepoint");
                    return Step::Broken(e, Some(self.replies()));
                }
                work.rewind(&mark);
            }
        })
    }

    fn fail(self: Box<Self>, error: &anyhow::Error) {
        self.replies()(Some(error));
    }

    fn units(&self) -> usize {
        self.0.len()
    }

    fn decisions(self: Box<Self>) -> Result<Vec<Box<dyn Again>>, Box<dyn Job>> {
        Ok(self.0)
    }
}
