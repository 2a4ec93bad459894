//! timeline: one saga as it happened on the bus — every event whose subject ends in the
//! reservation id, from every context's stream, in order, each with its type, source, time,
//! cause, trace and the time since the step before, and where each durable consumer that takes
//! it stands on it (delivered, acked, dead-lettered). Read with an ephemeral consumer per stream;
//! nothing is acked or changed.

use super::dlq;
use anyhow::Context as _;
use async_nats::jetstream::{self, consumer};
use contracts::Context;
use contracts::envelope::Envelope;
use futures::StreamExt as _;
use serde::Serialize;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

/// One event of a saga.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub stream: &'static str,
    pub seq: u64,
    pub subject: String,
    #[serde(rename = "type")]
    pub ce_type: String,
    pub source: String,
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// The event or request that caused it.
    pub causation_id: Option<String>,
    pub traceparent: Option<String>,
    /// Milliseconds since the step before (none for the first).
    pub after_ms: Option<i64>,
    /// Each durable consumer of the stream that takes this event, and where it stands.
    pub consumers: Vec<Position>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Position {
    pub consumer: String,
    pub state: Delivery,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Not delivered yet.
    Pending,
    /// Delivered, not acked yet (being handled, or to be redelivered).
    Delivered,
    Acked,
    /// Given up on: in the DLQ.
    DeadLettered,
}

/// Whether `subject` matches the consumer filter `filter` (`*` one token, `>` the rest).
fn matches(filter: &str, subject: &str) -> bool {
    let mut f = filter.split('.');
    let mut s = subject.split('.');
    loop {
        match (f.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// The durables of `stream`: name, filters (empty: everything), delivered and ack floor.
async fn durables(stream: &mut jetstream::stream::Stream) -> anyhow::Result<Vec<consumer::Info>> {
    let mut infos = stream.consumers();
    let mut out = Vec::new();
    while let Some(info) = infos.next().await {
        let info = info.context("list consumers")?;
        if info.config.durable_name.is_some() {
            out.push(info);
        }
    }
    Ok(out)
}

/// The events of `stream` whose subject ends in `id`.
async fn events_of(
    js: &jetstream::Context,
    context: Context,
    id: Uuid,
) -> anyhow::Result<(Vec<(u64, String, Envelope)>, Vec<consumer::Info>)> {
    let Ok(mut stream) = js.get_stream(context.stream()).await else {
        return Ok((Vec::new(), Vec::new()));
    };
    let reader = stream
        .create_consumer(consumer::pull::Config {
            filter_subject: format!("{}.*.{id}", context.prefix()),
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .context("create a reading consumer")?;
    let mut pending = reader.cached_info().num_pending as usize;
    let mut events = Vec::new();
    while pending > 0 {
        let mut batch = reader
            .batch()
            .max_messages(pending.min(1_000))
            .expires(Duration::from_secs(2))
            .messages()
            .await?;
        let mut got = 0;
        while let Some(msg) = batch.next().await {
            let msg = msg.map_err(|e| anyhow::anyhow!("read {}: {e}", context.stream()))?;
            got += 1;
            let seq = msg.info().map(|i| i.stream_sequence).unwrap_or(0);
            let headers = msg.headers.clone().unwrap_or_default();
            // An event that cannot be read as one is left out (the DLQ tells of those).
            if let Ok(envelope) = Envelope::from_headers(|k| headers.get(k).map(|v| v.as_str())) {
                events.push((seq, msg.subject.to_string(), envelope));
            }
        }
        if got == 0 {
            break;
        }
        pending = pending.saturating_sub(got);
    }
    let _ = stream.delete_consumer(&reader.cached_info().name).await;
    Ok((events, durables(&mut stream).await?))
}

/// Every event of the saga `id`, in the order they happened.
pub async fn saga(js: &jetstream::Context, id: Uuid) -> anyhow::Result<Vec<Step>> {
    let dead = dlq::list(js, usize::MAX).await.unwrap_or_default();
    let mut steps = Vec::new();
    for context in Context::ALL {
        let (events, durables) = events_of(js, context, id).await?;
        for (seq, subject, envelope) in events {
            let consumers = durables
                .iter()
                .filter(|d| {
                    let c = &d.config;
                    let filters: Vec<&String> = c
                        .filter_subjects
                        .iter()
                        .chain(Some(&c.filter_subject))
                        .collect();
                    filters.iter().all(|f| f.is_empty())
                        || filters.iter().any(|f| matches(f, &subject))
                })
                .map(|d| {
                    let name = d.name.clone();
                    let dead_lettered = dead.iter().any(|e| {
                        e.consumer == name
                            && e.headers.get(dlq::dlq_header::STREAM).map(|v| v.as_str())
                                == Some(context.stream())
                            && e.headers
                                .get(dlq::dlq_header::STREAM_SEQ)
                                .map(|v| v.as_str())
                                == Some(seq.to_string().as_str())
                    });
                    let state = if dead_lettered {
                        Delivery::DeadLettered
                    } else if seq <= d.ack_floor.stream_sequence {
                        Delivery::Acked
                    } else if seq <= d.delivered.stream_sequence {
                        Delivery::Delivered
                    } else {
                        Delivery::Pending
                    };
                    Position {
                        consumer: name,
                        state,
                    }
                })
                .collect();
            steps.push(Step {
                stream: context.stream(),
                seq,
                subject,
                ce_type: envelope.ce_type,
                source: envelope.source,
                id: envelope.id.to_string(),
                time: envelope.time,
                causation_id: envelope.causation_id,
                traceparent: envelope.traceparent,
                after_ms: None,
                consumers,
            });
        }
    }
    // Event ids are UUIDv7 (time-ordered within a process); the time first, across services.
    steps.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
    let mut before: Option<OffsetDateTime> = None;
    for step in &mut steps {
        step.after_ms = before.map(|t| (step.time - t).whole_milliseconds() as i64);
        before = Some(step.time);
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn filters_match_as_nats_does() {
        assert!(matches("seat.>", "seat.held.1"));
        assert!(matches("payment.*.1", "payment.completed.1"));
        assert!(!matches("payment.*.1", "payment.completed.2"));
        assert!(!matches("seat.held", "seat.held.1"));
        assert!(matches("seat.held.*", "seat.held.1"));
        assert!(!matches("seat.>", "seat"));
    }
}
