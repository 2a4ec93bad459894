//! bus: what tests and tools do on JetStream directly — publish a message as a service would,
//! count a stream's messages.

use anyhow::Context as _;

/// Messages in `stream` now (asked of its leader, wherever it is).
pub async fn stream_messages(
    js: &async_nats::jetstream::Context,
    stream: &str,
) -> anyhow::Result<u64> {
    let mut stream = js
        .get_stream(stream)
        .await
        .with_context(|| format!("get stream {stream}"))?;
    Ok(stream.info().await.context("stream info")?.state.messages)
}

/// Publishes a prepared message (headers included) and waits for the broker's ack.
pub async fn publish_message(
    js: &async_nats::jetstream::Context,
    msg: &contracts::Message,
) -> anyhow::Result<()> {
    let headers = nats::messaging::relay::header_map(&msg.headers);
    js.publish_with_headers(msg.subject.clone(), headers, msg.payload.clone().into())
        .await?
        .await?;
    Ok(())
}

/// A client of a secured bus that keeps every "Permissions Violation" the server sends it, so a
/// test tells a denial from any other failure (a timeout, a missing stream, a closed connection).
pub struct Watched {
    pub client: async_nats::Client,
    denials: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Watched {
    /// Connects to `urls` as `user` with replies on `inbox_prefix` (the service's own).
    pub async fn connect(
        urls: Vec<String>,
        user: &str,
        password: &str,
        inbox_prefix: &str,
    ) -> anyhow::Result<Watched> {
        let denials = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = denials.clone();
        let client =
            async_nats::ConnectOptions::with_user_and_password(user.into(), password.into())
                .custom_inbox_prefix(inbox_prefix)
                .event_callback(move |event| {
                    let seen = seen.clone();
                    async move {
                        if let async_nats::Event::ServerError(async_nats::ServerError::Other(e)) =
                            event
                            && e.to_lowercase().contains("permissions violation")
                        {
                            seen.lock().expect("never poisoned").push(e);
                        }
                    }
                })
                .connect(urls)
                .await
                .with_context(|| format!("connect to NATS as {user}"))?;
        Ok(Watched { client, denials })
    }

    /// Waits until the server has denied something on `subject`; an error when it has not within
    /// ten seconds, naming what it did deny.
    pub async fn denied(&self, subject: &str) -> anyhow::Result<()> {
        let quoted = format!("\"{subject}\"");
        crate::wait::eventually(
            &format!("a permissions violation for {subject}"),
            std::time::Duration::from_secs(10),
            async || {
                let denials = self.denials.lock().expect("never poisoned");
                Ok(denials.iter().any(|d| d.contains(&quoted)).then_some(()))
            },
        )
        .await
        .with_context(|| {
            format!(
                "denials seen: {:?}",
                self.denials.lock().expect("never poisoned")
            )
        })
    }

    /// Everything denied so far.
    pub fn denials(&self) -> Vec<String> {
        self.denials.lock().expect("never poisoned").clone()
    }
}
