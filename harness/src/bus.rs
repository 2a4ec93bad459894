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
