//! topology: the JetStream streams and durable consumers as data; who may create or change them
//! (a service creates its own stream if missing and never changes one, the operator's step
//! updates); and what a service subscribes to, as types.

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer, stream};
use contracts::{Context, DLQ_STREAM, Event, EventKind, streams::DLQ_PREFIX};
use std::marker::PhantomData;
use std::time::Duration;

/// How long the broker remembers a `Nats-Msg-Id` to drop a re-published event.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// The bound on each stream's storage. A full stream refuses new events (`discard: new`) rather
/// than dropping old ones: the view rebuild replays every SEAT event, and a dropped old event
/// would leave a seat wrong for good. Refused events wait in the outbox (the relay retries) and
/// the DLQ's writers retry, so nothing is lost while an operator raises the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamLimits {
    pub max_bytes: i64,
}

impl Default for StreamLimits {
    /// 1 GiB a stream: about two million events of this system.
    fn default() -> Self {
        StreamLimits { max_bytes: 1 << 30 }
    }
}

fn stream_config(
    name: &str,
    subjects: Vec<String>,
    replicas: usize,
    limits: StreamLimits,
) -> stream::Config {
    stream::Config {
        name: name.to_owned(),
        subjects,
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        max_bytes: limits.max_bytes,
        discard: stream::DiscardPolicy::New,
        duplicate_window: DUPLICATE_WINDOW,
        num_replicas: replicas,
        ..Default::default()
    }
}

/// The stream of context `c`: every event of that context.
fn context_config(c: Context, replicas: usize, limits: StreamLimits) -> stream::Config {
    stream_config(c.stream(), vec![c.wildcard()], replicas, limits)
}

fn dlq_config(replicas: usize, limits: StreamLimits) -> stream::Config {
    stream_config(
        DLQ_STREAM,
        vec![format!("{DLQ_PREFIX}.>")],
        replicas,
        limits,
    )
}

/// Every stream of the system: one per context plus the DLQ.
pub fn streams(replicas: usize, limits: StreamLimits) -> Vec<stream::Config> {
    Context::ALL
        .iter()
        .map(|c| context_config(*c, replicas, limits))
        .chain([dlq_config(replicas, limits)])
        .collect()
}

/// The operator's step: creates every stream or updates it to `replicas` and `limits` (the
/// `topology` tool, test harnesses). Services never update a stream; see [`ensure_own_streams`].
pub async fn ensure_streams(
    js: &jetstream::Context,
    replicas: usize,
    limits: StreamLimits,
) -> anyhow::Result<()> {
    // On a cluster, when several clients create the same replicated stream at the same moment,
    // the server answers only one of them (measured on 2.15: the others wait out their request
    // timeout although the stream exists, 10 s per stream). A short timeout and a retry of that
    // stream, then an update answered at once, had four services ready 2.3 s after the cluster.
    let js = short_timeout(js);
    for config in streams(replicas, limits) {
        let name = config.name.clone();
        retried(&name, || async {
            js.create_or_update_stream(config.clone())
                .await
                .map(drop)
                .map_err(anyhow::Error::from)
        })
        .await?;
    }
    Ok(())
}

/// What a service does at start-up: creates its own context's stream and the DLQ when they do not
/// exist, and never changes one that does. A stream that exists with other subjects or another
/// replica count than this service was configured for is an error: a service started with
/// `NATS_REPLICAS=1` against an R3 stream must not turn it into R1. Streams of other contexts are
/// their owners' (or the operator's); the consumers on them wait until they exist.
pub async fn ensure_own_streams(
    js: &jetstream::Context,
    own: Context,
    replicas: usize,
    limits: StreamLimits,
) -> Result<(), TopologyError> {
    let js = short_timeout(js);
    for wanted in [
        context_config(own, replicas, limits),
        dlq_config(replicas, limits),
    ] {
        let name = wanted.name.clone();
        retried(&name, || async {
            match js.get_stream(&name).await {
                Ok(mut existing) => {
                    let info = existing.info().await.map_err(anyhow::Error::from)?;
                    Ok(mismatch(&info.config, &wanted).map(TopologyError::Mismatch))
                }
                Err(e) if stream_not_found(&e) => {
                    // Another service may create it meanwhile: the next try then reads it.
                    js.create_stream(wanted.clone())
                        .await
                        .map(|_| None)
                        .map_err(anyhow::Error::from)
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
        .map_err(TopologyError::Unavailable)?
        .map_or(Ok(()), Err)?;
    }
    Ok(())
}

fn stream_not_found(e: &jetstream::context::GetStreamError) -> bool {
    matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(js)
        if js.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND)
}

/// Why a service's streams are not in place.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// The stream exists with a configuration this service must not change: an operator's call.
    #[error("{0}")]
    Mismatch(String),
    /// NATS did not answer (yet).
    #[error(transparent)]
    Unavailable(anyhow::Error),
}

/// How `existing` differs from `wanted` in what a service relies on, if it does.
fn mismatch(existing: &stream::Config, wanted: &stream::Config) -> Option<String> {
    if existing.num_replicas.max(1) != wanted.num_replicas.max(1) {
        return Some(format!(
            "stream {} has {} replicas and this service is configured for {} (NATS_REPLICAS):              it will not change them; set NATS_REPLICAS to match, or change the stream with              the topology tool",
            existing.name, existing.num_replicas, wanted.num_replicas
        ));
    }
    if existing.subjects != wanted.subjects {
        return Some(format!(
            "stream {} takes {:?}, this service publishes {:?}",
            existing.name, existing.subjects, wanted.subjects
        ));
    }
    None
}

fn short_timeout(js: &jetstream::Context) -> jetstream::Context {
    let mut js = js.clone();
    js.set_timeout(Duration::from_secs(1));
    js
}

/// `attempt` up to five times (a cluster answers late while it elects a leader).
async fn retried<T, F: Future<Output = anyhow::Result<T>>>(
    name: &str,
    mut attempt: impl FnMut() -> F,
) -> anyhow::Result<T> {
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) if tries < 5 => {
                tracing::debug!(stream = %name, error = %e, tries, "ensure stream again")
            }
            Err(e) => return Err(e.context(format!("ensure stream {name}"))),
        }
    }
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

/// What a service consumes of one context, its event type erased: for the published contract
/// (AsyncAPI) and the check that it matches the durables the service creates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumes {
    pub context: contracts::Context,
    /// Event names within the context (`held`).
    pub events: Vec<&'static str>,
}

impl<E: Event> From<Subscription<E>> for Consumes {
    fn from(s: Subscription<E>) -> Self {
        Consumes {
            context: E::CONTEXT,
            events: s.kinds.iter().map(|k| k.name()).collect(),
        }
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
