//! flows: the steps of a reservation as a frontend takes them, over HTTP only; shared by the
//! end-to-end tests and the demo so both exercise the same path.

use crate::frontend::Frontend;
use anyhow::{Context as _, bail};
use harness::eventually;
use serde_json::{Value, json};
use std::time::Duration;

/// How long a step may wait for the saga's events to arrive somewhere.
pub const STEP: Duration = Duration::from_secs(20);

pub struct Schedule {
    pub concert_id: String,
    pub schedule_id: String,
    pub seat_ids: Vec<String>,
    /// When the show starts (RFC 3339), as it was opened.
    pub starts_at: String,
}

/// `n` seats labelled `<prefix>1…<prefix>n`, each at `price`.
pub fn numbered_seats(prefix: &str, n: usize, price: i64) -> Vec<(String, i64)> {
    (1..=n).map(|i| (format!("{prefix}{i}"), price)).collect()
}

/// Registers a concert and opens a schedule with `seats` (label, price), as the admin; its show
/// starts in ninety days.
pub async fn open_schedule(
    sys: &impl Frontend,
    title: &str,
    seats: &[(impl AsRef<str>, i64)],
) -> anyhow::Result<Schedule> {
    open_schedule_at(sys, title, seats, &harness::upcoming()).await
}

/// Registers a concert and opens a schedule with `seats` whose show starts at `starts_at`
/// (RFC 3339).
pub async fn open_schedule_at(
    sys: &impl Frontend,
    title: &str,
    seats: &[(impl AsRef<str>, i64)],
    starts_at: &str,
) -> anyhow::Result<Schedule> {
    let admin = sys.admin_token();
    let api = sys.concert();
    let concert = api
        .post("/concerts", Some(&admin), &json!({"title": title}))
        .await?;
    if !concert.is(201) {
        bail!("register concert: {} {}", concert.status, concert.body);
    }
    let concert_id = concert.str("id");
    let seats: Vec<Value> = seats
        .iter()
        .map(|(label, price)| json!({"label": label.as_ref(), "grade": "R", "price": price}))
        .collect();
    let schedule = api
        .post(
            &format!("/concerts/{concert_id}/schedules"),
            Some(&admin),
            &json!({"starts_at": starts_at, "seats": seats}),
        )
        .await?;
    if !schedule.is(201) {
        bail!("open schedule: {} {}", schedule.status, schedule.body);
    }
    let seat_ids = schedule.body["seats"]
        .as_array()
        .context("seats in the answer")?
        .iter()
        .map(|s| s["seat_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    Ok(Schedule {
        concert_id,
        schedule_id: schedule.str("id"),
        seat_ids,
        starts_at: starts_at.to_owned(),
    })
}

pub async fn charge(sys: &impl Frontend, user: &str, amount: i64) -> anyhow::Result<i64> {
    let r = sys
        .payment()
        .post(
            "/wallet/charge",
            Some(&sys.user_token(user)),
            &json!({"amount": amount}),
        )
        .await?;
    if !r.is(200) {
        bail!("charge: {} {}", r.status, r.body);
    }
    r.body["balance"].as_i64().context("balance")
}

pub async fn balance(sys: &impl Frontend, user: &str) -> anyhow::Result<i64> {
    let r = sys
        .payment()
        .get("/wallet", Some(&sys.user_token(user)))
        .await?;
    r.body["balance"].as_i64().context("balance")
}

/// The kinds of the user's ledger entries, oldest first (`charge`, `debit`, `refund`).
pub async fn ledger_kinds(sys: &impl Frontend, user: &str) -> anyhow::Result<Vec<String>> {
    let r = sys
        .payment()
        .get("/wallet/ledger", Some(&sys.user_token(user)))
        .await?;
    if !r.is(200) {
        bail!("ledger: {} {}", r.status, r.body);
    }
    Ok(r.body
        .as_array()
        .context("a list of entries")?
        .iter()
        .filter_map(|e| e["kind"].as_str().map(str::to_owned))
        .collect())
}

/// Takes a queue token, waiting while seat-svc answers 503 (its inventory is still being built
/// from the schedule's event); returns the answer.
pub async fn join_queue(sys: &impl Frontend, user: &str, schedule: &str) -> anyhow::Result<Value> {
    let token = sys.user_token(user);
    let api = sys.seat();
    eventually("a queue token", STEP, async || {
        let r = api
            .post(
                &format!("/schedules/{schedule}/queue"),
                Some(&token),
                &json!({}),
            )
            .await?;
        match r.status.as_u16() {
            200 | 201 => Ok(Some(r.body)),
            503 => Ok(None),
            _ => bail!("join queue: {} {}", r.status, r.body),
        }
    })
    .await
}

/// Holds seats with an active queue token; returns the raw reply (201, 409, …).
pub async fn hold(
    sys: &impl Frontend,
    user: &str,
    schedule: &str,
    queue_token: &str,
    seat_ids: &[String],
) -> anyhow::Result<harness::Reply> {
    sys.seat()
        .send(
            reqwest::Method::POST,
            &format!("/schedules/{schedule}/holds"),
            Some(&sys.user_token(user)),
            &[("Queue-Token", queue_token)],
            Some(harness::RawBody::Json(&json!({"seat_ids": seat_ids}))),
        )
        .await
}

/// Waits until the user's reservation shows `status` at reservation-svc; returns it.
pub async fn wait_reservation(
    sys: &impl Frontend,
    user: &str,
    id: &str,
    status: &str,
) -> anyhow::Result<Value> {
    let token = sys.user_token(user);
    let api = sys.reservation();
    eventually(
        &format!("reservation {id} to be {status}"),
        STEP,
        async || {
            let r = api
                .get(&format!("/reservations/{id}"), Some(&token))
                .await?;
            Ok((r.is(200) && r.str("status") == status).then_some(r.body))
        },
    )
    .await
}

pub async fn pay(sys: &impl Frontend, user: &str, id: &str) -> anyhow::Result<harness::Reply> {
    sys.reservation()
        .post(
            &format!("/reservations/{id}/payment"),
            Some(&sys.user_token(user)),
            &json!({}),
        )
        .await
}

/// Seat statuses of the schedule as the availability view shows them.
pub async fn view_statuses(
    sys: &impl Frontend,
    schedule: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let r = sys
        .concert()
        .get(&format!("/schedules/{schedule}/seats"), None)
        .await?;
    if !r.is(200) {
        bail!("seats: {} {}", r.status, r.body);
    }
    Ok(r.body
        .as_array()
        .context("a list of seats")?
        .iter()
        .map(|s| {
            (
                s["seat_id"].as_str().unwrap_or_default().to_owned(),
                s["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect())
}

/// Waits until the view shows each of `seats` with `status`.
pub async fn wait_view(
    sys: &impl Frontend,
    schedule: &str,
    seats: &[String],
    status: &str,
) -> anyhow::Result<()> {
    eventually(
        &format!("the view to show {seats:?} {status}"),
        STEP,
        async || {
            let all = view_statuses(sys, schedule).await?;
            Ok(seats
                .iter()
                .all(|id| all.iter().any(|(s, st)| s == id && st == status))
                .then_some(()))
        },
    )
    .await
}

pub async fn cancel(sys: &impl Frontend, user: &str, id: &str) -> anyhow::Result<harness::Reply> {
    sys.reservation()
        .post(
            &format!("/reservations/{id}/cancel"),
            Some(&sys.user_token(user)),
            &json!({}),
        )
        .await
}

/// A user with `points` who takes a queue token and holds `seats`; answers the reservation id
/// once reservation-svc knows it.
pub async fn holding(
    sys: &impl Frontend,
    user: &str,
    points: i64,
    schedule: &str,
    seats: &[String],
) -> anyhow::Result<String> {
    if points > 0 {
        charge(sys, user, points).await?;
    }
    let token = join_queue(sys, user, schedule).await?;
    let token = token["token"].as_str().context("a token")?.to_owned();
    let held = hold(sys, user, schedule, &token, seats).await?;
    if !held.is(201) {
        bail!("hold for {user}: {} {}", held.status, held.body);
    }
    let id = held.str("reservation_id");
    wait_reservation(sys, user, &id, "awaiting_payment").await?;
    Ok(id)
}

/// Reads a reservation's live status stream to its end; answers the statuses in order. `opened`
/// is told once the first event (the current status) has arrived.
pub async fn status_events(
    api: harness::Api,
    token: String,
    id: String,
    opened: tokio::sync::oneshot::Sender<()>,
) -> anyhow::Result<Vec<String>> {
    let resp = api
        .get_streaming(&format!("/reservations/{id}/events"), &token)
        .await?;
    read_statuses(resp, opened).await
}

/// Reads a live status stream already opened to its end; answers the statuses in order.
pub async fn read_statuses(
    mut resp: reqwest::Response,
    opened: tokio::sync::oneshot::Sender<()>,
) -> anyhow::Result<Vec<String>> {
    if resp.status() != 200 {
        bail!("status stream: {}", resp.status());
    }
    let mut opened = Some(opened);
    let (mut buffer, mut statuses) = (String::new(), Vec::new());
    while let Some(chunk) = resp.chunk().await? {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            for data in frame.lines().filter_map(|l| l.strip_prefix("data:")) {
                let v: Value = serde_json::from_str(data.trim())?;
                statuses.push(v["status"].as_str().unwrap_or_default().to_owned());
                if let Some(tell) = opened.take() {
                    let _ = tell.send(());
                }
            }
        }
    }
    Ok(statuses)
}

/// A small sale: `users` users at once, each charging points (every fourth too few), taking a
/// queue token and trying to hold one of the schedule's seats; winners then pay, cancel, or pay
/// and cancel after confirmation, in turn. Every saga it starts ends in a terminal state.
pub async fn busy_run(
    sys: &impl Frontend,
    schedule: &Schedule,
    users: usize,
) -> anyhow::Result<()> {
    let runs = (0..users).map(|i| async move {
        let user = format!("buyer{i}");
        charge(sys, &user, if i % 4 == 0 { 50 } else { 500 }).await?;
        let token = join_queue(sys, &user, &schedule.schedule_id).await?;
        let token = token["token"].as_str().unwrap_or_default().to_owned();
        let seat = vec![schedule.seat_ids[i % schedule.seat_ids.len()].clone()];
        let held = hold(sys, &user, &schedule.schedule_id, &token, &seat).await?;
        if held.is(409) {
            return anyhow::Ok(());
        }
        if !held.is(201) {
            bail!("hold: {} {}", held.status, held.body);
        }
        let id = held.str("reservation_id");
        wait_reservation(sys, &user, &id, "awaiting_payment").await?;
        match i % 3 {
            0 => {
                pay(sys, &user, &id).await?;
            }
            1 => {
                cancel(sys, &user, &id).await?;
            }
            _ => {
                pay(sys, &user, &id).await?;
                if i % 4 != 0 {
                    wait_reservation(sys, &user, &id, "confirmed").await?;
                    cancel(sys, &user, &id).await?;
                }
            }
        }
        Ok(())
    });
    futures::future::try_join_all(runs).await?;
    Ok(())
}
