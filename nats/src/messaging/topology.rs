//! topology: the JetStream streams and durable consumers as data, created or updated
//! idempotently by every service at start-up (any service may start first), and what a
//! service subscribes to, as types.

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer, stream};
use contracts::{Context, DLQ_STREAM, Event, EventKind, streams::DLQ_PREFIX};
use std::marker::PhantomData;
use std::time::Duration;

/// How long the broker remembers a `Nats-Msg-Id` to drop a re-published event.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

fn stream_config(name: &str, subjects: Vec<String>, replicas: usize) -> stream::Config {
    stream::Config {
        name: name.to_owned(),
        subjects,
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        duplicate_window: DUPLICATE_WINDOW,
        num_replicas: replicas,
        ..Default::default()
    }
}

/// Every stream of the system: one per context plus the DLQ.
pub fn streams(replicas: usize) -> Vec<stream::Config> {
    Context::ALL
        .iter()
        .map(|c| stream_config(c.stream(), vec![c.wildcard()], replicas))
        .chain([stream_config(
            DLQ_STREAM,
            vec![format!("{DLQ_PREFIX}.>")],
            replicas,
        )])
        .collect()
}

pub async fn ensure_streams(js: &jetstream::Context, replicas: usize) -> anyhow::Result<()> {
    // On a cluster, when several services create the same replicated stream at the same moment,
    // the server answers only one of them (measured on 2.15: the others wait out their request
    // timeout although the stream exists, 10 s per stream). A short timeout and a retry of that
    // stream, then an update answered at once, had four services ready 2.3 s after the cluster.
    let mut js = js.clone();
    js.set_timeout(Duration::from_secs(1));
    for config in streams(replicas) {
        let name = config.name.clone();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match js.create_or_update_stream(config.clone()).await {
                Ok(_) => break,
                Err(e) if attempt < 5 => {
                    tracing::debug!(stream = %name, error = %e, attempt, "ensure stream again")
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("create or update stream {name}"));
                }
            }
        }
    }
    Ok(())
}

/// Events of one context a service handles, named by their kinds: a misspelt event does not
/// compile, and the filters are made from the same names the events are published under.
pub struct Subscription<E: Event> {
    kinds: &'static [E::Kind],
    _context: PhantomData<fn() -> E>,
}

impl<E: Event> Subscription<E> {
    pub const fn to(kinds: &'static [E::Kind]) -> Self {
        Subscription {
            kinds,
            _context: PhantomData,
        }
    }

    pub fn kinds(&self) -> &'static [E::Kind] {
        self.kinds
    }

    /// The stream's subject filters, one per event kind (any aggregate).
    pub fn filters(&self) -> Vec<String> {
        self.kinds
            .iter()
            .map(|k| E::CONTEXT.filter(k.name()))
            .collect()
    }
}

impl<E: Event> Clone for Subscription<E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E: Event> Copy for Subscription<E> {}

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

/// Backoff for the `delivered`-th failed attempt: 200 ms doubling, at most 10 s.
pub fn retry_delay(delivered: i64) -> Duration {
    let exp = delivered.clamp(1, 8) as u32 - 1;
    Duration::from_millis(200u64 << exp).min(Duration::from_secs(10))
}

/// A durable pull consumer of one service on one upstream stream.
#[derive(Clone, Debug)]
pub struct ConsumerSpec {
    pub stream: &'static str,
    /// The durable name: the service's name, shared by its replicas (the consumer group).
    pub durable: String,
    /// Only ever made from a [`Subscription`], so no filter is a hand-written subject.
    filters: Vec<String>,
    pub replicas: usize,
    pub retry: RetryPolicy,
}

impl ConsumerSpec {
    /// The consumer of `service` for the events of `subscription`, and of the dead letters
    /// replayed to it.
    pub fn new<E: Event>(service: &str, subscription: Subscription<E>, replicas: usize) -> Self {
        let mut filters = subscription.filters();
        filters.push(E::CONTEXT.replay_filter(service));
        ConsumerSpec {
            stream: E::CONTEXT.stream(),
            durable: service.to_owned(),
            filters,
            replicas,
            retry: RetryPolicy::default(),
        }
    }
}

pub async fn ensure_consumer(
    js: &jetstream::Context,
    spec: &ConsumerSpec,
) -> anyhow::Result<consumer::PullConsumer> {
    let stream = js
        .get_stream(spec.stream)
        .await
        .with_context(|| format!("get stream {}", spec.stream))?;
    stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(spec.durable.clone()),
            filter_subjects: spec.filters.clone(),
            ack_policy: consumer::AckPolicy::Explicit,
            deliver_policy: consumer::DeliverPolicy::All,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 1000,
            num_replicas: spec.replicas,
            ..Default::default()
        })
        .await
        .with_context(|| format!("create consumer {} on {}", spec.durable, spec.stream))
}

/// True when `durable` has nothing left to deliver or to be acked: everything published to its
/// stream so far has been handled. Used to tell "not built yet" from "does not exist".
pub async fn caught_up(
    js: &jetstream::Context,
    stream: &str,
    durable: &str,
) -> anyhow::Result<bool> {
    let mut consumer: consumer::PullConsumer =
        js.get_consumer_from_stream(durable, stream)
            .await
            .with_context(|| format!("get consumer {durable} on {stream}"))?;
    let info = consumer.info().await.context("consumer info")?;
    Ok(info.num_pending == 0 && info.num_ack_pending == 0)
}
