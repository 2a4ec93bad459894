//! batch: a consumer's batch as one job of a group. Its events' inbox ids are recorded in one
//! statement and it takes one savepoint, not one of each per event: on PostgreSQL each is a
//! round trip. A unit that does not succeed is undone with the whole batch, which then runs
//! again without it (its units are code that can run again), so it alone keeps nothing.
//! A unit's writes of one record may wait past its end for the next unit's statements
//! ([`crate::db::Statement::record`]); should a statement carrying them fail, which unit
//! caused it is not known, and the batch runs again with each unit's writes sent at its end.

use super::inbox;
use super::job::{Again, Answer, Job, Step, copy, reply_each};
use super::work::{Ahead, Error, Unit, Work};
use futures::future::BoxFuture;
use tokio::sync::oneshot;
use uuid::Uuid;

/// The inbox a batch's units are recorded in: one id per unit, and what a unit whose event
/// was handled before answers without running.
pub(super) struct Inbox<T> {
    pub(super) consumer: &'static str,
    pub(super) ids: Vec<Uuid>,
    pub(super) again: fn() -> T,
}

pub(super) struct Batch<T, R> {
    units: Vec<Unit<T, R>>,
    answers: Vec<oneshot::Sender<Result<T, Error<R>>>>,
    inbox: Option<Inbox<T>>,
    ahead: Option<Ahead>,
}

/// The outcome of each unit, once known.
type Outcomes<T, R> = Vec<Option<Result<T, Error<R>>>>;

impl<T: Send + 'static, R: Send + 'static> Batch<T, R> {
    pub(super) fn job(
        units: Vec<Unit<T, R>>,
        inbox: Option<Inbox<T>>,
        ahead: Option<Ahead>,
    ) -> (Box<dyn Job>, Vec<Answer<T, R>>) {
        let (answers, waiting) = units.iter().map(|_| oneshot::channel()).unzip();
        let batch = Batch {
            units,
            answers,
            inbox,
            ahead,
        };
        (Box::new(batch), waiting)
    }

    /// Runs the units `live` (those not settled yet), in order: all their outcomes, or the
    /// first that did not succeed (its index and outcome). A failed inbox statement or read
    /// ahead fails them all. What was read ahead serves this pass only.
    async fn pass(&self, work: &mut Work, live: Vec<usize>) -> Pass<T, R> {
        let pass = self.run_live(work, live).await;
        work.forget_read_ahead();
        pass
    }

    async fn run_live(&self, work: &mut Work, live: Vec<usize>) -> Pass<T, R> {
        let first = match &self.inbox {
            None => None,
            Some(inbox) => {
                let ids: Vec<Uuid> = live.iter().map(|&i| inbox.ids[i]).collect();
                let now = work.now_ms();
                match inbox::first_deliveries(work, inbox.consumer, &ids, now).await {
                    Ok(first) => Some(first),
                    Err(e) => return Pass::Broken(e.context("record the batch's inbox ids")),
                }
            }
        };
        // Which units run: not those whose event was handled before (an id given twice is
        // first only once).
        let runs: Vec<bool> = match (first, &self.inbox) {
            (Some(mut first), Some(inbox)) => {
                live.iter().map(|&i| first.remove(&inbox.ids[i])).collect()
            }
            _ => vec![true; live.len()],
        };
        if let Some(ahead) = &self.ahead {
            let running: Vec<usize> = live
                .iter()
                .zip(&runs)
                .filter_map(|(&i, &runs)| runs.then_some(i))
                .collect();
            if let Err(e) = ahead(work, &running).await {
                return Pass::Broken(e.context("read ahead for the batch"));
            }
        }
        let mut outcomes = Vec::with_capacity(live.len());
        for (i, runs) in live.into_iter().zip(runs) {
            if let (false, Some(inbox)) = (runs, &self.inbox) {
                outcomes.push((i, Ok((inbox.again)())));
                continue;
            }
            let unit = self.units[i].clone();
            match work.unit(move |w| unit(w)).await {
                Ok(done) => outcomes.push((i, Ok(done))),
                Err(_) if work.tx.blurred() => return Pass::Blurred,
                failed => return Pass::Undo(i, failed),
            }
        }
        // The writes still waiting are the batch's own: they go before its savepoint ends.
        match work.tx.flush().await {
            Ok(()) => Pass::Done(outcomes),
            Err(_) => Pass::Blurred,
        }
    }
}

/// How a pass over a batch ended.
enum Pass<T, R> {
    Done(Vec<(usize, Result<T, Error<R>>)>),
    /// Unit `i` did not succeed: the pass is undone, and the batch runs again without it.
    Undo(usize, Result<T, Error<R>>),
    /// The batch cannot run: its units all fail.
    Broken(anyhow::Error),
    /// A statement carrying writes of units that had ended failed: the pass is undone and
    /// the batch runs again, each unit's writes sent at its end, so a failure is its own.
    Blurred,
}

impl<T: Send + 'static, R: Send + 'static> Job for Batch<T, R> {
    fn run<'w>(self: Box<Self>, work: &'w mut Work, alone: bool) -> BoxFuture<'w, Step> {
        Box::pin(async move {
            let n = self.units.len();
            let mut settled: Outcomes<T, R> = (0..n).map(|_| None).collect();
            // Alone with one unit, the transaction is the savepoint.
            let savepoint = !(alone && n == 1);
            if savepoint && let Err(e) = work.tx.savepoint().await {
                self.fail(&e);
                return Step::Broken(e, None);
            }
            let mark = work.mark();
            // Writes wait past a unit's end only where the batch can run again without it.
            let mut carry = savepoint && n > 1;
            loop {
                let live = (0..n).filter(|&i| settled[i].is_none()).collect();
                work.tx.carry(carry);
                let pass = self.pass(work, live).await;
                work.tx.carry(false);
                let broken = match pass {
                    Pass::Done(outcomes) => {
                        for (i, outcome) in outcomes {
                            settled[i] = Some(outcome);
                        }
                        let reply = reply_each(self.answers, settled);
                        if savepoint && let Err(e) = work.tx.end_savepoint(true).await {
                            return Step::Broken(e.context("end a batch's savepoint"), Some(reply));
                        }
                        return Step::Next(reply);
                    }
                    Pass::Undo(i, outcome) => {
                        settled[i] = Some(outcome);
                        None
                    }
                    Pass::Blurred => {
                        carry = false;
                        None
                    }
                    Pass::Broken(e) => Some(e),
                };
                if let Some(e) = &broken {
                    for unsettled in settled.iter_mut().filter(|o| o.is_none()) {
                        *unsettled = Some(Err(Error::Failed(copy(e))));
                    }
                }
                if !savepoint {
                    return Step::Undone(reply_each(self.answers, settled));
                }
                if let Err(e) = work.tx.end_savepoint(false).await {
                    let e = e.context("roll back a batch to its savepoint");
                    return Step::Broken(e, Some(reply_each(self.answers, settled)));
                }
                work.rewind(&mark);
                if broken.is_some() {
                    return Step::Next(reply_each(self.answers, settled));
                }
            }
        })
    }

    fn fail(self: Box<Self>, error: &anyhow::Error) {
        let unrun = self.answers.iter().map(|_| None).collect();
        reply_each::<T, R>(self.answers, unrun)(Some(error));
    }

    fn units(&self) -> usize {
        self.units.len()
    }

    fn decisions(self: Box<Self>) -> Result<Vec<Box<dyn Again>>, Box<dyn Job>> {
        Err(self)
    }
}
