//! gauges: what a service reports now and then beside its counters — its outbox's backlog and
//! the age of its oldest unpublished event (`outbox_pending`, `outbox_oldest_age_seconds`), how
//! far behind its consumers are (`consumer_pending`, `consumer_ack_pending`, by stream), and the
//! DLQ's depth (`dlq_messages`, the same for every service: take the max across them).

use crate::db::Db;
use crate::unit_of_work::outbox;
use async_nats::jetstream::{self, consumer};
use contracts::DLQ_STREAM;
use futures::future::BoxFuture;

/// How often the gauges are read again.
pub const EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The outbox's gauges, read from the database. A task of its own beside [`bus`]: with NATS down
/// (when the outbox grows) the bus's calls wait, and these must not wait with them.
pub async fn outbox(db: &Db) -> anyhow::Result<()> {
    let (pending, oldest_ms) = outbox::oldest(&mut db.reader().await?).await?;
    metrics::gauge!("outbox_pending").set(pending as f64);
    let age_ms = oldest_ms.map_or(0, |t| (db.clock().now_ms() - t).max(0));
    metrics::gauge!("outbox_oldest_age_seconds").set(age_ms as f64 / 1000.0);
    Ok(())
}

/// The gauges read from JetStream: the lag of this service's durables on `streams` (asked by
/// name, as its bus user may), the DLQ's depth. One request each: a lookup brings the info.
pub async fn bus(
    name: &'static str,
    streams: &[&'static str],
    js: &jetstream::Context,
) -> anyhow::Result<()> {
    for &stream in streams {
        let durable = js
            .get_consumer_from_stream::<consumer::pull::Config, _, _>(name, stream)
            .await;
        // Not created yet (the first seconds of a start): next time.
        let Ok(durable) = durable else { continue };
        let info = durable.cached_info();
        metrics::gauge!("consumer_pending", "stream" => stream).set(info.num_pending as f64);
        metrics::gauge!("consumer_ack_pending", "stream" => stream)
            .set(info.num_ack_pending as f64);
    }
    if let Ok(dlq) = js.get_stream(DLQ_STREAM).await {
        let messages = dlq.cached_info().state.messages;
        metrics::gauge!("dlq_messages").set(messages as f64);
    }
    Ok(())
}

/// [`outbox`], as a periodic task.
pub fn outbox_task(db: Db) -> impl Fn() -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync {
    move || {
        let db = db.clone();
        Box::pin(async move { outbox(&db).await })
    }
}

/// [`bus`], as a periodic task.
pub fn bus_task(
    name: &'static str,
    js: jetstream::Context,
    streams: Vec<&'static str>,
) -> impl Fn() -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync {
    move || {
        let (js, streams) = (js.clone(), streams.clone());
        Box::pin(async move { bus(name, &streams, &js).await })
    }
}
