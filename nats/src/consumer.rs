//! consumer: the loop around a batch handler. It pulls from a durable consumer, decodes each
//! message's envelope and payload, gives the batch to the handler, then acks, NAKs with a delay,
//! or sends to the DLQ what can never succeed. The handler owns business logic; this owns acks.

use crate::topology::{ConsumerSpec, ensure_consumer};
use anyhow::Context as _;
use async_nats::jetstream::{self, AckKind, message::PublishMessage};
use contracts::streams::dlq_subject;
use contracts::{Envelope, Event};
use futures::{FutureExt as _, StreamExt as _};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Most messages handed to the handler at once.
pub const MAX_BATCH: usize = 256;

/// How failing messages are retried: after `max_deliver` deliveries one goes to the DLQ.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub max_deliver: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_deliver: 10 }
    }
}

/// One decoded message.
#[derive(Clone, Debug)]
pub struct Delivery<E> {
    pub envelope: Envelope,
    pub event: E,
    /// Position in the stream: later events of one stream have higher sequences.
    pub stream_seq: u64,
    /// 1 on first delivery.
    pub delivered: i64,
}

/// What became of one message of a batch.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Handled (or recognised as a duplicate): ack.
    Done,
    /// A transient failure: redeliver after a while.
    Retry { after: Duration, reason: String },
    /// Can never succeed: DLQ with the reason.
    Reject { reason: String },
}

/// Handles a batch of one context's events; returns one outcome per delivery, in order.
/// An `Err` means the whole batch failed transiently (e.g. the database is unavailable).
pub trait Handler<E: Event>: Send + Sync + 'static {
    fn handle(
        &self,
        batch: Vec<Delivery<E>>,
    ) -> impl Future<Output = anyhow::Result<Vec<Outcome>>> + Send;
}

/// Backoff for the `delivered`-th failed attempt: 200 ms doubling, at most 10 s.
pub fn retry_delay(delivered: i64) -> Duration {
    let exp = delivered.clamp(1, 8) as u32 - 1;
    Duration::from_millis(200u64 << exp).min(Duration::from_secs(10))
}

/// Runs the consumer until `shutdown`; reconnects (re-creating the consumer) after errors.
pub async fn run<E: Event, H: Handler<E>>(
    js: jetstream::Context,
    service: String,
    spec: ConsumerSpec,
    handler: Arc<H>,
    shutdown: CancellationToken,
) {
    let mut failures = 0;
    while !shutdown.is_cancelled() {
        match consume::<E, H>(&js, &service, &spec, &handler, &shutdown).await {
            Ok(()) => break,
            Err(e) => {
                failures += 1;
                tracing::warn!(stream = spec.stream, error = %format!("{e:#}"), "consumer restarting");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(retry_delay(failures)) => {}
                }
            }
        }
    }
}

async fn consume<E: Event, H: Handler<E>>(
    js: &jetstream::Context,
    service: &str,
    spec: &ConsumerSpec,
    handler: &H,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let consumer = ensure_consumer(js, spec).await?;
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
            _ = shutdown.cancelled() => return Ok(()),
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
        handle_batch::<E, H>(js, service, spec, handler, batch).await;
    }
}

/// Decodes, handles and settles one batch. Public so tests can drive a consumer step by step.
pub async fn handle_batch<E: Event, H: Handler<E>>(
    js: &jetstream::Context,
    service: &str,
    spec: &ConsumerSpec,
    handler: &H,
    batch: Vec<jetstream::Message>,
) {
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
                readable.push(msg);
            }
            Err(reason) => {
                dead_letter(js, service, spec, &msg, delivered, &reason).await;
            }
        }
    }
    if deliveries.is_empty() {
        return;
    }
    let delivered: Vec<i64> = deliveries.iter().map(|d| d.delivered).collect();
    let n = deliveries.len();
    let outcomes = match handler.handle(deliveries).await {
        Ok(outcomes) if outcomes.len() == n => outcomes,
        Ok(outcomes) => {
            tracing::error!(
                expected = n,
                got = outcomes.len(),
                "handler broke its contract"
            );
            retry_all(&delivered, "handler returned a wrong number of outcomes")
        }
        Err(e) => retry_all(&delivered, &format!("{e:#}")),
    };
    for ((msg, outcome), delivered) in readable.iter().zip(outcomes).zip(delivered) {
        settle(js, service, spec, msg, delivered, outcome).await;
    }
}

fn retry_all(delivered: &[i64], reason: &str) -> Vec<Outcome> {
    delivered
        .iter()
        .map(|d| Outcome::Retry {
            after: retry_delay(*d),
            reason: reason.to_owned(),
        })
        .collect()
}

async fn settle(
    js: &jetstream::Context,
    service: &str,
    spec: &ConsumerSpec,
    msg: &jetstream::Message,
    delivered: i64,
    outcome: Outcome,
) {
    let label = match &outcome {
        Outcome::Done => "done",
        Outcome::Retry { .. } => "retry",
        Outcome::Reject { .. } => "rejected",
    };
    metrics::counter!("events_handled_total", "stream" => spec.stream, "outcome" => label)
        .increment(1);
    let acked = match outcome {
        Outcome::Done => msg.ack().await,
        Outcome::Retry { reason, .. } if delivered >= spec.retry.max_deliver => {
            let reason = format!("gave up after {delivered} deliveries: {reason}");
            dead_letter(js, service, spec, msg, delivered, &reason).await;
            Ok(())
        }
        Outcome::Retry { after, reason } => {
            tracing::warn!(subject = %msg.subject, delivered, %reason, "retrying event");
            msg.ack_with(AckKind::Nak(Some(after))).await
        }
        Outcome::Reject { reason } => {
            dead_letter(js, service, spec, msg, delivered, &reason).await;
            Ok(())
        }
    };
    if let Err(e) = acked {
        // The broker redelivers after ack_wait; the inbox makes that harmless.
        tracing::warn!(error = %e, subject = %msg.subject, "ack failed");
    }
}

/// Reads the envelope and payload of a message as an event of context `E`; the error says why not.
pub fn decode<E: Event>(msg: &jetstream::Message) -> Result<(Envelope, E), String> {
    let headers = msg
        .headers
        .as_ref()
        .ok_or_else(|| "message has no headers (no CloudEvents envelope)".to_owned())?;
    let envelope = Envelope::from_headers(|name| headers.get(name).map(|v| v.as_str()))
        .map_err(|e| e.to_string())?;
    let event = envelope
        .decode::<E>(&msg.payload)
        .map_err(|e| e.to_string())?;
    Ok((envelope, event))
}

/// DLQ header names added to the original headers.
pub mod dlq_header {
    pub const REASON: &str = "Dlq-Reason";
    pub const SERVICE: &str = "Dlq-Service";
    pub const CONSUMER: &str = "Dlq-Consumer";
    pub const STREAM: &str = "Dlq-Stream";
    pub const STREAM_SEQ: &str = "Dlq-Stream-Seq";
    pub const DELIVERED: &str = "Dlq-Delivered";
    pub const ORIGINAL_SUBJECT: &str = "Dlq-Original-Subject";
}

/// Copies `msg` with its headers and body to the DLQ with the reason, then terminates it. If the
/// DLQ cannot be written the message is NAKed instead, so nothing is ever dropped.
async fn dead_letter(
    js: &jetstream::Context,
    service: &str,
    spec: &ConsumerSpec,
    msg: &jetstream::Message,
    delivered: i64,
    reason: &str,
) {
    tracing::error!(subject = %msg.subject, %reason, "event sent to the DLQ");
    let stream_seq = msg.info().map(|i| i.stream_sequence).unwrap_or(0);
    let mut headers = msg.headers.clone().unwrap_or_default();
    // One DLQ entry per stream message, even if dead-lettering is retried.
    headers.insert(
        contracts::envelope::header::MSG_ID,
        format!("{}:{stream_seq}", spec.stream),
    );
    headers.insert(dlq_header::REASON, reason);
    headers.insert(dlq_header::SERVICE, service);
    headers.insert(dlq_header::CONSUMER, spec.durable.as_str());
    headers.insert(dlq_header::STREAM, spec.stream);
    headers.insert(dlq_header::STREAM_SEQ, stream_seq.to_string());
    headers.insert(dlq_header::DELIVERED, delivered.to_string());
    headers.insert(dlq_header::ORIGINAL_SUBJECT, msg.subject.as_str());
    let publish = PublishMessage::build()
        .headers(headers)
        .payload(msg.payload.clone());
    let stored = async {
        js.send_publish(dlq_subject(service, &msg.subject), publish)
            .await?
            .await?;
        anyhow::Ok(())
    }
    .await;
    let settled = match stored {
        Ok(()) => {
            metrics::counter!("events_dead_lettered_total", "stream" => spec.stream).increment(1);
            msg.ack_with(AckKind::Term).await
        }
        Err(e) => {
            tracing::error!(error = %e, "DLQ unavailable; message will be redelivered");
            msg.ack_with(AckKind::Nak(Some(retry_delay(delivered))))
                .await
        }
    };
    if let Err(e) = settled {
        tracing::warn!(error = %e, "settle after DLQ failed");
    }
}
