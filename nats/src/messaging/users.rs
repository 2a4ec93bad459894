//! users: who may do what on a secured bus. One user per service, allowed its own context's
//! subjects, its own durables and the JetStream API calls those need; an `admin` user for
//! operators and tools. Rendered into the committed `conf/auth.conf`.

use contracts::{Context, streams::DLQ_PREFIX};

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
