//! dlq: reading and working off the `DLQ` stream — list entries with their reasons, show one,
//! replay one or all to their original subjects (then remove them), purge.

use crate::consumer::dlq_header;
use anyhow::{Context as _, bail};
use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage};
use contracts::DLQ_STREAM;
use contracts::envelope::header;
use serde::Serialize;

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

/// Publishes the entry's original message again (its headers without the DLQ's, a fresh
/// `Nats-Msg-Id` so the broker does not drop it as a duplicate of the first attempt), and
/// removes the entry once the broker has stored the copy.
pub async fn replay(js: &jetstream::Context, seq: u64) -> anyhow::Result<Entry> {
    let e = show(js, seq).await?;
    if e.original_subject.is_empty() {
        bail!("DLQ entry {seq} does not say where it came from");
    }
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
    js.send_publish(e.original_subject.clone(), msg)
        .await
        .context("publish the replay")?
        .await
        .context("the broker did not store the replay")?;
    js.get_stream(DLQ_STREAM)
        .await?
        .delete_message(seq)
        .await
        .context("remove the replayed entry")?;
    Ok(e)
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
