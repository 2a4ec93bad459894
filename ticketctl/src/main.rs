//! ticketctl: the operator's one tool for the ticketing system — dead letters, a saga's
//! timeline and the stuck sagas, consumer lag, and tokens for development.

mod dlq;
mod saga;

use clap::{Parser, Subcommand};
use nats::messaging::users::OperatorArgs;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "ticketctl",
    about = "Operate the ticketing system: dead letters, sagas, consumer lag, tokens",
    long_about = "Operate the ticketing system: work off dead letters, follow one saga across \
                  every stream, list the sagas that are stuck, see how far behind each consumer \
                  is, and mint tokens for development. The bus is reached with --nats-url (and \
                  --user/--password on a secured bus); stuck sagas are asked of reservation-svc."
)]
struct Args {
    #[command(flatten)]
    bus: OperatorArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The dead-letter queue: list, show, replay, purge.
    #[command(subcommand)]
    Dlq(dlq::Command),
    /// One saga: its whole timeline, or the sagas that are stuck.
    #[command(subcommand)]
    Saga(saga::Command),
    /// Every durable consumer: messages not delivered yet and delivered but not acked.
    Lag,
    /// A token for development (signed with JWT_SECRET).
    Token {
        /// The user (`sub`).
        #[arg(long)]
        user: String,
        /// `admin` for the admin routes.
        #[arg(long)]
        role: Option<String>,
        /// How long it is valid, in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// The shared secret services verify tokens with.
        #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
        secret: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.command {
        Command::Token {
            user,
            role,
            ttl,
            secret,
        } => {
            let auth = nats::web::Auth::new(&secret);
            println!(
                "{}",
                auth.issue(&user, role.as_deref(), Duration::from_secs(ttl))
            );
            Ok(())
        }
        Command::Dlq(command) => dlq::run(&args.bus.connect("ticketctl").await?, command).await,
        Command::Saga(command) => saga::run(&args.bus, command).await,
        Command::Lag => {
            let js = args.bus.connect("ticketctl").await?;
            println!(
                "{:<12} {:<20} {:>10} {:>12}",
                "stream", "consumer", "pending", "ack pending"
            );
            for l in nats::messaging::lag::all(&js).await? {
                println!(
                    "{:<12} {:<20} {:>10} {:>12}",
                    l.stream, l.consumer, l.pending, l.ack_pending
                );
            }
            Ok(())
        }
    }
}
