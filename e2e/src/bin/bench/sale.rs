//! sale: the flash sale itself — schedules with a seat per user and charged wallets (set-up,
//! not timed), then each user takes a queue token, holds a seat (timed), and at once pays (10 %
//! with too few points) or cancels (10 %). Users told to come back later do so.
//! The sale ends when every saga is terminal; then the invariant checker runs.

use super::args::Args;
use super::progress::bar as progress;
use anyhow::{Context as _, bail};
use async_nats::jetstream;
use e2e::{Client, Frontend, System, flows};
use futures::StreamExt;
use harness::stream_messages;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use reservation_svc::domain::Status;
use serde_json::json;
use std::future::Future;
use std::time::{Duration, Instant};

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
/// Requests the generator has in flight at most, over all users: each holds a connection, and
/// the generator's file descriptors are limited (often to 20,000). Overloaded, the system keeps
/// thousands of requests waiting (a payment for a reservation that has not arrived yet waits
/// for it); a user beyond this waits for a connection of the generator's, as a browser waits
/// for one of its own, and that wait is not counted as the service's latency. At 3× on two
/// cores it binds (docs/benchmarks.md): from the peak on, users get in at the pace the system
/// answers.
static IN_FLIGHT: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4096);

pub struct Sale {
    /// Events published during the sale.
    pub events: u64,
    /// From the first hold to the last saga's terminal status.
    pub elapsed: Duration,
    /// Latency of each admitted hold.
    pub hold_ms: Vec<f64>,
    pub pay_to_confirm_ms: Vec<f64>,
    /// Answers that told users to come back later.
    pub shed: Shed,
    pub report: e2e::invariants::Report,
}

/// One user's part: queue token, hold (timed), then pay or cancel at once (reservation-svc
/// waits for a reservation it has not consumed yet). A user told to come back later (503 or
/// 429 with `Retry-After`: the system shedding load) does so, as a browser would. Returns the
/// latency of the hold that was admitted, how often the user was told to come back, and, for
/// a payment, the reservation and the wall-clock millisecond it was accepted.
async fn user(c: Client, token: String, schedule: String, seat: String, plan: Plan) -> UserRun {
    let (mut shed, empty) = (Shed::default(), json!({}));
    let queue_path = format!("/schedules/{schedule}/queue");
    let mut queue = patiently(&mut shed.joining, || {
        c.seat.post(&queue_path, Some(&token), &empty)
    })
    .await?;
    let queue_token = queue.str("token");
    let status_path = format!("/queue/{queue_token}");
    // Waiting in line (`--active-per-schedule`): asks again after a pause that grows with the
    // position (0.1–3 s), not in a busy loop.
    while (queue.is(200) || queue.is(201)) && queue.str("status") == "waiting" {
        let position = queue.body["position"].as_u64().unwrap_or(0);
        let pause = Duration::from_millis((position * 5).clamp(100, 3000));
        tokio::time::sleep(pause).await;
        shed.asked += 1;
        queue = patiently(&mut shed.joining, || c.seat.get(&status_path, Some(&token))).await?;
    }
    if !(queue.is(200) || queue.is(201)) || queue.str("status") != "active" {
        bail!("queue: {} {}", queue.status, queue.body);
    }
    let (hold_path, hold_body) = (
        format!("/schedules/{schedule}/holds"),
        json!({"seat_ids": [seat]}),
    );
    let hold_headers = [("Queue-Token", queue_token.as_str())];
    let mut started = Instant::now();
    let held = patiently(&mut shed.admitted, || {
        started = Instant::now();
        c.seat.send(
            reqwest::Method::POST,
            &hold_path,
            Some(&token),
            &hold_headers,
            Some(harness::RawBody::Json(&hold_body)),
        )
    })
    .await?;
    let hold_ms = started.elapsed().as_secs_f64() * 1e3;
    if !held.is(201) {
        bail!("hold: {} {}", held.status, held.body);
    }
    let id = held.str("reservation_id");
    let command = match plan {
        Plan::Cancel => "cancel",
        Plan::Pay | Plan::PayShort => "payment",
    };
    let path = format!("/reservations/{id}/{command}");
    let reply = patiently(&mut shed.admitted, || {
        c.reservation.post(&path, Some(&token), &empty)
    })
    .await?;
    if !reply.is(202) {
        bail!("{command}: {} {}", reply.status, reply.body);
    }
    let paid = matches!(plan, Plan::Pay).then(|| (id, now_ms()));
    Ok(Admitted {
        hold_ms,
        shed,
        paid,
    })
}

/// What a user saw: the latency of their admitted hold, how often they were told to come back
/// later, and their payment (reservation, when it was accepted).
struct Admitted {
    hold_ms: f64,
    shed: Shed,
    paid: Option<(String, i64)>,
}

type UserRun = anyhow::Result<Admitted>;

/// How users were made to wait: answers that told them to come back later (503 or 429 with
/// `Retry-After`), and their asks while waiting in line.
#[derive(Default, Clone, Copy)]
pub struct Shed {
    /// While joining the queue: the system shedding new arrivals.
    pub joining: u64,
    /// Once admitted (hold, payment): e.g. a reservation not arrived in time.
    pub admitted: u64,
    /// Times a user waiting in line asked again where they stand.
    pub asked: u64,
}

/// Sends until the answer is not "come back later" (503 or 429 with `Retry-After`), waiting
/// as told each time; counts the times in `shed`. Each try waits for one of the generator's
/// [`IN_FLIGHT`] connections first.
async fn patiently<F, Fut>(shed: &mut u64, mut send: F) -> anyhow::Result<harness::Reply>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<harness::Reply>>,
{
    let give_up = Instant::now() + Duration::from_secs(300);
    loop {
        let connection = IN_FLIGHT.acquire().await?;
        let reply = send().await?;
        drop(connection);
        match reply.retry_after {
            Some(after) if (reply.is(503) || reply.is(429)) && Instant::now() < give_up => {
                *shed += 1;
                tokio::time::sleep(after).await;
            }
            _ => return Ok(reply),
        }
    }
}

fn now_ms() -> i64 {
    nats::db::to_millis(time::OffsetDateTime::now_utc())
}

pub async fn run(sys: &System, args: &Args) -> anyhow::Result<Sale> {
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

    // Each user's token, minted before the sale: signing is not the system's cost.
    let tokens: Vec<String> = (0..args.sagas)
        .map(|i| client.user_token(&format!("fan{i}")))
        .collect();
    let admin = jetstream::new(async_nats::connect(sys.nats.url()).await?);
    let events_before = stream_events(&admin).await?;
    let audits = sys.audits().await?;
    let bar = progress(args.sagas as u64, "sale: terminal");
    let started_ms = now_ms();
    let started = Instant::now();
    let run_user = {
        let client = client.clone();
        move |i: usize| {
            let (c, (schedule, seat), plan) = (client.clone(), seats[i].clone(), plans[i]);
            user(c, tokens[i].clone(), schedule, seat, plan)
        }
    };
    let users = tokio::spawn({
        let (rate, concurrency, n) = (args.rate, args.concurrency, args.sagas);
        async move {
            match rate {
                // Open loop: user i arrives at i / rate seconds, however slow the system is.
                // Each user's task is made when they arrive, not all at the start: tens of
                // thousands of them waiting made the generator fault in fresh pages for each
                // during the sale, where those that ended leave memory to reuse.
                Some(rate) => {
                    let mut tasks = Vec::with_capacity(n);
                    for i in 0..n {
                        let at = started + Duration::from_secs_f64(i as f64 / rate);
                        // A wake-up that comes late lets every user due by then in at once.
                        tokio::time::sleep_until(at.into()).await;
                        tasks.push(tokio::spawn(run_user(i)));
                    }
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

    // Completed = terminal at reservation-svc, read through its audit (no load on its API).
    let total = args.sagas as i64;
    let mut users = Some(users);
    let mut results = None;
    let last_ms = loop {
        let (n, last) = reservation_svc::audit::ended(&audits.reservation).await?;
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
        // The count scans every reservation (on PostgreSQL in a backend that shares the cores
        // with the system measured): twice a second while users are still at it is enough
        // for the bar, since the end time is read from the rows, not from when it was seen.
        let users_busy = users.as_ref().is_some_and(|u| !u.is_finished());
        let poll = if users_busy { 500 } else { 20 };
        tokio::time::sleep(Duration::from_millis(poll)).await;
    };
    bar.finish_and_clear();
    let results = match (results, users) {
        (Some(r), _) => r,
        (None, Some(u)) => u.await.context("the sale panicked")??,
        (None, None) => unreachable!("the users' results are taken once"),
    };
    let mut hold_ms = Vec::new();
    let mut paid = Vec::new();
    let mut shed = Shed::default();
    for r in results {
        let user = r?;
        hold_ms.push(user.hold_ms);
        shed.joining += user.shed.joining;
        shed.admitted += user.shed.admitted;
        shed.asked += user.shed.asked;
        paid.extend(user.paid);
    }
    let elapsed = Duration::from_millis((last_ms - started_ms).max(1) as u64);
    let events = stream_events(&admin).await? - events_before;

    // Pay to confirmed: from the 202 to the moment reservation-svc recorded `confirmed`.
    let confirmed: std::collections::HashMap<String, i64> =
        reservation_svc::audit::reservations(&audits.reservation)
            .await?
            .into_iter()
            .filter(|r| r.status == Status::Confirmed)
            .map(|r| (r.id.to_string(), r.updated_at_ms))
            .collect();
    let pay_to_confirm_ms = paid
        .iter()
        .filter_map(|(id, at)| confirmed.get(id).map(|c| (c - at).max(0) as f64))
        .collect();

    let report = match sys.settle(Duration::from_secs(120)).await {
        Ok(report) => report,
        Err(e) => {
            eprintln!("{e:#}");
            e2e::invariants::check(&audits).await?
        }
    };
    Ok(Sale {
        events,
        elapsed,
        hold_ms,
        pay_to_confirm_ms,
        shed,
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
