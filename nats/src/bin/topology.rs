//! topology: the operator's step that creates every stream or changes it (replicas, the storage
//! bound). Services only create their own stream when it is missing and never change one.

use clap::Parser;
use nats::messaging::topology::{StreamLimits, ensure_streams, streams};
use nats::messaging::users;

#[derive(Parser)]
#[command(about = "Create or update the JetStream streams of the ticketing system")]
struct Args {
    #[command(flatten)]
    bus: users::OperatorArgs,
    /// Replicas of every stream (3 on a three-node cluster).
    #[arg(long, env = "NATS_REPLICAS", default_value_t = 1)]
    replicas: usize,
    /// The bound of each stream's storage; a full stream refuses new events.
    #[arg(long, env = "NATS_STREAM_MAX_BYTES", default_value_t = StreamLimits::default().max_bytes)]
    max_bytes: i64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let js = args.bus.connect("topology-tool").await?;
    let limits = StreamLimits {
        max_bytes: args.max_bytes,
    };
    ensure_streams(&js, args.replicas, limits).await?;
    for stream in streams(args.replicas, limits) {
        println!(
            "{:<12} R{} max {} bytes, discard new",
            stream.name, stream.num_replicas, stream.max_bytes
        );
    }
    Ok(())
}
