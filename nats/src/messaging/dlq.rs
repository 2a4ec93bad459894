//! dlq: the `DLQ` stream — where a consumer puts a message it can never handle, with the reason
//! (`dead_letter`), and how operators work it off: list entries, show one, replay one or all to
//! their original subjects (then remove them), purge.

use super::topology::{ConsumerSpec, retry_delay};
use anyhow::{Context as _, bail};
use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind, message::PublishMessage};
use contracts::envelope::header;
use contracts::streams::dlq_subject;
use contracts::{Context, DLQ_STREAM};
use serde::Serialize;

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

/// Who gave up on a message, after how many deliveries, and why.
pub(crate) struct Failed<'a> {
    pub service: &'a str,
    pub spec: &'a ConsumerSpec,
    pub delivered: i64,
    pub reason: &'a str,
}

/// Copies `msg` with its headers and body to the DLQ with the reason, then terminates it. If the
/// DLQ cannot be written the message is NAKed instead, so nothing is ever dropped.
pub(crate) async fn dead_letter(js: &jetstream::Context, msg: &jetstream::Message, f: &Failed<'_>) {
    tracing::error!(subject = %msg.subject, reason = %f.reason, "event sent to the DLQ");
    let stream_seq = msg.info().map(|i| i.stream_sequence).unwrap_or(0);
    let mut headers = msg.headers.clone().unwrap_or_default();
    // One DLQ entry per consumer and stream message, even if dead-lettering is retried; two
    // consumers giving up on the same message make two entries.
    let entry_id = format!("{}:{}:{stream_seq}", f.spec.durable, f.spec.stream);
    headers.insert(header::MSG_ID, entry_id);
    headers.insert(dlq_header::REASON, f.reason);
    headers.insert(dlq_header::SERVICE, f.service);
    headers.insert(dlq_header::CONSUMER, f.spec.durable.as_str());
    headers.insert(dlq_header::STREAM, f.spec.stream);
    headers.insert(dlq_header::STREAM_SEQ, stream_seq.to_string());
    headers.insert(dlq_header::DELIVERED, f.delivered.to_string());
    headers.insert(dlq_header::ORIGINAL_SUBJECT, msg.subject.as_str());
    let publish = PublishMessage::build()
        .headers(headers)
        .payload(msg.payload.clone());
    let stored = async {
        js.send_publish(dlq_subject(f.service, &msg.subject), publish)
            .await?
            .await?;
        anyhow::Ok(())
    }
    .await;
    let settled = match stored {
        Ok(()) => {
            metrics::counter!("events_dead_lettered_total", "stream" => f.spec.stream).increment(1);
            msg.ack_with(AckKind::Term).await
        }
        Err(e) => {
            tracing::error!(error = %e, "DLQ unavailable; message will be redelivered");
            msg.ack_with(AckKind::Nak(Some(retry_delay(f.delivered))))
                .await
        }
    };
    if let Err(e) = settled {
        tracing::warn!(error = %e, "settle after DLQ failed");
    }
}

/// One dead-lettered message and why it is there.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub seq: u64,
    pub original_subject: String,
    pub reason: String,
    pub service: String,
    pub consumer: String,
    pub delivered: String,
    pub ce_type: String,
    pub ce_id: String,
    /// When it was dead-lettered.
    #[serde(with = "time::serde::rfc3339")]
    pub at: time::OffsetDateTime,
    #[serde(skip)]
    pub headers: HeaderMap,
    pub payload: String,
}

fn entry(msg: jetstream::message::StreamMessage) -> Entry {
    let h = |k: &str| {
        msg.headers
            .get(k)
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default()
    };
    Entry {
        seq: msg.sequence,
        original_subject: h(dlq_header::ORIGINAL_SUBJECT),
        reason: h(dlq_header::REASON),
        service: h(dlq_header::SERVICE),
        consumer: h(dlq_header::CONSUMER),
        delivered: h(dlq_header::DELIVERED),
        ce_type: h(header::TYPE),
        ce_id: h(header::ID),
        at: msg.time,
        payload: String::from_utf8_lossy(&msg.payload).into_owned(),
        headers: msg.headers,
    }
}

/// Up to `limit` entries, oldest first.
pub async fn list(js: &jetstream::Context, limit: usize) -> anyhow::Result<Vec<Entry>> {
    let stream = js
        .get_stream(DLQ_STREAM)
        .await
        .context("get the DLQ stream")?;
    let state = stream.get_info().await.context("DLQ info")?.state;
    let mut out = Vec::new();
    if state.messages == 0 {
        return Ok(out);
    }
    for seq in state.first_sequence..=state.last_sequence {
        if out.len() >= limit {
            break;
        }
        // Sequences of removed entries are gaps.
        if let Ok(msg) = stream.get_raw_message(seq).await {
            out.push(entry(msg));
        }
    }
    Ok(out)
}

pub async fn show(js: &jetstream::Context, seq: u64) -> anyhow::Result<Entry> {
    let stream = js
        .get_stream(DLQ_STREAM)
        .await
        .context("get the DLQ stream")?;
    let msg = stream
        .get_raw_message(seq)
        .await
        .with_context(|| format!("no DLQ entry {seq}"))?;
    Ok(entry(msg))
}

/// Where an entry is replayed: to the consumer that gave up on it alone (the others handled the
/// message already; a second copy would reach them after newer events), or, for an entry that
/// does not name its consumer, to its original subject.
fn replay_subject(e: &Entry) -> String {
    let stream = e
        .headers
        .get(dlq_header::STREAM)
        .and_then(|s| Context::of_stream(s.as_str()));
    match stream {
        Some(context) if !e.consumer.is_empty() => {
            context.replay_subject(&e.consumer, &e.original_subject)
        }
        _ => e.original_subject.clone(),
    }
}

/// Publishes the entry's original message again to the consumer that failed it (its headers
/// without the DLQ's, a fresh `Nats-Msg-Id` so the broker does not drop it as a duplicate of the
/// first attempt), and removes the entry once the broker has stored the copy. Answers the entry
/// and the subject it was replayed to.
pub async fn replay(js: &jetstream::Context, seq: u64) -> anyhow::Result<(Entry, String)> {
    let e = show(js, seq).await?;
    if e.original_subject.is_empty() {
        bail!("DLQ entry {seq} does not say where it came from");
    }
    let to = replay_subject(&e);
    let mut headers = HeaderMap::new();
    for (name, values) in e.headers.iter() {
        let name: &str = name.as_ref();
        if name.starts_with("Dlq-") || name == header::MSG_ID {
            continue;
        }
        for v in values {
            headers.append(name, v.as_str());
        }
    }
    headers.insert(header::MSG_ID, format!("replay-{seq}-{}", e.ce_id));
    let msg = PublishMessage::build()
        .headers(headers)
        .payload(e.payload.clone().into_bytes().into());
    js.send_publish(to.clone(), msg)
        .await
        .context("publish the replay")?
        .await
        .context("the broker did not store the replay")?;
    js.get_stream(DLQ_STREAM)
        .await?
        .delete_message(seq)
        .await
        .context("remove the replayed entry")?;
    Ok((e, to))
}

/// Removes one entry, or all of them.
pub async fn purge(js: &jetstream::Context, seq: Option<u64>) -> anyhow::Result<u64> {
    let stream = js
        .get_stream(DLQ_STREAM)
        .await
        .context("get the DLQ stream")?;
    match seq {
        Some(seq) => {
            stream
                .delete_message(seq)
                .await
                .context("remove the entry")?;
            Ok(1)
        }
        None => Ok(stream.purge().await.context("purge the DLQ")?.purged),
    }
}
