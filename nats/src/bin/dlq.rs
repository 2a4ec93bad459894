//! dlq: the admin tool for the `DLQ` stream — list, show, replay, purge.

use clap::{Parser, Subcommand};
use nats::messaging::{dlq, users};

#[derive(Parser)]
#[command(about = "Inspect and work off the dead-letter queue of the ticketing system")]
struct Args {
    #[command(flatten)]
    bus: users::OperatorArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Entries, oldest first: sequence, service, original subject, reason.
    List {
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One entry in full (JSON).
    Show { seq: u64 },
    /// Publish entries again to their original subjects, then remove them.
    Replay {
        /// The entry to replay.
        seq: Option<u64>,
        /// Replay every entry.
        #[arg(long, conflicts_with = "seq")]
        all: bool,
    },
    /// Remove an entry, or all of them.
    Purge {
        seq: Option<u64>,
        #[arg(long, conflicts_with = "seq")]
        all: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let js = args.bus.connect("dlq-tool").await?;
    match args.command {
        Command::List { limit } => {
            let entries = dlq::list(&js, limit).await?;
            if entries.is_empty() {
                println!("the DLQ is empty");
            }
            for e in entries {
                println!(
                    "{:>6}  {:<16} {:<60} {}",
                    e.seq, e.service, e.original_subject, e.reason
                );
            }
        }
        Command::Show { seq } => println!(
            "{}",
            serde_json::to_string_pretty(&dlq::show(&js, seq).await?)?
        ),
        Command::Replay { seq, all } => {
            let seqs: Vec<u64> = match (seq, all) {
                (Some(s), _) => vec![s],
                (None, true) => dlq::list(&js, usize::MAX)
                    .await?
                    .iter()
                    .map(|e| e.seq)
                    .collect(),
                (None, false) => anyhow::bail!("name an entry or pass --all"),
            };
            for s in seqs {
                let (e, to) = dlq::replay(&js, s).await?;
                println!("replayed {s} ({}) to {to}", e.original_subject);
            }
        }
        Command::Purge { seq, all } => {
            if seq.is_none() && !all {
                anyhow::bail!("name an entry or pass --all");
            }
            println!("removed {}", dlq::purge(&js, seq).await?);
        }
    }
    Ok(())
}
