//! lag: where every durable consumer stands — messages not delivered yet (`pending`) and
//! delivered but not acked (`ack_pending`) — for operators (`ticketctl lag`; each service's
//! gauges ask for their own durables only, as their bus users may).

use anyhow::Context as _;
use async_nats::jetstream;
use contracts::Context;
use futures::StreamExt as _;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Lag {
    pub stream: &'static str,
    pub consumer: String,
    pub pending: u64,
    pub ack_pending: u64,
}

/// Every durable consumer of every context's stream (streams not created yet are skipped).
pub async fn all(js: &jetstream::Context) -> anyhow::Result<Vec<Lag>> {
    let mut out = Vec::new();
    for context in Context::ALL {
        let Ok(stream) = js.get_stream(context.stream()).await else {
            continue;
        };
        let mut infos = stream.consumers();
        while let Some(info) = infos.next().await {
            let info =
                info.with_context(|| format!("list the consumers of {}", context.stream()))?;
            if info.config.durable_name.is_none() {
                continue;
            }
            out.push(Lag {
                stream: context.stream(),
                consumer: info.name,
                pending: info.num_pending,
                ack_pending: info.num_ack_pending as u64,
            });
        }
    }
    Ok(out)
}
