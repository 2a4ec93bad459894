//! dlq: working off the dead-letter queue — entries listed, shown, replayed to the consumer that
//! gave up on them, purged; chosen by number or by filters, with `--dry-run` to see first.

use anyhow::bail;
use async_nats::jetstream;
use clap::Subcommand;
use nats::messaging::dlq::{self, Entry};

/// Which entries a command takes (all filters must hold).
#[derive(clap::Args, Default)]
pub struct Filter {
    /// The service that gave up on them.
    #[arg(long)]
    service: Option<String>,
    /// Their event type contains this (e.g. `seat.sold`).
    #[arg(long = "type")]
    ce_type: Option<String>,
    /// Their reason contains this.
    #[arg(long)]
    reason: Option<String>,
    /// Dead-lettered at least this many seconds ago.
    #[arg(long, value_name = "SECS")]
    older_than: Option<u64>,
}

impl Filter {
    fn takes(&self, e: &Entry) -> bool {
        let age = (time::OffsetDateTime::now_utc() - e.at).whole_seconds();
        self.service.as_ref().is_none_or(|s| &e.service == s)
            && self
                .ce_type
                .as_ref()
                .is_none_or(|t| e.ce_type.contains(t.as_str()))
            && self
                .reason
                .as_ref()
                .is_none_or(|r| e.reason.contains(r.as_str()))
            && self.older_than.is_none_or(|secs| age >= secs as i64)
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Entries, oldest first: sequence, service, original subject, reason.
    List {
        #[command(flatten)]
        filter: Filter,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One entry in full (JSON).
    Show { seq: u64 },
    /// Publish entries again to the consumer that gave up on them, then remove them.
    Replay(Choice),
    /// Remove entries.
    Purge(Choice),
}

/// The entries a replay or purge takes, and whether only to say what it would do.
#[derive(clap::Args)]
pub struct Choice {
    /// The entry.
    seq: Option<u64>,
    /// Every entry the filters take.
    #[arg(long, conflicts_with = "seq")]
    all: bool,
    #[command(flatten)]
    filter: Filter,
    /// Say what would be done, and do nothing.
    #[arg(long)]
    dry_run: bool,
}

/// The entries a replay or purge takes: the one named, or all the filters take.
async fn chosen(js: &jetstream::Context, c: &Choice) -> anyhow::Result<Vec<Entry>> {
    let (seq, all, filter) = (c.seq, c.all, &c.filter);
    match (seq, all) {
        (Some(seq), _) => Ok(vec![dlq::show(js, seq).await?]),
        (None, true) => Ok(dlq::list(js, usize::MAX)
            .await?
            .into_iter()
            .filter(|e| filter.takes(e))
            .collect()),
        (None, false) => bail!("name an entry, or pass --all (with filters to narrow it)"),
    }
}

fn line(e: &Entry) -> String {
    format!(
        "{:>6}  {:<16} {:<60} {}",
        e.seq, e.service, e.original_subject, e.reason
    )
}

pub async fn run(js: &jetstream::Context, command: Command) -> anyhow::Result<()> {
    match command {
        Command::List { filter, limit } => {
            let entries: Vec<Entry> = dlq::list(js, usize::MAX)
                .await?
                .into_iter()
                .filter(|e| filter.takes(e))
                .take(limit)
                .collect();
            if entries.is_empty() {
                println!("the DLQ is empty");
            }
            for e in &entries {
                println!("{}", line(e));
            }
        }
        Command::Show { seq } => println!(
            "{}",
            serde_json::to_string_pretty(&dlq::show(js, seq).await?)?
        ),
        Command::Replay(c) => {
            for e in chosen(js, &c).await? {
                if c.dry_run {
                    println!("would replay {}", line(&e));
                    continue;
                }
                let (e, to) = dlq::replay(js, e.seq).await?;
                println!("replayed {} ({}) to {to}", e.seq, e.original_subject);
            }
        }
        Command::Purge(c) => {
            let entries = chosen(js, &c).await?;
            for e in &entries {
                if c.dry_run {
                    println!("would remove {}", line(e));
                } else {
                    dlq::purge(js, Some(e.seq)).await?;
                }
            }
            if !c.dry_run {
                println!("removed {}", entries.len());
            }
        }
    }
    Ok(())
}
