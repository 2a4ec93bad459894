//! sale: a flash sale's users, each a task that behaves like a frontend retrying through
//! errors: charge points, take a queue token, try to hold a seat, then pay, cancel, let the hold
//! expire, or pay and cancel once confirmed, by a seeded plan. Every command the system accepted
//! (a 2xx) is remembered, so a run can check that each had its effect.

use crate::frontend::{Client, Frontend};
use anyhow::{Context as _, bail};
use harness::Api;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
) -> anyhow::Result<harness::Reply> {
    loop {
        let raw = body.map(harness::RawBody::Json);
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
    // Retried through kills: the key makes a charge whose answer was lost charge once.
    let key = uuid::Uuid::new_v4().to_string();
    let charged = call(
        &c.payment,
        Method::POST,
        "/wallet/charge",
        &token,
        &[("Idempotency-Key", key.as_str())],
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

    /// The reservations of the holds accepted so far.
    pub fn held(&self) -> Vec<String> {
        self.accepted.lock().unwrap().holds.clone()
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
