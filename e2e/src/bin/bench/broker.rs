//! broker: what the broker alone does on this machine, the baseline every figure of the run is
//! compared with: pipelined JetStream publishes to a file stream, then a durable pull consumer
//! reading and acking them.

use super::progress::bar as progress;
use anyhow::Context as _;
use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use harness::NatsServer;
use std::collections::VecDeque;
use std::time::Instant;

/// Publishes in flight in the broker baseline.
const WINDOW: usize = 4096;

/// Pipelined publishes of `n` small messages to a file-backed stream on a fresh server, then
/// one durable pull consumer reading and acking them all; both in messages per second.
/// `sync_always`: the server fsyncs before every acknowledgement.
pub async fn baseline(n: usize, sync_always: bool) -> anyhow::Result<(f64, f64)> {
    let server = if sync_always {
        NatsServer::start_with_config("jetstream { sync_interval: always }")?
    } else {
        NatsServer::start()?
    };
    let js = jetstream::new(async_nats::connect(server.url()).await?);
    let stream = js
        .create_stream(stream::Config {
            name: "BENCH".into(),
            subjects: vec!["bench.>".into()],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await?;
    let bar = progress(n as u64, "broker: publish");
    let payload = bytes::Bytes::from(vec![b'x'; 128]);
    let started = Instant::now();
    let mut in_flight = VecDeque::with_capacity(WINDOW);
    for i in 0..n {
        in_flight.push_back(
            js.publish(format!("bench.{}", i % 16), payload.clone())
                .await?,
        );
        if in_flight.len() == WINDOW {
            in_flight.pop_front().expect("full").await?;
            bar.inc(1);
        }
    }
    for ack in in_flight {
        ack.await?;
    }
    let published = n as f64 / started.elapsed().as_secs_f64();
    bar.finish_and_clear();

    let consumer: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("bench".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            max_ack_pending: 20_000,
            ..Default::default()
        })
        .await?;
    let bar = progress(n as u64, "broker: consume");
    let started = Instant::now();
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(1000)
        .messages()
        .await?;
    for _ in 0..n {
        let m = messages
            .next()
            .await
            .context("the stream ended early")?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        m.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        bar.inc(1);
    }
    let consumed = n as f64 / started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    Ok((published, consumed))
}
