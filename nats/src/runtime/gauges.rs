//! gauges: what a service reports now and then beside its counters — its outbox's backlog and
//! the age of its oldest unpublished event (`outbox_pending`, `outbox_oldest_age_seconds`), how
//! far behind its consumers are (`consumer_pending`, `consumer_ack_pending`, by stream), and the
//! DLQ's depth (`dlq_messages`, the same for every service: take the max across them).

use crate::db::Db;
use crate::unit_of_work::outbox;
use async_nats::jetstream::{self, consumer};
use contracts::{Context, DLQ_STREAM};

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

/// The gauges read from JetStream: this service's consumers' lag (its own durables, asked by
/// name, as its bus user may), the DLQ's depth.
pub async fn bus(name: &'static str, js: &jetstream::Context) -> anyhow::Result<()> {
    for context in Context::ALL {
        let durable = js
            .get_consumer_from_stream::<consumer::pull::Config, _, _>(name, context.stream())
            .await;
        // It does not consume every stream.
        let Ok(mut durable) = durable else { continue };
        let info = durable.info().await?;
        let stream = context.stream();
        metrics::gauge!("consumer_pending", "stream" => stream).set(info.num_pending as f64);
        metrics::gauge!("consumer_ack_pending", "stream" => stream)
            .set(info.num_ack_pending as f64);
    }
    if let Ok(mut dlq) = js.get_stream(DLQ_STREAM).await {
        let messages = dlq.info().await?.state.messages;
        metrics::gauge!("dlq_messages").set(messages as f64);
    }
    Ok(())
}
