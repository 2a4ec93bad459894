//! Read-your-writes across services: an id one service has just handed out is never answered
//! 404 by another that has not caught up with it yet (503 with `Retry-After` at most, until it
//! has); and a show that has started can no longer be queued for or held.

use crate::helpers::on_system;
use anyhow::{Context as _, bail};
use e2e::system::Options;
use e2e::{Frontend, System, flows};
use harness::{Reply, eventually};
use serde_json::json;
use std::time::Duration;

/// Users who each hold a seat and at once read and pay for their reservation.
const USERS: usize = 200;
/// Of them at once.
const AT_ONCE: usize = 10;

#[tokio::test]
async fn ids_just_handed_out_are_never_unknown_and_started_shows_are_closed() {
    let opts = Options {
        queue_active_limit: USERS as u64 + 10,
        ..Options::default()
    };
    on_system(opts, async |sys| {
        queue_right_after_opening(sys).await?;
        read_and_pay_right_after_holding(sys).await?;
        started_show(sys).await
    })
    .await;
}

/// Asks with `ask` until it is answered other than "not yet" (503 or 429 with `Retry-After`,
/// as a client told to come back would); a 404 fails at once, naming `what`.
async fn answered(
    what: &str,
    ask: impl AsyncFn() -> anyhow::Result<Reply>,
) -> anyhow::Result<Reply> {
    eventually(what, flows::STEP, async || {
        let r = ask().await?;
        match r.status.as_u16() {
            404 => bail!("{what}: 404 for an id just handed out: {}", r.body),
            503 | 429 if r.retry_after.is_some() => Ok(None),
            503 | 429 => bail!("{what}: {} without Retry-After: {}", r.status, r.body),
            _ => Ok(Some(r)),
        }
    })
    .await
}

/// Schedules opened one after another, each queued for the moment concert-svc answers 201.
async fn queue_right_after_opening(sys: &System) -> anyhow::Result<()> {
    for i in 0..10 {
        let s = flows::open_schedule(sys, &format!("Fresh {i}"), &[("A1", 100)]).await?;
        let (token, path) = (
            sys.user_token("early"),
            format!("/schedules/{}/queue", s.schedule_id),
        );
        answered("queue right after opening", async || {
            sys.seat().post(&path, Some(&token), &json!({})).await
        })
        .await?
        .expect(201);
    }
    Ok(())
}

/// Each user holds a seat, then at once reads the reservation and pays for it.
async fn read_and_pay_right_after_holding(sys: &System) -> anyhow::Result<()> {
    let seats = flows::numbered_seats("R", USERS, 10);
    let s = flows::open_schedule(sys, "Read your writes", &seats).await?;
    let users: Vec<String> = (0..USERS).map(|i| format!("ryw{i}")).collect();
    for user in &users {
        flows::charge(sys, user, 10).await?;
    }
    let schedule = s.schedule_id.as_str();
    for chunk in users.chunks(AT_ONCE).zip(s.seat_ids.chunks(AT_ONCE)) {
        let runs = chunk.0.iter().zip(chunk.1).map(|(user, seat)| async move {
            let token = flows::join_queue(sys, user, schedule).await?;
            let token = token["token"].as_str().context("a queue token")?;
            let held = flows::hold(sys, user, schedule, token, std::slice::from_ref(seat)).await?;
            let id = held.expect(201).str("reservation_id");
            let (bearer, path) = (sys.user_token(user), format!("/reservations/{id}"));
            let read = answered("GET right after the hold", async || {
                sys.reservation().get(&path, Some(&bearer)).await
            })
            .await?;
            assert_eq!(read.expect(200).str("id"), id);
            answered("pay right after the hold", async || {
                flows::pay(sys, user, &id).await
            })
            .await?
            .expect(202);
            anyhow::Ok(id)
        });
        for id in futures::future::try_join_all(runs).await? {
            assert!(!id.is_empty());
        }
    }
    for user in users.iter().step_by(USERS / 10) {
        let listed = sys
            .reservation()
            .get("/reservations", Some(&sys.user_token(user)))
            .await?
            .expect(200);
        assert_eq!(listed.body.as_array().map(Vec::len), Some(1), "{user}");
    }
    Ok(())
}

/// A show starting in two seconds: queued for before, refused after.
async fn started_show(sys: &System) -> anyhow::Result<()> {
    let soon = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    let starts_at = soon.format(&time::format_description::well_known::Rfc3339)?;
    let s = flows::open_schedule_at(sys, "Tonight", &[("T1", 10)], &starts_at).await?;
    let token = flows::join_queue(sys, "late", &s.schedule_id).await?;
    assert_eq!(token["status"], "active", "{token}");
    let token = token["token"].as_str().context("a queue token")?.to_owned();
    eventually("the show to start", Duration::from_secs(10), async || {
        Ok((time::OffsetDateTime::now_utc() > soon).then_some(()))
    })
    .await?;
    flows::hold(sys, "late", &s.schedule_id, &token, &s.seat_ids)
        .await?
        .expect_problem(422, "schedule-past");
    sys.seat()
        .post(
            &format!("/schedules/{}/queue", s.schedule_id),
            Some(&sys.user_token("later")),
            &json!({}),
        )
        .await?
        .expect_problem(422, "schedule-past");
    let listed = sys
        .concert()
        .get(&format!("/concerts/{}/schedules", s.concert_id), None)
        .await?
        .expect(200);
    assert_eq!(listed.body, json!([]), "a started show is no date to offer");
    Ok(())
}
