//! consumer: the loop around a service's event handler. It pulls a batch from a durable consumer,
//! decodes each message, runs the batch as units of work (one per event, recorded in the inbox
//! with its effects, all in one commit when they all succeed), then acks, NAKs with a delay, or
//! dead-letters what can never succeed. The handler owns business logic; this owns acks.

pub use super::handler::{Delivery, EventHandler, NotHandled, decode};

use super::dlq;
use super::retries::Failures;
use super::topology::{ConsumerSpec, ensure_consumer, retry_delay};
use crate::db;
use crate::traces;
use crate::unit_of_work::{Error, Unit, UnitOfWork, Work};
use anyhow::Context as _;
use async_nats::jetstream::{self, AckKind};
use contracts::Event;
use contracts::trace::TraceParent;
use futures::{FutureExt as _, StreamExt as _};
use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

/// Most messages handled at once.
pub const MAX_BATCH: usize = 256;
/// At shutdown, how long without a message ends giving back what the broker sent.
const GIVE_BACK_IDLE: Duration = Duration::from_millis(50);
/// After how long what a stopping process gave back is delivered again: once its pull is gone.
const GIVE_BACK_DELAY: Duration = Duration::from_secs(1);

/// What became of one message of a batch.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Handled (or recognised as a duplicate): ack.
    Done,
    /// Not now: redeliver after a while.
    Retry { after: Duration, reason: String },
    /// Can never succeed: DLQ with the reason.
    Reject { reason: String },
    /// The database is unavailable: redeliver later, never dead-letter, and pause the consumer
    /// until the database is back.
    Wait { reason: String },
}

/// How a unit's result becomes an ack: the one mapping of this boundary.
fn outcome(result: Result<(), Error<NotHandled>>, delivered: i64) -> Outcome {
    match result {
        Ok(()) => Outcome::Done,
        Err(Error::Rejected(NotHandled::NotYet(reason))) => Outcome::Retry {
            after: retry_delay(delivered),
            reason,
        },
        Err(Error::Rejected(NotHandled::Never(reason))) => Outcome::Reject { reason },
        Err(Error::Failed(e)) if db::unavailable(&e) => Outcome::Wait {
            reason: format!("{e:#}"),
        },
        Err(Error::Failed(e)) => Outcome::Retry {
            after: retry_delay(delivered),
            reason: format!("{e:#}"),
        },
    }
}

/// How many of a service's consumers are down (restarting after an error or a panic); shared
/// with `/readyz`.
#[derive(Clone, Default)]
pub struct Down(Arc<AtomicUsize>);

impl Down {
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// A service's consumer of one stream: its spec, its handler, and where units run.
pub struct Consumer<E: Event, H> {
    pub spec: ConsumerSpec,
    /// The service's name: its DLQ subjects and entries say who gave up.
    pub service: &'static str,
    pub uow: UnitOfWork,
    pub handler: Arc<H>,
    down: Down,
    failures: Failures,
    _events: std::marker::PhantomData<fn() -> E>,
}

impl<E: Event, H: EventHandler<E>> Consumer<E, H> {
    pub fn new(spec: ConsumerSpec, service: &'static str, uow: UnitOfWork, handler: H) -> Self {
        Consumer {
            spec,
            service,
            uow,
            handler: Arc::new(handler),
            down: Down::default(),
            failures: Failures::default(),
            _events: std::marker::PhantomData,
        }
    }

    /// Counts this consumer in `down` while it is restarting.
    pub fn reporting_to(mut self, down: Down) -> Self {
        self.down = down;
        self
    }

    /// Runs until `shutdown`; after an error or a panic it is down for a while (counted in
    /// [`Down`]), then starts again, re-creating the consumer.
    pub async fn run(self, js: jetstream::Context, shutdown: CancellationToken) {
        let mut failures = 0;
        while !shutdown.is_cancelled() {
            let error = match AssertUnwindSafe(self.consume(&js, &shutdown))
                .catch_unwind()
                .await
            {
                Ok(Ok(())) => break,
                Ok(Err(e)) => format!("{e:#}"),
                Err(panic) => {
                    metrics::counter!("consumer_panics_total").increment(1);
                    format!("panicked: {}", panic_message(panic.as_ref()))
                }
            };
            failures += 1;
            tracing::warn!(stream = self.spec.stream, %error, "consumer restarting");
            self.down.0.fetch_add(1, Ordering::AcqRel);
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(retry_delay(failures)) => {}
            }
            self.down.0.fetch_sub(1, Ordering::AcqRel);
        }
    }

    async fn consume(
        &self,
        js: &jetstream::Context,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let consumer = ensure_consumer(js, &self.spec).await?;
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(MAX_BATCH)
            // Short: a pull request is lost when its consumer's leader moves to another node (a
            // cluster losing one); two missed heartbeats make the client pull again.
            .heartbeat(Duration::from_secs(1))
            .expires(Duration::from_secs(10))
            .messages()
            .await
            .context("open message stream")?;
        loop {
            let first = tokio::select! {
                _ = shutdown.cancelled() => {
                    give_back(&mut messages).await;
                    return Ok(());
                }
                next = messages.next() => next,
            };
            let first = first.context("message stream ended")??;
            let mut batch = vec![first];
            // Take whatever else has already arrived, without waiting: a burst becomes one batch.
            while batch.len() < MAX_BATCH {
                match messages.next().now_or_never() {
                    Some(Some(Ok(m))) => batch.push(m),
                    _ => break,
                }
            }
            // The batch in hand is finished even if shutdown arrives meanwhile.
            if self.handle_batch(js, batch).await {
                self.wait_for_database(shutdown).await;
            }
        }
    }

    /// Pauses until the database takes writes again (probing with an empty unit of work, with a
    /// growing delay), counted as down meanwhile.
    async fn wait_for_database(&self, shutdown: &CancellationToken) {
        self.down.0.fetch_add(1, Ordering::AcqRel);
        let mut attempt = 0;
        loop {
            attempt += 1;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(retry_delay(attempt)) => {}
            }
            match self.uow.run(|_| Box::pin(async { Ok(()) })).await {
                Ok(()) => break,
                Err(e) => {
                    let stream = self.spec.stream;
                    metrics::counter!("consumer_database_waits_total", "stream" => stream)
                        .increment(1);
                    tracing::warn!(stream, error = %format!("{e:#}"), "waiting for the database");
                }
            }
        }
        self.down.0.fetch_sub(1, Ordering::AcqRel);
    }

    /// Decodes, handles and settles one batch; `true` if the database was unavailable (the
    /// consumer should wait for it). Public so tests can drive a consumer step by step.
    pub async fn handle_batch(
        &self,
        js: &jetstream::Context,
        batch: Vec<jetstream::Message>,
    ) -> bool {
        let mut readable = Vec::with_capacity(batch.len());
        let mut deliveries = Vec::with_capacity(batch.len());
        for msg in batch {
            let (stream_seq, delivered) = match msg.info() {
                Ok(info) => (info.stream_sequence, info.delivered),
                Err(_) => (0, 1),
            };
            match decode::<E>(&msg) {
                Ok((envelope, event)) => {
                    deliveries.push(Delivery {
                        envelope,
                        event,
                        stream_seq,
                        delivered,
                    });
                    readable.push((msg, stream_seq));
                }
                Err(reason) => self.dead_letter(js, &msg, delivered, &reason).await,
            }
        }
        // Handled together, committed together: each event took the batch's time.
        let started = std::time::Instant::now();
        let outcomes = self.handle(deliveries).await;
        let took = started.elapsed().as_secs_f64();
        let wait = outcomes
            .iter()
            .any(|(o, _)| matches!(o, Outcome::Wait { .. }));
        for ((msg, seq), (outcome, delivered)) in readable.iter().zip(outcomes) {
            self.settle(js, msg, *seq, delivered, outcome, took).await;
        }
        wait
    }

    /// Runs each delivery as a unit of work (recorded in the inbox, then handled), all in one
    /// commit; one outcome per delivery, in order, with its delivery count.
    pub async fn handle(&self, deliveries: Vec<Delivery<E>>) -> Vec<(Outcome, i64)> {
        let counts: Vec<i64> = deliveries.iter().map(|d| d.delivered).collect();
        let deliveries: Arc<Vec<Arc<Delivery<E>>>> =
            Arc::new(deliveries.into_iter().map(Arc::new).collect());
        let ahead = super::handler::read_ahead(self.handler.clone(), deliveries.clone());
        let units = deliveries
            .iter()
            .map(|d| {
                let (handler, d) = (self.handler.clone(), d.clone());
                let id = d.envelope.id;
                let unit: Unit<(), NotHandled> = Arc::new(move |w: &mut Work| {
                    let (handler, d) = (handler.clone(), d.clone());
                    Box::pin(async move {
                        w.caused_by(d.envelope.id);
                        // Handled in a span of the event's trace; what it emits goes on in it.
                        let (span, trace) = traces::handling(&d.envelope);
                        if let Some(trace) = trace {
                            w.in_trace(trace);
                        }
                        // A panicking handler fails its event like any error (its unit keeps
                        // nothing); it does not take the consumer down.
                        let handled = handler.handle(w, &d).instrument(span);
                        match AssertUnwindSafe(handled).catch_unwind().await {
                            Ok(handled) => handled,
                            Err(panic) => {
                                metrics::counter!("handler_panics_total").increment(1);
                                let what = panic_message(panic.as_ref());
                                Err(anyhow::anyhow!("the handler panicked: {what}").into())
                            }
                        }
                    })
                });
                (id, unit)
            })
            .collect();
        // The inbox is keyed by the stream: handled ids are remembered per consumer.
        let results = self
            .uow
            .handle_all_reading_ahead(self.spec.stream, units, Some(ahead))
            .await;
        results
            .into_iter()
            .zip(counts)
            .map(|(r, delivered)| (outcome(r, delivered), delivered))
            .collect()
    }

    /// Acks, naks or dead-letters `msg` (stream sequence `seq`, read once from its reply
    /// subject by the caller) by its outcome.
    async fn settle(
        &self,
        js: &jetstream::Context,
        msg: &jetstream::Message,
        seq: u64,
        delivered: i64,
        outcome: Outcome,
        took: f64,
    ) {
        let label = match &outcome {
            Outcome::Done => "done",
            Outcome::Retry { .. } => "retry",
            Outcome::Reject { .. } => "rejected",
            Outcome::Wait { .. } => "wait",
        };
        let header = |name: &str| {
            msg.headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_owned())
        };
        use contracts::envelope::header as h;
        let ce_type = header(h::TYPE).unwrap_or_default();
        // A line per handled event only when asked for (it is read only here).
        if tracing::enabled!(tracing::Level::DEBUG) {
            let trace = header(h::TRACEPARENT).and_then(|t| TraceParent::parse(&t));
            tracing::debug!(
                event_type = %ce_type,
                event_id = header(h::ID).unwrap_or_default(),
                correlation_id = header(h::CORRELATION_ID).unwrap_or_default(),
                trace_id = trace.as_ref().map(|t| t.trace_id().to_owned()).unwrap_or_default(),
                outcome = label,
                "event handled"
            );
        }
        metrics::counter!("events_handled_total", "stream" => self.spec.stream, "type" => ce_type.clone(), "outcome" => label)
            .increment(1);
        metrics::histogram!("event_handle_duration_seconds", "type" => ce_type, "outcome" => label)
            .record(took);
        let acked = match outcome {
            Outcome::Done => {
                self.failures.forget(seq);
                msg.ack().await
            }
            Outcome::Retry { after, reason } => {
                let times = self.failures.failed(seq, &reason);
                if times >= self.spec.retry.max_deliver {
                    self.failures.forget(seq);
                    let reason = format!("gave up after {times} deliveries: {reason}");
                    self.dead_letter(js, msg, delivered, &reason).await;
                    Ok(())
                } else {
                    tracing::warn!(subject = %msg.subject, delivered, times, %reason, "retrying event");
                    msg.ack_with(AckKind::Nak(Some(after))).await
                }
            }
            Outcome::Reject { reason } => {
                self.failures.forget(seq);
                self.dead_letter(js, msg, delivered, &reason).await;
                Ok(())
            }
            Outcome::Wait { reason } => {
                tracing::warn!(subject = %msg.subject, delivered, %reason, "database unavailable; event waits");
                msg.ack_with(AckKind::Nak(Some(retry_delay(delivered))))
                    .await
            }
        };
        if let Err(e) = acked {
            // The broker redelivers after ack_wait; the inbox makes that harmless.
            tracing::warn!(error = %e, subject = %msg.subject, "ack failed");
        }
    }

    async fn dead_letter(
        &self,
        js: &jetstream::Context,
        msg: &jetstream::Message,
        delivered: i64,
        reason: &str,
    ) {
        let failed = dlq::Failed {
            service: self.service,
            spec: &self.spec,
            delivered,
            reason,
        };
        dlq::dead_letter(js, msg, &failed).await
    }
}

/// At shutdown: what the broker has already sent this process for the pull under way goes back,
/// for the next process (this one restarted, or a replica) to take in a moment, instead of
/// waiting out the ack wait (30 s) as a delivery nobody will ever settle. Given back with a
/// delay: at once, the broker would send it to this process's pull again.
async fn give_back(messages: &mut jetstream::consumer::pull::Stream) {
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(GIVE_BACK_IDLE, messages.next()).await {
        if let Err(e) = msg.ack_with(AckKind::Nak(Some(GIVE_BACK_DELAY))).await {
            tracing::debug!(error = %e, "give a message back at shutdown");
        }
    }
}

/// What a panic said, as far as it can be read.
pub fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}
