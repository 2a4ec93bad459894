//! chaos: a flash sale under random SIGKILLs of the services and nats-server; prints a report
//! and exits non-zero on any violation or any saga that never finishes.

use clap::Parser;
use e2e::chaos::{self, Config};
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Flash sale with random process kills, then the invariant checker")]
struct Args {
    #[arg(long, default_value_t = 100)]
    users: usize,
    #[arg(long, default_value_t = 30)]
    seats: usize,
    #[arg(long, default_value_t = 10)]
    kills: usize,
    /// The same seed gives the same users, plans and kill schedule.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Processes each of seat-svc, reservation-svc and payment-svc.
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// Leave nats-server alone.
    #[arg(long)]
    spare_nats: bool,
    /// A three-node NATS cluster with R3 streams; a nats kill takes down one node.
    #[arg(long)]
    cluster: bool,
    /// Also cut services' databases (up to 3 s each).
    #[arg(long)]
    db_outages: bool,
    /// A secured bus, with one forged payment event that must be denied.
    #[arg(long)]
    forge: bool,
    #[arg(long, default_value_t = 5)]
    hold_ttl_secs: u64,
    /// How long the sagas may take to finish once the faults stop.
    #[arg(long, default_value_t = 120)]
    converge_secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let cfg = Config {
        users: a.users,
        seats: a.seats,
        kills: a.kills,
        seed: a.seed,
        replicas: a.replicas,
        kill_nats: !a.spare_nats,
        cluster: a.cluster,
        db_outages: a.db_outages,
        forge: a.forge,
        hold_ttl_secs: a.hold_ttl_secs,
        converge_within: Duration::from_secs(a.converge_secs),
    };
    let report = chaos::run(&cfg, |line| println!("{line}")).await?;
    let acc = &report.accepted;
    println!("\n== chaos report (seed {}) ==", cfg.seed);
    println!("faults             {}", report.kills.len());
    println!(
        "sagas by outcome   {:?} ({} in all)",
        report.invariants.outcomes,
        report.invariants.sagas()
    );
    println!(
        "accepted commands  {} charges, {} holds, {} payments, {} cancels",
        acc.charged.len(),
        acc.holds.len(),
        acc.paid.len(),
        acc.cancelled.len()
    );
    println!("load               {:.1} s", report.load.as_secs_f64());
    println!("time to converge   {:.1} s", report.converge.as_secs_f64());
    println!("unfinished sagas   {}", report.invariants.unfinished);
    println!("violations         {}", report.violations());
    for v in report
        .invariants
        .violations
        .iter()
        .chain(&report.lost)
        .chain(&report.forgeries_accepted)
        .take(30)
    {
        println!("  - {v}");
    }
    if report.violations() > 0 {
        std::process::exit(1);
    }
    Ok(())
}
