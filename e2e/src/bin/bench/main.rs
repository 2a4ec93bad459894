//! bench: the flash-sale benchmark. In one run it measures what the broker alone does on this
//! machine (pipelined JetStream publishes, a durable pull consumer with acks), then runs the four
//! services (release builds) through a flash sale and the invariant checker, and prints a table
//! and a `RESULT` line. `cargo run --release -p e2e --bin bench -- --help`.

mod args;
mod broker;
mod measure;
mod progress;
mod sale;

use args::{Args, Backend};
use clap::Parser;
use e2e::System;
use e2e::system::Options;
use measure::{Cpu, Percentiles, ready_after_restart, rebuild, rss_of};

/// jemalloc: with thousands of users in flight, glibc's allocator took most of the load
/// generator's CPU (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if cfg!(debug_assertions) {
        eprintln!("note: a debug build; run with `cargo run --release -p e2e --bin bench`");
    }
    e2e::process::build_services()?;

    let (pub_rate, consume_rate) = broker::baseline(args.broker_messages, args.sync_always).await?;
    println!(
        "broker baseline: {} msgs of 128 B: publish {pub_rate:.0}/s, consume+ack {consume_rate:.0}/s",
        args.broker_messages
    );

    let opts = Options {
        hold_ttl_secs: 600,
        queue_active_limit: args.active_per_schedule.unwrap_or(args.sagas as u64 + 10),
        replicas: args.replicas,
        postgres: args.db == Backend::Postgres,
        postgres_server: Some(args.postgres_server()),
        sync_always: args.sync_always,
        // As a deployment would run: the bench runs one system.
        db_connections: nats::db::DEFAULT_CONNECTIONS,
        ..Default::default()
    };
    let mut sys = System::start_with(opts).await?;
    let idle_rss = rss_of(&sys, "VmRSS");
    let cpu_before = Cpu::now(&sys);
    let sale = sale::run(&sys, &args).await?;
    let cpu_after = Cpu::now(&sys);
    let (cpu_used, cpu_system, cpu_generator) = cpu_after.since(&cpu_before);
    let cpu_postgres = cpu_after.postgres_since(&cpu_before);
    let peak_rss = rss_of(&sys, "VmHWM");
    let rebuild = if args.rebuild {
        Some(rebuild(&sys).await?)
    } else {
        None
    };
    let ready = ready_after_restart(&mut sys).await?;

    let events_rate = sale.events as f64 / sale.elapsed.as_secs_f64();
    // The sale ends when every saga is terminal: all of them completed.
    let sagas_rate = args.sagas as f64 / sale.elapsed.as_secs_f64();
    let max_rss = peak_rss.iter().map(|(_, kb)| *kb).max().unwrap_or(0) as f64 / 1024.0;
    let hold = Percentiles::of(sale.hold_ms.clone());
    let confirm = Percentiles::of(sale.pay_to_confirm_ms.clone());
    let violations = sale.report.violations.len() + sale.report.unfinished;
    let per_saga = |d: std::time::Duration| d.as_secs_f64() * 1e6 / args.sagas as f64;

    println!();
    println!("== flash sale ==");
    let mode = match args.rate {
        Some(r) => format!("open loop at {r:.0} holds/s"),
        None => format!("closed loop, {} users in flight", args.concurrency),
    };
    let db = match args.db {
        Backend::Sqlite => "SQLite".to_owned(),
        Backend::Postgres => format!("PostgreSQL at {}", args.postgres_server()),
    };
    println!(
        "{} sagas, {mode}, {db}, {} process(es) per consumer group",
        args.sagas, args.replicas
    );
    println!(
        "{:<34} {:>12}",
        "outcomes",
        format!("{:?}", sale.report.outcomes)
    );
    row(
        "sale, first hold to last terminal",
        sale.elapsed.as_secs_f64(),
        "s",
    );
    row("completed sagas", sagas_rate, "/s");
    row("events published", events_rate, "/s");
    row("broker publish (baseline)", pub_rate, "/s");
    row("broker consume+ack (baseline)", consume_rate, "/s");
    println!(
        "{:<34} {:>12.4}",
        "events / broker publish",
        events_rate / pub_rate
    );
    row(
        "come back later: joining",
        sale.shed.joining as f64,
        "answers",
    );
    row(
        "come back later: once admitted",
        sale.shed.admitted as f64,
        "answers",
    );
    row(
        "asked again, waiting in line",
        sale.shed.asked as f64,
        "answers",
    );
    row("admitted hold latency p50", hold.p50, "ms");
    row("admitted hold latency p99", hold.p99, "ms");
    row("pay to confirmed p50", confirm.p50, "ms");
    row("pay to confirmed p99", confirm.p99, "ms");
    for (name, used) in &cpu_used {
        println!(
            "{:<34} {:>12.1} s, {:.0} µs per saga",
            format!("CPU {name}"),
            used.as_secs_f64(),
            per_saga(*used)
        );
    }
    row(
        "CPU per saga, services + nats-server",
        per_saga(cpu_system),
        "µs",
    );
    row(
        "CPU per saga, load generator",
        per_saga(cpu_generator),
        "µs",
    );
    if sys.on_postgres() {
        // Not in cpu_us_per_saga: that figure is the four services and nats-server, on either
        // backend alike.
        row(
            "CPU per saga, PostgreSQL's server",
            per_saga(cpu_postgres),
            "µs",
        );
    }
    for ((name, idle), (_, peak)) in idle_rss.iter().zip(&peak_rss) {
        println!(
            "{:<34} {:>9.1} MB idle, {:.1} MB peak",
            format!("RSS {name}"),
            *idle as f64 / 1024.0,
            *peak as f64 / 1024.0
        );
    }
    for (name, ms) in &ready {
        row(&format!("ready after restart, {name}"), *ms, "ms");
    }
    if let Some((events, rate, replay_rate)) = rebuild {
        row(&format!("view rebuild ({events} events)"), rate, "events/s");
        row("  of which the replay alone", replay_rate, "events/s");
    }
    println!("violations: {violations}");
    for v in sale.report.violations.iter().take(20) {
        println!("  - {v}");
    }
    println!(
        "RESULT sagas_per_sec={sagas_rate:.0} events_per_sec={events_rate:.0} \
         broker_pub_per_sec={pub_rate:.0} broker_consume_per_sec={consume_rate:.0} \
         ratio={:.3} hold_p50_ms={:.1} hold_p99_ms={:.1} pay_to_confirm_p99_ms={:.1} \
         max_rss_mb={max_rss:.1} cpu_us_per_saga={:.0} generator_cpu_us_per_saga={:.0} \
         shed_joining={} shed_admitted={} asked_in_line={} violations={violations}",
        events_rate / pub_rate,
        hold.p50,
        hold.p99,
        confirm.p99,
        per_saga(cpu_system),
        per_saga(cpu_generator),
        sale.shed.joining,
        sale.shed.admitted,
        sale.shed.asked
    );
    if violations > 0 {
        std::process::exit(1);
    }
    Ok(())
}

fn row(what: &str, value: f64, unit: &str) {
    println!("{what:<34} {value:>12.1} {unit}");
}
