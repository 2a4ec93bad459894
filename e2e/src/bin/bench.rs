//! bench: the flash-sale benchmark. In one run it measures what the broker alone does on this
//! machine (pipelined JetStream publishes, a durable pull consumer with acks), then runs the four
//! services (release builds) through a flash sale and the invariant checker, and prints a table
//! and a `RESULT` line. `cargo run --release -p e2e --bin bench -- --help`.

use anyhow::{Context as _, bail};
use async_nats::jetstream::{self, consumer, stream};
use clap::{Parser, ValueEnum};
use e2e::process::Options;
use e2e::{Client, Frontend, System, flows};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use platform::harness::{NatsServer, stream_messages};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde_json::json;
use sqlx::Row;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Flash-sale benchmark: the raw broker beside the whole saga, one run")]
struct Args {
    /// Sagas in the sale (one user holding one seat each).
    #[arg(long, default_value_t = 6000)]
    sagas: usize,
    /// Users in flight at once (closed loop; ignored with --rate).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Offered holds per second (open loop: users arrive on this schedule whatever the latency).
    #[arg(long)]
    rate: Option<f64>,
    /// Decides which users are short of points and which cancel.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    db: Backend,
    /// Processes each of seat-svc, reservation-svc and payment-svc.
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// Also measure rebuilding the availability view from the SEAT stream.
    #[arg(long)]
    rebuild: bool,
    /// Messages for the broker baseline.
    #[arg(long, default_value_t = 200_000)]
    broker_messages: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
}

/// What a user means to do once they hold their seat.
#[derive(Clone, Copy)]
enum Plan {
    Pay,
    /// Pays with too few points: the payment fails and the seat is released.
    PayShort,
    Cancel,
}

const PRICE: i64 = 100;
/// Seats per schedule: a schedule's seats travel in one event, under NATS's 1 MB payload limit.
const SEATS_PER_SCHEDULE: usize = 2000;
/// Publishes in flight in the broker baseline.
const WINDOW: usize = 4096;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if cfg!(debug_assertions) {
        eprintln!("note: a debug build; run with `cargo run --release -p e2e --bin bench`");
    }
    e2e::process::build_services()?;

    let (pub_rate, consume_rate) = broker_baseline(args.broker_messages).await?;
    println!(
        "broker baseline: {} msgs of 128 B: publish {pub_rate:.0}/s, consume+ack {consume_rate:.0}/s",
        args.broker_messages
    );

    let opts = Options {
        hold_ttl_secs: 600,
        queue_active_limit: args.sagas as u64 + 10,
        replicas: args.replicas,
        postgres: args.db == Backend::Postgres,
        ..Default::default()
    };
    let mut sys = System::start_with(opts).await?;
    let idle_rss = rss_of(&sys, "VmRSS");
    let sale = sale(&sys, &args).await?;
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

    println!();
    println!("== flash sale ==");
    let mode = match args.rate {
        Some(r) => format!("open loop at {r:.0} holds/s"),
        None => format!("closed loop, {} users in flight", args.concurrency),
    };
    let db = match args.db {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
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
    row("hold latency p50", hold.p50, "ms");
    row("hold latency p99", hold.p99, "ms");
    row("pay to confirmed p50", confirm.p50, "ms");
    row("pay to confirmed p99", confirm.p99, "ms");
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
         max_rss_mb={max_rss:.1} violations={violations}",
        events_rate / pub_rate,
        hold.p50,
        hold.p99,
        confirm.p99
    );
    if violations > 0 {
        std::process::exit(1);
    }
    Ok(())
}

fn row(what: &str, value: f64, unit: &str) {
    println!("{what:<34} {value:>12.1} {unit}");
}

/// Pipelined publishes of `n` small messages to a file-backed stream on a fresh server, then
/// one durable pull consumer reading and acking them all; both in messages per second.
async fn broker_baseline(n: usize) -> anyhow::Result<(f64, f64)> {
    let server = NatsServer::start()?;
    let js = jetstream::new(async_nats::connect(server.url()).await?);
    let stream = js
        .create_stream(stream::Config {
            name: "BENCH".into(),
            subjects: vec!["bench.>".into()],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await?;
    let bar = progress(n as u64, "broker: publish");
    let payload = bytes::Bytes::from(vec![b'x'; 128]);
    let started = Instant::now();
    let mut in_flight = VecDeque::with_capacity(WINDOW);
    for i in 0..n {
        in_flight.push_back(
            js.publish(format!("bench.{}", i % 16), payload.clone())
                .await?,
        );
        if in_flight.len() == WINDOW {
            in_flight.pop_front().expect("full").await?;
            bar.inc(1);
        }
    }
    for ack in in_flight {
        ack.await?;
    }
    let published = n as f64 / started.elapsed().as_secs_f64();
    bar.finish_and_clear();

    let consumer: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("bench".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            max_ack_pending: 20_000,
            ..Default::default()
        })
        .await?;
    let bar = progress(n as u64, "broker: consume");
    let started = Instant::now();
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(1000)
        .messages()
        .await?;
    for _ in 0..n {
        let m = messages
            .next()
            .await
            .context("the stream ended early")?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        m.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        bar.inc(1);
    }
    let consumed = n as f64 / started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    Ok((published, consumed))
}

fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:<20} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

struct Sale {
    events: u64,
    elapsed: Duration,
    hold_ms: Vec<f64>,
    pay_to_confirm_ms: Vec<f64>,
    report: e2e::invariants::Report,
}

/// One user's part: queue token, hold (timed), wait until reservation-svc knows the
/// reservation, then pay or cancel. Returns the hold latency and, for a payment, the
/// reservation and the wall-clock millisecond it was accepted.
async fn user(
    c: Client,
    name: String,
    schedule: String,
    seat: String,
    plan: Plan,
) -> anyhow::Result<(f64, Option<(String, i64)>)> {
    let token = c.user_token(&name);
    // Not flows::join_queue: its async closure makes this future not `Send` (a compiler
    // limitation), and user tasks are spawned onto every core.
    let queue = c
        .seat
        .post(
            &format!("/schedules/{schedule}/queue"),
            Some(&token),
            &json!({}),
        )
        .await?;
    if !(queue.is(200) || queue.is(201)) || queue.str("status") != "active" {
        bail!("queue: {} {}", queue.status, queue.body);
    }
    let queue_token = queue.str("token");
    let started = Instant::now();
    let held = flows::hold(&c, &name, &schedule, &queue_token, &[seat]).await?;
    let hold_ms = started.elapsed().as_secs_f64() * 1e3;
    if !held.is(201) {
        bail!("hold: {} {}", held.status, held.body);
    }
    let id = held.str("reservation_id");
    let path = format!("/reservations/{id}");
    // Asking costs reservation-svc a request, so ask with backoff: a few ms when idle, ~100 ms
    // under a flash sale (the hold's event has to travel through the outbox and the broker).
    let mut pause = Duration::from_millis(5);
    loop {
        tokio::time::sleep(pause).await;
        if c.reservation.get(&path, Some(&token)).await?.is(200) {
            break;
        }
        pause = (pause * 2).min(Duration::from_millis(40));
    }
    let command = match plan {
        Plan::Cancel => "cancel",
        Plan::Pay | Plan::PayShort => "payment",
    };
    let reply = c
        .reservation
        .post(&format!("{path}/{command}"), Some(&token), &json!({}))
        .await?;
    if !reply.is(202) {
        bail!("{command}: {} {}", reply.status, reply.body);
    }
    let paid = matches!(plan, Plan::Pay).then(|| (id, now_ms()));
    Ok((hold_ms, paid))
}

fn now_ms() -> i64 {
    platform::to_millis(time::OffsetDateTime::now_utc())
}

async fn sale(sys: &System, args: &Args) -> anyhow::Result<Sale> {
    let client = sys.client();
    let mut rng = SmallRng::seed_from_u64(args.seed);
    // 10 % pay with too few points, 10 % cancel: compensations are part of the load.
    let plans: Vec<Plan> = (0..args.sagas)
        .map(|_| match rng.random_range(0..10) {
            0 => Plan::PayShort,
            1 => Plan::Cancel,
            _ => Plan::Pay,
        })
        .collect();

    // Set-up, not timed: schedules with a seat per user, and every wallet charged.
    let schedules = args.sagas.div_ceil(SEATS_PER_SCHEDULE);
    let bar = progress(schedules as u64, "set-up: schedules");
    let mut seats = Vec::new();
    for k in 0..schedules {
        let n = SEATS_PER_SCHEDULE.min(args.sagas - k * SEATS_PER_SCHEDULE);
        let s = flows::open_schedule(
            sys,
            &format!("Bench {k}"),
            &flows::numbered_seats("B", n, PRICE),
        )
        .await?;
        // seat-svc builds the schedule's inventory from its event: wait for it (503 until then).
        flows::join_queue(sys, &format!("probe{k}"), &s.schedule_id).await?;
        seats.extend(
            s.seat_ids
                .into_iter()
                .map(|seat| (s.schedule_id.clone(), seat)),
        );
        bar.inc(1);
    }
    bar.finish_and_clear();
    let bar = progress(args.sagas as u64, "set-up: wallets");
    futures::stream::iter(plans.iter().enumerate())
        .map(|(i, plan)| {
            let (c, bar) = (client.clone(), bar.clone());
            let points = if matches!(plan, Plan::PayShort) {
                PRICE / 2
            } else {
                PRICE
            };
            async move {
                flows::charge(&c, &format!("fan{i}"), points).await?;
                bar.inc(1);
                anyhow::Ok(())
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<()>>()?;
    bar.finish_and_clear();

    let admin = jetstream::new(async_nats::connect(sys.nats.url()).await?);
    let events_before = stream_events(&admin).await?;
    let reservations = platform::db::Db::connect(&sys.databases().reservation).await?;
    let bar = progress(args.sagas as u64, "sale: terminal");
    let started_ms = now_ms();
    let started = Instant::now();
    let run_user = {
        let client = client.clone();
        move |i: usize| {
            let (c, (schedule, seat), plan) = (client.clone(), seats[i].clone(), plans[i]);
            user(c, format!("fan{i}"), schedule, seat, plan)
        }
    };
    let users = tokio::spawn({
        let (rate, concurrency, n) = (args.rate, args.concurrency, args.sagas);
        async move {
            match rate {
                // Open loop: user i arrives at i / rate seconds, however slow the system is.
                Some(rate) => {
                    let tasks: Vec<_> = (0..n)
                        .map(|i| {
                            let run = run_user(i);
                            let at = started + Duration::from_secs_f64(i as f64 / rate);
                            tokio::spawn(async move {
                                tokio::time::sleep_until(at.into()).await;
                                run.await
                            })
                        })
                        .collect();
                    let mut results = Vec::with_capacity(n);
                    for t in tasks {
                        results.push(t.await.context("a user task panicked")?);
                    }
                    anyhow::Ok(results)
                }
                None => Ok(futures::stream::iter(0..n)
                    .map(run_user)
                    .buffer_unordered(concurrency)
                    .collect::<Vec<_>>()
                    .await),
            }
        }
    });

    // Completed = terminal at reservation-svc, read from its database (no load on its API).
    let total = args.sagas as i64;
    let mut users = Some(users);
    let mut results = None;
    let last_ms = loop {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, COALESCE(MAX(updated_at), 0) AS last FROM reservations \
             WHERE status IN ('confirmed', 'failed', 'cancelled', 'expired')",
        )
        .fetch_one(reservations.pool())
        .await?;
        let (n, last): (i64, i64) = (row.try_get("n")?, row.try_get("last")?);
        bar.set_position(n as u64);
        if n == total {
            break last;
        }
        if users.as_ref().is_some_and(|u| u.is_finished()) {
            let done = users
                .take()
                .expect("checked")
                .await
                .context("the sale panicked")??;
            // A user that failed means a saga that never started: say why rather than wait.
            if let Some(e) = done.iter().find_map(|r| r.as_ref().err()) {
                bail!("a user failed: {e:#}");
            }
            results = Some(done);
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("only {n} of {total} sagas finished within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    bar.finish_and_clear();
    let results = match (results, users) {
        (Some(r), _) => r,
        (None, Some(u)) => u.await.context("the sale panicked")??,
        (None, None) => unreachable!("the users' results are taken once"),
    };
    let mut hold_ms = Vec::new();
    let mut paid = Vec::new();
    for r in results {
        let (hold, payment) = r?;
        hold_ms.push(hold);
        paid.extend(payment);
    }
    let elapsed = Duration::from_millis((last_ms - started_ms).max(1) as u64);
    let events = stream_events(&admin).await? - events_before;

    // Pay to confirmed: from the 202 to the moment reservation-svc recorded `confirmed`.
    let confirmed: std::collections::HashMap<String, i64> =
        sqlx::query("SELECT id, updated_at FROM reservations WHERE status = 'confirmed'")
            .fetch_all(reservations.pool())
            .await?
            .iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("updated_at")?)))
            .collect::<sqlx::Result<_>>()?;
    let pay_to_confirm_ms = paid
        .iter()
        .filter_map(|(id, at)| confirmed.get(id).map(|c| (c - at).max(0) as f64))
        .collect();

    let report = match sys.settle(Duration::from_secs(120)).await {
        Ok(report) => report,
        Err(e) => {
            eprintln!("{e:#}");
            e2e::invariants::check(&sys.databases()).await?
        }
    };
    Ok(Sale {
        events,
        elapsed,
        hold_ms,
        pay_to_confirm_ms,
        report,
    })
}

/// Events in the four contexts' streams so far.
async fn stream_events(js: &jetstream::Context) -> anyhow::Result<u64> {
    let mut total = 0;
    for context in contracts::Context::ALL {
        total += stream_messages(js, context.stream()).await?;
    }
    Ok(total)
}

/// `(service, kB)` of a /proc/<pid>/status field of each main service process.
fn rss_of(sys: &System, field: &str) -> Vec<(String, u64)> {
    sys.services()
        .iter()
        .map(|p| {
            let kb = p
                .pid()
                .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
                .and_then(|status| {
                    status
                        .lines()
                        .find(|l| l.starts_with(field))
                        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                })
                .unwrap_or(0);
            (p.name.clone(), kb)
        })
        .collect()
}

/// The view rebuilt from the SEAT stream (a dry run that compares): events and events/s.
/// The view rebuild as concert-svc reports it: events, then events/s for the whole rebuild and
/// for the replay alone.
async fn rebuild(sys: &System) -> anyhow::Result<(u64, f64, f64)> {
    let r = sys
        .concert
        .api()
        .post("/admin/view/rebuild", Some(&sys.admin_token()), &json!({}))
        .await?;
    if !r.is(200) {
        bail!("rebuild: {} {}", r.status, r.body);
    }
    let field = |name: &str| {
        r.body[name]
            .as_u64()
            .with_context(|| format!("{name} in the answer {}", r.body))
    };
    Ok((
        field("events")?,
        field("events_per_sec")? as f64,
        field("replay_events_per_sec")? as f64,
    ))
}

/// Each service killed and started again on its database: ms from spawn to `/readyz` 200.
async fn ready_after_restart(sys: &mut System) -> anyhow::Result<Vec<(String, f64)>> {
    let mut out = Vec::new();
    for i in 0..4 {
        let started = Instant::now();
        sys.service_mut(i).restart()?;
        let p = sys.services()[i];
        sys.wait_ready(p).await?;
        out.push((p.name.clone(), started.elapsed().as_secs_f64() * 1e3));
    }
    Ok(out)
}

struct Percentiles {
    p50: f64,
    p99: f64,
}

impl Percentiles {
    fn of(mut values: Vec<f64>) -> Percentiles {
        values.sort_by(f64::total_cmp);
        let at = |q: f64| {
            if values.is_empty() {
                return 0.0;
            }
            values[((values.len() as f64 * q).ceil() as usize).clamp(1, values.len()) - 1]
        };
        Percentiles {
            p50: at(0.50),
            p99: at(0.99),
        }
    }
}
