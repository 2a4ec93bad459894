//! users: who may do what on a secured bus. One user per service, allowed its own context's
//! subjects, its own durables and the JetStream API calls those need; an `admin` user for
//! operators and tools. Rendered into the committed `conf/auth.conf`.

use contracts::{Context, DLQ_STREAM, streams::DLQ_PREFIX};

/// What one service may do on the bus: publish its own context's events and its DLQ entries,
/// create its own stream and the DLQ (never update a stream: that is the operator's step),
/// create, read and ack its own durables, and receive replies on an inbox prefix of its own. It
/// can neither publish another context's events, nor pull from or ack another service's
/// durables, nor read another service's replies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permissions {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

/// The name of the consumer concert-svc's view rebuild replays SEAT through.
pub fn rebuild_consumer(service: &str) -> String {
    format!("{service}-rebuild")
}

/// Where `service`'s client receives replies (`async_nats::ConnectOptions::custom_inbox_prefix`).
pub fn inbox_prefix(service: &str) -> String {
    format!("_INBOX_{service}")
}

/// How `user` connects: to every node of `nats_url` (comma-separated; the client also learns
/// the others from the one it reaches), with its credentials when the bus has users, its
/// replies on its own inbox prefix (on a secured bus it may read nothing else).
pub fn connect_options(
    user: &str,
    credentials: Option<&(String, String)>,
) -> async_nats::ConnectOptions {
    let mut options = async_nats::ConnectOptions::new()
        .name(user)
        .custom_inbox_prefix(inbox_prefix(user));
    if let Some((user, password)) = credentials {
        options = options.user_and_password(user.clone(), password.clone());
    }
    options
}

/// How an operator's tool reaches the bus: `--nats-url` (`NATS_URL`), and on a secured bus
/// `--user` / `--password` (`NATS_USER`, `NATS_PASSWORD`; `admin`).
#[derive(clap::Args, Debug)]
pub struct OperatorArgs {
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    #[arg(long, env = "NATS_USER")]
    pub user: Option<String>,
    #[arg(long, env = "NATS_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
}

impl OperatorArgs {
    /// JetStream for the tool `name`.
    pub async fn connect(&self, name: &str) -> anyhow::Result<async_nats::jetstream::Context> {
        let credentials = self.user.clone().zip(self.password.clone());
        let client = connect_options(name, credentials.as_ref())
            .connect(nodes(&self.nats_url))
            .await?;
        Ok(async_nats::jetstream::new(client))
    }
}

/// The nodes of a comma-separated `NATS_URL`.
pub fn nodes(nats_url: &str) -> Vec<String> {
    nats_url.split(',').map(|u| u.trim().to_owned()).collect()
}

pub fn permissions(service: &str, own: Context) -> Permissions {
    let mut publish = vec![
        own.wildcard(),
        format!("{DLQ_PREFIX}.{service}.>"),
        "$JS.API.INFO".into(),
        format!("$JS.API.STREAM.CREATE.{}", own.stream()),
        format!("$JS.API.STREAM.CREATE.{DLQ_STREAM}"),
        "$JS.API.STREAM.INFO.*".into(),
        // Its own durables only: created, inspected, pulled from and acked by name.
        format!("$JS.API.CONSUMER.CREATE.*.{service}"),
        format!("$JS.API.CONSUMER.CREATE.*.{service}.>"),
        format!("$JS.API.CONSUMER.DURABLE.CREATE.*.{service}"),
        format!("$JS.API.CONSUMER.INFO.*.{service}"),
        format!("$JS.API.CONSUMER.MSG.NEXT.*.{service}"),
        format!("$JS.ACK.*.{service}.>"),
    ];
    if own == Context::Concert {
        // The view rebuild replays SEAT through an ordered consumer of that one name, which it
        // deletes and creates again when the replay has a gap.
        let name = rebuild_consumer(service);
        publish.extend([
            format!("$JS.API.CONSUMER.CREATE.SEAT.{name}"),
            format!("$JS.API.CONSUMER.CREATE.SEAT.{name}.>"),
            format!("$JS.API.CONSUMER.MSG.NEXT.SEAT.{name}"),
            format!("$JS.API.CONSUMER.DELETE.SEAT.{name}"),
            format!("$JS.API.CONSUMER.INFO.SEAT.{name}"),
        ]);
    }
    if own == Context::Reservation {
        // It follows every saga: it reads a saga's events from every stream, one by one, and
        // asks where each consumer stands (the timeline). Reads only.
        publish.extend([
            "$JS.API.STREAM.MSG.GET.*".to_owned(),
            "$JS.API.CONSUMER.LIST.*".to_owned(),
        ]);
    }
    Permissions {
        publish,
        subscribe: vec![format!("{}.>", inbox_prefix(service))],
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
        "# Generated from nats::messaging::users::permissions; do not edit by hand. Regenerate with\n\
         # `BLESS=1 cargo test -p nats --lib committed_auth_conf`.\n\
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
            "{} differs from the permissions in users.rs; regenerate it with \
             `BLESS=1 cargo test -p nats --lib committed_auth_conf`",
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
