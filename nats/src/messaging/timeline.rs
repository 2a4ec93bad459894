//! timeline: one saga as it happened on the bus — every event whose subject ends in the
//! reservation id, from every context's stream, in order, each with its type, source, time,
//! cause, trace and the time since the step before, and where each durable consumer that takes
//! it stands on it (delivered, acked, dead-lettered). Read with the streams' get-message API:
//! nothing is created, acked or changed.

use super::dlq;
use anyhow::Context as _;
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::stream::RawMessageErrorKind;
use async_nats::jetstream::{self, consumer};
use contracts::envelope::Envelope;
use contracts::streams::DLQ_PREFIX;
use contracts::{Context, DLQ_STREAM};
use futures::StreamExt as _;
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

/// One event of a saga.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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

/// Where one durable consumer stands on an event.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Position {
    pub consumer: String,
    pub state: Delivery,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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

impl Delivery {
    /// The word its JSON uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Pending => "pending",
            Delivery::Delivered => "delivered",
            Delivery::Acked => "acked",
            Delivery::DeadLettered => "dead_lettered",
        }
    }
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

/// The messages of `stream` whose subject matches `filter`, in stream order, read one by one
/// with the stream's get-message API (read-only: no consumer is created).
async fn messages(
    js: &jetstream::Context,
    stream: &str,
    filter: &str,
) -> anyhow::Result<Vec<jetstream::message::StreamMessage>> {
    let Ok(stream) = js.get_stream_no_info(stream).await else {
        return Ok(Vec::new());
    };
    let mut out: Vec<jetstream::message::StreamMessage> = Vec::new();
    loop {
        let from = out.last().map_or(0, |m| m.sequence + 1);
        let next = stream
            .raw_message_builder()
            .sequence(from)
            .next_by_subject(filter)
            .send()
            .await;
        match next {
            Ok(msg) => out.push(msg),
            Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => return Ok(out),
            // A stream not created yet holds nothing.
            Err(e) if matches!(e.kind(), RawMessageErrorKind::JetStream(ref j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
            {
                return Ok(out);
            }
            Err(e) => return Err(anyhow::anyhow!("read {filter}: {e}")),
        }
    }
}

/// The events of `context`'s stream whose subject ends in `id`, and the stream's durables.
async fn events_of(
    js: &jetstream::Context,
    context: Context,
    id: Uuid,
) -> anyhow::Result<(Vec<(u64, String, Envelope)>, Vec<consumer::Info>)> {
    let filter = format!("{}.*.{id}", context.prefix());
    let events = messages(js, context.stream(), &filter)
        .await?
        .into_iter()
        // An event that cannot be read as one is left out (the DLQ tells of those).
        .filter_map(|m| {
            let envelope = Envelope::from_headers(|k| m.headers.get(k).map(|v| v.as_str())).ok()?;
            Some((m.sequence, m.subject.to_string(), envelope))
        })
        .collect::<Vec<_>>();
    if events.is_empty() {
        return Ok((events, Vec::new()));
    }
    let mut stream = js.get_stream(context.stream()).await?;
    Ok((events, durables(&mut stream).await?))
}

/// The DLQ entries of the saga `id`: (consumer, stream, stream sequence) of each.
async fn dead_letters(
    js: &jetstream::Context,
    id: Uuid,
) -> anyhow::Result<Vec<(String, String, u64)>> {
    let filter = format!("{DLQ_PREFIX}.*.*.*.{id}");
    Ok(messages(js, DLQ_STREAM, &filter)
        .await?
        .into_iter()
        .map(|m| {
            let h = |k: &str| {
                m.headers
                    .get(k)
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default()
            };
            (
                h(dlq::dlq_header::CONSUMER),
                h(dlq::dlq_header::STREAM),
                h(dlq::dlq_header::STREAM_SEQ).parse().unwrap_or(0),
            )
        })
        .collect())
}

/// Every event of the saga `id`, in the order they happened.
pub async fn saga(js: &jetstream::Context, id: Uuid) -> anyhow::Result<Vec<Step>> {
    let dead = dead_letters(js, id).await?;
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
                    let dead_lettered = dead.iter().any(|(consumer, stream, at)| {
                        *consumer == name && stream == context.stream() && *at == seq
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
    Ok(in_causal_order(steps))
}

/// `steps` by time, except that none comes before the step that caused it: each service's clock
/// is set against its database's (on PostgreSQL measured over a round trip), so two services
/// may disagree by a few milliseconds, and a reply can carry an earlier time than its cause.
/// Each step's `after_ms` counts from the step before, in that order, never below 0.
fn in_causal_order(steps: Vec<Step>) -> Vec<Step> {
    let index: std::collections::HashMap<String, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.clone(), i))
        .collect();
    // A step's place: its time or, if later, its cause's place; then how many causes it has
    // in the saga. Causes are followed by walking up the chain, each step at most once (a
    // forged chain cannot loop).
    let place = |i: usize| {
        let mut chain = vec![i];
        let mut at = i;
        while let Some(cause) = steps[at].causation_id.as_ref().and_then(|c| index.get(c)) {
            if chain.contains(cause) {
                break;
            }
            chain.push(*cause);
            at = *cause;
        }
        let latest = chain
            .iter()
            .map(|&c| steps[c].time)
            .max()
            .unwrap_or(steps[i].time);
        (latest, chain.len())
    };
    let places: Vec<(OffsetDateTime, usize)> = (0..steps.len()).map(place).collect();
    let mut placed: Vec<_> = places.into_iter().zip(steps).collect();
    // Event ids are UUIDv7 (time-ordered within a process): the last tie-break.
    placed.sort_by(|(a, x), (b, y)| (a, &x.id).cmp(&(b, &y.id)));
    let mut before: Option<OffsetDateTime> = None;
    placed
        .into_iter()
        .map(|((at, _), mut step)| {
            step.after_ms = before.map(|t| (at - t).whole_milliseconds().max(0) as i64);
            before = Some(at);
            step
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{OffsetDateTime, Step, in_causal_order, matches};

    fn step(id: &str, cause: Option<&str>, at_ms: i64) -> Step {
        Step {
            stream: "S",
            seq: 0,
            subject: String::new(),
            ce_type: id.to_owned(),
            source: String::new(),
            id: id.to_owned(),
            time: OffsetDateTime::UNIX_EPOCH + time::Duration::milliseconds(at_ms),
            causation_id: cause.map(str::to_owned),
            traceparent: None,
            after_ms: None,
            consumers: Vec::new(),
        }
    }

    #[test]
    fn a_step_never_shows_before_its_cause_whatever_the_clocks_say() {
        // The payment service's clock runs 2 ms behind the reservation service's.
        let steps = vec![
            step("held", Some("hold-request"), 0),
            step("requested", Some("pay-request"), 30),
            step("completed", Some("requested"), 28),
            step("sold", Some("completed"), 40),
            step("unrelated", Some("elsewhere"), 29),
        ];
        let shown = in_causal_order(steps);
        let ids: Vec<&str> = shown.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["held", "unrelated", "requested", "completed", "sold"]);
        let after: Vec<Option<i64>> = shown.iter().map(|s| s.after_ms).collect();
        assert_eq!(after, [None, Some(29), Some(1), Some(0), Some(10)]);
        // A forged loop of causes still ends.
        let looped = in_causal_order(vec![step("a", Some("b"), 5), step("b", Some("a"), 1)]);
        assert_eq!(looped.len(), 2);
    }

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
