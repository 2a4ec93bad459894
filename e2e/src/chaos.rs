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
    pub hold_ttl_secs: u64,
    /// How long the sagas may take to finish once the faults stop.
    pub converge_within: Duration,
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
            invariants::check(&sys.audits().await?).await?
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
