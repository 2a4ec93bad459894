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

/// The `authorization` block of a nats-server config: an `admin` user (operators, tools, tests)
/// allowed everything, and one user per service, named after it, with its [`permissions`].
/// `password(user)` gives each password; one starting with `$` is a config variable that
/// nats-server resolves from its environment, so it is written unquoted.
pub fn authorization_block(password: impl Fn(&str) -> String) -> String {
    let quote = |v: &[String]| {
        v.iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let value = |user: &str| {
        let p = password(user);
        if p.starts_with('$') {
            p
        } else {
            format!("\"{p}\"")
        }
    };
    let mut out = String::from("authorization {\n  users = [\n");
    out.push_str(&format!(
        "    {{ user: \"admin\", password: {} }}\n",
        value("admin")
    ));
    for context in Context::ALL {
        let service = context.service();
        let p = permissions(service, context);
        out.push_str(&format!(
            "    {{ user: \"{service}\", password: {}, permissions: {{ publish: {{ allow: [{}] }}, subscribe: {{ allow: [{}] }} }} }}\n",
            value(service),
            quote(&p.publish),
            quote(&p.subscribe)
        ));
    }
    out.push_str("  ]\n}\n");
    out
}

/// Every user of a secured bus: `admin`, then one per service.
pub fn users() -> impl Iterator<Item = &'static str> {
    std::iter::once("admin").chain(Context::ALL.map(Context::service))
}

/// The environment variable holding `user`'s password in the committed configs
/// (`seat-svc` → `SEAT_SVC_NATS_PASSWORD`).
pub fn password_variable(user: &str) -> String {
    format!("{}_NATS_PASSWORD", user.replace('-', "_").to_uppercase())
}

/// `nats/conf/auth.conf`: the block above with every password taken from the environment.
pub fn auth_conf() -> String {
    format!(
        "# Generated from platform::topology::permissions; do not edit by hand. Regenerate with\n\
         # `BLESS=1 cargo test -p platform --lib committed_auth_conf`.\n\
         # Each password comes from the server's environment: {}.\n{}",
        users()
            .map(password_variable)
            .collect::<Vec<_>>()
            .join(", "),
        authorization_block(|user| format!("${}", password_variable(user)))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed config grants what the code says each service needs, nothing else.
    #[test]
    fn committed_auth_conf_is_rendered_from_the_permissions() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/auth.conf");
        let rendered = auth_conf();
        if std::env::var_os("BLESS").is_some() {
            std::fs::write(&path, &rendered).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == rendered,
            "{} differs from the permissions in topology.rs; regenerate it with \
             `BLESS=1 cargo test -p platform --lib committed_auth_conf`",
            path.display()
        );
    }

    #[test]
    fn passwords_are_quoted_unless_they_are_variables() {
        let block = authorization_block(|u| {
            if u == "admin" {
                "$X".into()
            } else {
                "pw".into()
            }
        });
        assert!(block.contains("user: \"admin\", password: $X }"), "{block}");
        assert!(
            block.contains("user: \"seat-svc\", password: \"pw\""),
            "{block}"
        );
    }
}
