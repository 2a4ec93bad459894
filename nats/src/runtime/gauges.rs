//! gauges: what a service reports now and then beside its counters — its outbox's backlog and
//! the age of its oldest unpublished event (`outbox_pending`, `outbox_oldest_age_seconds`), how
//! far behind its consumers are (`consumer_pending`, `consumer_ack_pending`, by stream), and the
//! DLQ's depth (`dlq_messages`, the same for every service: take the max across them).

use crate::db::Db;
use crate::messaging::lag;
use crate::unit_of_work::outbox;
use async_nats::jetstream;
use contracts::DLQ_STREAM;

/// How often the gauges are read again.
pub const EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Reads every gauge once. The outbox is read from the database and the rest from JetStream, so
/// one being down does not keep the other's gauges from moving.
pub async fn report(name: &'static str, db: &Db, js: &jetstream::Context) -> anyhow::Result<()> {
    let outbox = async {
        let (pending, oldest_ms) = outbox::oldest(&mut db.reader().await?).await?;
        metrics::gauge!("outbox_pending").set(pending as f64);
        let age_ms = oldest_ms.map_or(0, |t| (db.clock().now_ms() - t).max(0));
        metrics::gauge!("outbox_oldest_age_seconds").set(age_ms as f64 / 1000.0);
        anyhow::Ok(())
    };
    let bus = async {
        for l in lag::all(js).await? {
            if l.consumer == name {
                metrics::gauge!("consumer_pending", "stream" => l.stream).set(l.pending as f64);
                metrics::gauge!("consumer_ack_pending", "stream" => l.stream)
                    .set(l.ack_pending as f64);
            }
        }
        if let Ok(mut dlq) = js.get_stream(DLQ_STREAM).await {
            let messages = dlq.info().await?.state.messages;
            metrics::gauge!("dlq_messages").set(messages as f64);
        }
        anyhow::Ok(())
    };
    let (a, b) = futures::join!(outbox, bus);
    a.and(b)
}
