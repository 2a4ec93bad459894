//! chaos: a flash sale ([`crate::sale`]) while service processes and nats-server are SIGKILLed
//! at random moments and restarted. After the faults stop the run waits for every saga to finish
//! and checks the invariants, including that no accepted command was lost. Seeded: the same seed
//! gives the same users, plans and kill schedule.

use crate::invariants::{self, Report};
use crate::sale::{Accepted, Sale};
use crate::system::Options;
use crate::system::System;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use reservation_svc::domain::Status;
use std::collections::HashMap;
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
    /// Whether a service's database is among the faults (cut for up to 3 s: SQLite's write lock
    /// taken, or the PostgreSQL connection proxied and dropped).
    pub db_outages: bool,
    /// A secured bus (each service on its own NATS user), where one fault is a forged
    /// `payment.completed` for a live reservation, published with seat-svc's credentials: the
    /// server must deny it.
    pub forge: bool,
    pub hold_ttl_secs: u64,
    /// How long the sagas may take to finish once the faults stop.
    pub converge_within: Duration,
}

pub struct ChaosReport {
    pub invariants: Report,
    pub kills: Vec<String>,
    /// Forged events the bus did not deny.
    pub forgeries_accepted: Vec<String>,
    pub accepted: Accepted,
    /// Accepted commands whose effect is missing.
    pub lost: Vec<String>,
    pub load: Duration,
    pub converge: Duration,
}

impl ChaosReport {
    pub fn violations(&self) -> usize {
        self.invariants.violations.len()
            + self.lost.len()
            + self.invariants.unfinished
            + self.forgeries_accepted.len()
    }
}

/// Runs the sale and the faults; `say` hears progress.
pub async fn run(cfg: &Config, say: impl Fn(String)) -> anyhow::Result<ChaosReport> {
    let opts = Options {
        hold_ttl_secs: cfg.hold_ttl_secs,
        queue_active_limit: cfg.users as u64 + 1,
        replicas: cfg.replicas,
        cluster: cfg.cluster,
        outages: cfg.db_outages,
        secured: cfg.forge,
        // One system at a time, as a deployment: the tests' smaller pools are for running
        // side by side.
        db_connections: nats::db::DEFAULT_CONNECTIONS,
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
    let mut forgeries_accepted = Vec::new();
    let processes = 4 + sys.replicas.len();
    let nats = usize::from(cfg.kill_nats);
    let databases = if cfg.db_outages { 4 } else { 0 };
    let forge_at = cfg.forge.then_some(cfg.kills / 2);
    for n in 0..cfg.kills {
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..800))).await;
        let at = started.elapsed();
        if forge_at == Some(n) {
            let (fault, denied) = forge(&sys, &sale).await?;
            say(format!("[{:>6.2}s] {fault}", at.as_secs_f64()));
            if !denied {
                forgeries_accepted.push(fault.clone());
            }
            kills.push(format!("{:.2}s {fault}", at.as_secs_f64()));
            continue;
        }
        let pick = rng.random_range(0..processes + nats + databases);
        let down = Duration::from_millis(rng.random_range(50..600));
        let name = if pick >= processes + nats {
            let service = crate::process::SERVICES[pick - processes - nats];
            let down = Duration::from_millis(rng.random_range(500..3000));
            let breaker = sys.breaker(service).expect("outages are on");
            let cut = breaker.cut().await?;
            tokio::time::sleep(down).await;
            drop(cut);
            format!("database of {service} cut for {} ms", down.as_millis())
        } else if pick == processes {
            // On a cluster, one node of the three.
            let node = rng.random_range(0..=sys.peers.len());
            let server = sys.nats_node_mut(node);
            server.kill();
            tokio::time::sleep(down).await;
            server.restart()?;
            let name = server
                .name()
                .map_or("nats-server".to_owned(), |n| format!("nats-server {n}"));
            format!("SIGKILL {name}, down {} ms", down.as_millis())
        } else {
            let p = sys.service_mut(pick);
            p.kill();
            tokio::time::sleep(down).await;
            p.restart()?;
            format!("SIGKILL {}, down {} ms", p.name, down.as_millis())
        };
        say(format!("[{:>6.2}s] {name}", at.as_secs_f64()));
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
            invariants::check(&sys.audits().await?).await?
        }
    };
    let converge = converging.elapsed();
    let lost = lost_commands(&sys, &accepted).await?;
    Ok(ChaosReport {
        invariants,
        kills,
        forgeries_accepted,
        accepted,
        lost,
        load,
        converge,
    })
}

/// Publishes a forged `payment.completed` for a reservation users are holding, with seat-svc's
/// credentials (a compromised service), and says whether the bus denied it. Before any hold,
/// for a reservation id nobody holds (the bus must deny it all the same).
async fn forge(sys: &System, sale: &Sale) -> anyhow::Result<(String, bool)> {
    let reservation = sale
        .held()
        .into_iter()
        .next()
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let subject = format!("payment.completed.{reservation}");
    let seat = sys.watched_as("seat-svc").await?;
    seat.client.publish(subject.clone(), "{}".into()).await?;
    seat.client.flush().await?;
    Ok(match seat.denied(&subject).await {
        Ok(()) => (format!("forged {subject} as seat-svc: denied"), true),
        Err(e) => (
            format!("forged {subject} as seat-svc: NOT denied ({e:#})"),
            false,
        ),
    })
}

/// Invariant 5: every accepted command had its effect.
pub async fn lost_commands(sys: &System, accepted: &Accepted) -> anyhow::Result<Vec<String>> {
    let audits = sys.audits().await?;
    let status: HashMap<String, Status> = reservation_svc::audit::reservations(&audits.reservation)
        .await?
        .into_iter()
        .map(|r| (r.id.to_string(), r.status))
        .collect();
    let charged: HashMap<String, i64> = invariants::charged(&audits)
        .await?
        .into_iter()
        .map(|(user, points)| (user.0, points.value()))
        .collect();
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
            status.get(r),
            Some(Status::Expired) | Some(Status::AwaitingPayment) | None
        ) {
            lost.push(format!(
                "payment of {r} was accepted but is not reflected: {:?}",
                status.get(r)
            ));
        }
    }
    for r in &accepted.cancelled {
        if status.get(r) != Some(&Status::Cancelled) {
            lost.push(format!(
                "cancel of {r} was accepted but it is {:?}",
                status.get(r)
            ));
        }
    }
    // Exactly: a charge retried after a lost answer must not charge twice.
    for (user, points) in &accepted.charged {
        if charged.get(user).copied().unwrap_or(0) != *points {
            lost.push(format!(
                "{user} was charged {points} but the wallet shows {:?}",
                charged.get(user)
            ));
        }
    }
    Ok(lost)
}
