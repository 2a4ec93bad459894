//! chaos: a flash sale while service processes and nats-server are SIGKILLed at random moments
//! and restarted. Users behave like a frontend that retries through errors; every command the
//! system accepted (a 2xx) is remembered, and after the faults stop the run waits for every saga
//! to finish and checks the invariants, including that no accepted command was lost. Seeded:
//! the same seed gives the same users, plans and kill schedule.

use crate::invariants::{self, Report};
use crate::{Api, Client, Frontend, System, process::Options};
use anyhow::{Context as _, bail};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Row;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Config {
    pub users: usize,
    pub seats: usize,
    pub kills: usize,
    pub seed: u64,
    /// Processes per service for seat, reservation and payment.
    pub replicas: usize,
    /// Whether nats-server is among the processes killed.
    pub kill_nats: bool,
    /// A three-node NATS cluster with R3 streams instead of one server.
    pub cluster: bool,
    pub hold_ttl_secs: u64,
    /// How long the sagas may take to finish once the faults stop.
    pub converge_within: Duration,
}

/// What each user means to do once they hold a seat.
#[derive(Clone, Copy, Debug)]
enum Plan {
    Pay,
    Cancel,
    LetExpire,
    PayThenCancel,
}

/// Commands the system answered with a 2xx: each must have had its effect.
#[derive(Default, Debug)]
pub struct Accepted {
    pub charged: HashMap<String, i64>,
    pub holds: Vec<String>,
    pub paid: Vec<String>,
    pub cancelled: Vec<String>,
}

pub struct ChaosReport {
    pub invariants: Report,
    pub kills: Vec<String>,
    pub accepted: Accepted,
    /// Accepted commands whose effect is missing.
    pub lost: Vec<String>,
    pub load: Duration,
    pub converge: Duration,
}

impl ChaosReport {
    pub fn violations(&self) -> usize {
        self.invariants.violations.len() + self.lost.len() + self.invariants.unfinished
    }
}

/// A request retried through connection errors and 5xx answers (a process being killed or
/// restarting) until `until`.
async fn call(
    api: &Api,
    method: Method,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
    until: Instant,
) -> anyhow::Result<crate::Reply> {
    loop {
        let raw = body.map(crate::RawBody::Json);
        match api
            .send(method.clone(), path, Some(token), headers, raw)
            .await
        {
            Ok(r) if !r.status.is_server_error() => return Ok(r),
            Ok(r) if Instant::now() > until => bail!("{method} {path}: {} {}", r.status, r.body),
            Err(e) if Instant::now() > until => bail!("{method} {path}: {e:#}"),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn user(
    c: Client,
    i: usize,
    seed: u64,
    schedule: String,
    seats: Vec<String>,
    accepted: Arc<Mutex<Accepted>>,
    until: Instant,
) -> anyhow::Result<()> {
    let mut rng = SmallRng::seed_from_u64(
        seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(i as u64),
    );
    let name = format!("fan{i}");
    let token = c.user_token(&name);
    let points = if rng.random_range(0..5) == 0 { 50 } else { 500 };
    let plan = match rng.random_range(0..20) {
        0..=11 => Plan::Pay,
        12..=14 => Plan::Cancel,
        15..=17 => Plan::LetExpire,
        _ => Plan::PayThenCancel,
    };
    let charged = call(
        &c.payment,
        Method::POST,
        "/wallet/charge",
        &token,
        &[],
        Some(&json!({"amount": points})),
        until,
    )
    .await?;
    if charged.is(200) {
        *accepted
            .lock()
            .unwrap()
            .charged
            .entry(name.clone())
            .or_default() += points;
    }

    // Queue, then up to five tries at a free seat.
    let mut reservation = None;
    for _ in 0..5 {
        let q = call(
            &c.seat,
            Method::POST,
            &format!("/schedules/{schedule}/queue"),
            &token,
            &[],
            Some(&json!({})),
            until,
        )
        .await?;
        if !(q.is(200) || q.is(201)) || q.str("status") != "active" {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let seat = &seats[rng.random_range(0..seats.len())];
        let held = call(
            &c.seat,
            Method::POST,
            &format!("/schedules/{schedule}/holds"),
            &token,
            &[("Queue-Token", &q.str("token"))],
            Some(&json!({"seat_ids": [seat]})),
            until,
        )
        .await?;
        if held.is(201) {
            reservation = Some(held.str("reservation_id"));
            break;
        }
        // 409: taken (or a hold whose answer was lost, which will expire); try again.
    }
    let Some(r) = reservation else { return Ok(()) };
    accepted.lock().unwrap().holds.push(r.clone());

    // Wait until reservation-svc has it, then act on the plan.
    let path = format!("/reservations/{r}");
    loop {
        let got = call(&c.reservation, Method::GET, &path, &token, &[], None, until).await?;
        if got.is(200) {
            break;
        }
        if Instant::now() > until {
            bail!("reservation {r} never appeared");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let command = async |what: &str| -> anyhow::Result<bool> {
        let reply = call(
            &c.reservation,
            Method::POST,
            &format!("{path}/{what}"),
            &token,
            &[],
            Some(&json!({})),
            until,
        )
        .await?;
        Ok(reply.is(202))
    };
    match plan {
        Plan::LetExpire => {}
        Plan::Pay | Plan::PayThenCancel => {
            if command("payment").await? {
                accepted.lock().unwrap().paid.push(r.clone());
            }
        }
        Plan::Cancel => {
            if command("cancel").await? {
                accepted.lock().unwrap().cancelled.push(r.clone());
            }
        }
    }
    if let Plan::PayThenCancel = plan {
        // Once it is confirmed (or failed), cancel; a confirmed one is refunded.
        loop {
            let got = call(&c.reservation, Method::GET, &path, &token, &[], None, until).await?;
            let status = got.str("status");
            if status == "confirmed" {
                if command("cancel").await? {
                    accepted.lock().unwrap().cancelled.push(r.clone());
                }
                break;
            }
            if status != "awaiting_payment" && status != "payment_pending" {
                break;
            }
            if Instant::now() > until {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

/// The users of a sale, each a task: charge, queue, hold, then act on a seeded plan.
pub struct Sale {
    users: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    accepted: Arc<Mutex<Accepted>>,
}

impl Sale {
    /// Starts `users` users on `schedule`; they retry through faults until `until`.
    pub fn start(
        client: Client,
        users: usize,
        seed: u64,
        schedule: &crate::flows::Schedule,
        until: Instant,
    ) -> Sale {
        let accepted = Arc::new(Mutex::new(Accepted::default()));
        let users = (0..users)
            .map(|i| {
                tokio::spawn(user(
                    client.clone(),
                    i,
                    seed,
                    schedule.schedule_id.clone(),
                    schedule.seat_ids.clone(),
                    accepted.clone(),
                    until,
                ))
            })
            .collect();
        Sale { users, accepted }
    }

    /// Holds accepted so far.
    pub fn holds(&self) -> usize {
        self.accepted.lock().unwrap().holds.len()
    }

    /// Waits for every user to be done; what the system accepted from them.
    pub async fn finish(self) -> anyhow::Result<Accepted> {
        for u in self.users {
            u.await.context("a user task panicked")??;
        }
        Arc::try_unwrap(self.accepted)
            .map_err(|_| anyhow::anyhow!("user tasks still hold the record"))
            .map(|m| m.into_inner().unwrap())
    }
}

/// Runs the sale and the faults; `say` hears progress.
pub async fn run(cfg: &Config, say: impl Fn(String)) -> anyhow::Result<ChaosReport> {
    let opts = Options {
        hold_ttl_secs: cfg.hold_ttl_secs,
        queue_active_limit: cfg.users as u64 + 1,
        replicas: cfg.replicas,
        cluster: cfg.cluster,
        ..Default::default()
    };
    let mut sys = System::start_with(opts).await?;
    let seats = crate::flows::numbered_seats("S", cfg.seats, 100);
    let s = crate::flows::open_schedule(&sys, "Chaos", &seats).await?;
    say(format!(
        "system up; {} users, {} seats, {} kills (seed {})",
        cfg.users, cfg.seats, cfg.kills, cfg.seed
    ));

    let started = Instant::now();
    let until = started + Duration::from_secs(120) + cfg.converge_within;
    let sale = Sale::start(sys.client(), cfg.users, cfg.seed, &s, until);

    // The faults, while the users are at it.
    let mut rng = SmallRng::seed_from_u64(cfg.seed);
    let mut kills = Vec::new();
    for _ in 0..cfg.kills {
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..800))).await;
        let targets = 4 + sys.replicas.len() + usize::from(cfg.kill_nats);
        let pick = rng.random_range(0..targets);
        let down = Duration::from_millis(rng.random_range(50..600));
        let at = started.elapsed();
        let name = if pick == 4 + sys.replicas.len() {
            // On a cluster, one node of the three.
            let node = rng.random_range(0..=sys.peers.len());
            let server = sys.nats_node_mut(node);
            server.kill();
            tokio::time::sleep(down).await;
            server.restart()?;
            server
                .name()
                .map_or("nats-server".to_owned(), |n| format!("nats-server {n}"))
        } else {
            let p = sys.service_mut(pick);
            p.kill();
            tokio::time::sleep(down).await;
            p.restart()?;
            p.name.clone()
        };
        say(format!(
            "[{:>6.2}s] SIGKILL {name}, down {} ms",
            at.as_secs_f64(),
            down.as_millis()
        ));
        kills.push(format!("{:.2}s {name}", at.as_secs_f64()));
    }
    let accepted = sale.finish().await?;
    let load = started.elapsed();
    say(format!(
        "load done in {:.1}s; waiting for every saga to finish",
        load.as_secs_f64()
    ));

    let converging = Instant::now();
    let invariants = match sys.settle(cfg.converge_within).await {
        Ok(report) => report,
        Err(e) => {
            say(format!("{e:#}"));
            invariants::check(&sys.databases()).await?
        }
    };
    let converge = converging.elapsed();
    let lost = lost_commands(&sys, &accepted).await?;
    Ok(ChaosReport {
        invariants,
        kills,
        accepted,
        lost,
        load,
        converge,
    })
}

/// Invariant 5: every accepted command had its effect.
pub async fn lost_commands(sys: &System, accepted: &Accepted) -> anyhow::Result<Vec<String>> {
    let dbs = sys.databases();
    let reservations = platform::db::Db::connect(&dbs.reservation).await?;
    let status: HashMap<String, String> = sqlx::query("SELECT id, status FROM reservations")
        .fetch_all(reservations.pool())
        .await?
        .iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("status")?)))
        .collect::<sqlx::Result<_>>()?;
    let payments = platform::db::Db::connect(&dbs.payment).await?;
    let charged: HashMap<String, i64> = sqlx::query("SELECT user_id, charged_total FROM wallets")
        .fetch_all(payments.pool())
        .await?
        .iter()
        .map(|r| Ok((r.try_get("user_id")?, r.try_get("charged_total")?)))
        .collect::<sqlx::Result<_>>()?;
    let mut lost = Vec::new();
    for r in &accepted.holds {
        if !status.contains_key(r) {
            lost.push(format!(
                "hold {r} was accepted but never became a reservation"
            ));
        }
    }
    for r in &accepted.paid {
        // A paid-for reservation ends with the payment's outcome, never as merely expired.
        if matches!(
            status.get(r).map(String::as_str),
            Some("expired") | Some("awaiting_payment") | None
        ) {
            lost.push(format!(
                "payment of {r} was accepted but is not reflected: {:?}",
                status.get(r)
            ));
        }
    }
    for r in &accepted.cancelled {
        if status.get(r).map(String::as_str) != Some("cancelled") {
            lost.push(format!(
                "cancel of {r} was accepted but it is {:?}",
                status.get(r)
            ));
        }
    }
    for (user, points) in &accepted.charged {
        if charged.get(user).copied().unwrap_or(0) < *points {
            lost.push(format!(
                "{user} was charged {points} but the wallet shows {:?}",
                charged.get(user)
            ));
        }
    }
    Ok(lost)
}
