//! apply: turns a service's per-event handler into a batch handler — the whole batch in one
//! transaction with the inbox (effects, outbox rows and handled ids commit together, then acks),
//! falling back to one transaction per event when the batch fails, so one failing event never
//! holds back the others.

use crate::consumer::{Delivery, Handler, Outcome, retry_delay};
use crate::db::{Db, Tx};
use crate::inbox;
use crate::outbox::Outbox;
use contracts::Event;
use std::future::Future;
use time::OffsetDateTime;

/// Applies one event inside the caller's transaction: state changes and the events they cause
/// (via the outbox). Return `Outcome::Done` for a handled event, including a business "no" that
/// was answered with an event; `Retry` when it cannot be applied yet; `Reject` for never.
/// An `Err` is a transient failure.
pub trait Apply<E: Event>: Send + Sync + 'static {
    fn apply(
        &self,
        tx: &mut Tx,
        delivery: &Delivery<E>,
        now: OffsetDateTime,
    ) -> impl Future<Output = anyhow::Result<Outcome>> + Send;
}

pub struct Transactional<A> {
    db: Db,
    outbox: Outbox,
    /// The inbox key: handled ids are remembered per consumer.
    consumer: String,
    apply: A,
}

impl<A> Transactional<A> {
    pub fn new(db: Db, outbox: Outbox, consumer: String, apply: A) -> Self {
        Transactional {
            db,
            outbox,
            consumer,
            apply,
        }
    }

    async fn in_one_tx<E: Event>(&self, batch: &[Delivery<E>]) -> anyhow::Result<Vec<Outcome>>
    where
        A: Apply<E>,
    {
        let now = OffsetDateTime::now_utc();
        let now_ms = crate::to_millis(now);
        let mut tx = self.db.begin().await?;
        let mut outcomes = Vec::with_capacity(batch.len());
        for d in batch {
            let id = d.envelope.id;
            if !inbox::first_delivery(&mut tx, &self.consumer, id, now_ms).await? {
                outcomes.push(Outcome::Done);
                continue;
            }
            let outcome = self.apply.apply(&mut tx, d, now).await?;
            if outcome != Outcome::Done {
                inbox::forget(&mut tx, &self.consumer, id).await?;
            }
            outcomes.push(outcome);
        }
        tx.commit().await?;
        self.outbox.wake();
        Ok(outcomes)
    }
}

impl<E: Event, A: Apply<E>> Handler<E> for Transactional<A> {
    async fn handle(&self, batch: Vec<Delivery<E>>) -> anyhow::Result<Vec<Outcome>> {
        match self.in_one_tx(&batch).await {
            Ok(outcomes) => Ok(outcomes),
            Err(e) if batch.len() == 1 => Err(e),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), size = batch.len(), "batch failed; one event at a time");
                let mut outcomes = Vec::with_capacity(batch.len());
                for d in batch {
                    let delivered = d.delivered;
                    outcomes.push(match self.in_one_tx(std::slice::from_ref(&d)).await {
                        Ok(mut o) => o.pop().unwrap_or(Outcome::Done),
                        Err(e) => Outcome::Retry {
                            after: retry_delay(delivered),
                            reason: format!("{e:#}"),
                        },
                    });
                }
                Ok(outcomes)
            }
        }
    }
}
