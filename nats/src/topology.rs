//! topology: the JetStream streams and durable consumers as data, created or updated
//! idempotently by every service at start-up (any service may start first).

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer, stream};
use contracts::{Context, DLQ_STREAM, streams::DLQ_PREFIX};
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
    for config in streams(replicas) {
        let name = config.name.clone();
        js.create_or_update_stream(config)
            .await
            .with_context(|| format!("create or update stream {name}"))?;
    }
    Ok(())
}

/// A durable pull consumer of one service on one upstream stream.
#[derive(Clone, Debug)]
pub struct ConsumerSpec {
    pub stream: &'static str,
    /// The durable name: the service's name, shared by its replicas (the consumer group).
    pub durable: String,
    pub filters: Vec<String>,
    pub replicas: usize,
    pub retry: crate::consumer::RetryPolicy,
}

impl ConsumerSpec {
    /// The consumer of `service` for the events `names` of `context`.
    pub fn new(service: &str, context: Context, names: &[&str], replicas: usize) -> Self {
        ConsumerSpec {
            stream: context.stream(),
            durable: service.to_owned(),
            filters: names.iter().map(|n| context.filter(n)).collect(),
            replicas,
            retry: Default::default(),
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

/// What one service may do on the bus: publish its own context's events and its DLQ entries,
/// make the JetStream API calls its streams and durables need, ack, and receive replies. It can
/// neither publish another context's events nor pull from another service's durables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permissions {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

pub fn permissions(service: &str, own: Context) -> Permissions {
    let mut publish = vec![
        own.wildcard(),
        format!("{DLQ_PREFIX}.{service}.>"),
        "$JS.API.INFO".into(),
        // Every service ensures every stream at start-up (any may start first).
        "$JS.API.STREAM.CREATE.*".into(),
        "$JS.API.STREAM.UPDATE.*".into(),
        "$JS.API.STREAM.INFO.*".into(),
        // Its own durables only: created, inspected and pulled from by name.
        format!("$JS.API.CONSUMER.CREATE.*.{service}"),
        format!("$JS.API.CONSUMER.CREATE.*.{service}.>"),
        format!("$JS.API.CONSUMER.DURABLE.CREATE.*.{service}"),
        format!("$JS.API.CONSUMER.INFO.*.{service}"),
        format!("$JS.API.CONSUMER.MSG.NEXT.*.{service}"),
        "$JS.ACK.>".into(),
    ];
    if own == Context::Concert {
        // The view rebuild replays SEAT through an ordered consumer of its own.
        publish.extend([
            "$JS.API.CONSUMER.CREATE.SEAT".into(),
            "$JS.API.CONSUMER.CREATE.SEAT.>".into(),
            "$JS.API.CONSUMER.MSG.NEXT.SEAT.>".into(),
            "$JS.API.CONSUMER.DELETE.SEAT.>".into(),
            "$JS.API.CONSUMER.INFO.SEAT.>".into(),
        ]);
    }
    Permissions {
        publish,
        subscribe: vec!["_INBOX.>".into()],
    }
}

/// The `authorization` block of a nats-server config: one user per service with its
/// permissions, plus an `admin` user (tools, tests) allowed everything.
pub fn authorization_block(users: &[(&str, Context, &str)], admin_password: &str) -> String {
    let quote = |v: &[String]| {
        v.iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::from("authorization {\n  users = [\n");
    out.push_str(&format!(
        "    {{ user: \"admin\", password: \"{admin_password}\" }}\n"
    ));
    for (service, context, password) in users {
        let p = permissions(service, *context);
        out.push_str(&format!(
            "    {{ user: \"{service}\", password: \"{password}\", permissions: {{ publish: {{ allow: [{}] }}, subscribe: {{ allow: [{}] }} }} }}\n",
            quote(&p.publish),
            quote(&p.subscribe)
        ));
    }
    out.push_str("  ]\n}\n");
    out
}
