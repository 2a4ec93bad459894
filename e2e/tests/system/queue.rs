//! The waiting queue: admission limit, positions, tokens bound to user and schedule.

use crate::helpers::on_system;
use e2e::eventually;
use e2e::flows;
use e2e::system::Options;
use e2e::{Frontend, System};

/// The waiting queue: an admission limit, positions that move, tokens bound to their user and
/// schedule, and tokens that leave when their hold ends or when they sit idle.
#[tokio::test]
async fn the_queue_admits_in_order_as_tokens_leave() {
    let opts = Options {
        queue_active_limit: 2,
        queue_token_ttl_secs: 2,
        ..Default::default()
    };
    on_system(opts, async |sys| queue(sys).await).await;
}

async fn queue(sys: &System) -> anyhow::Result<()> {
    let s = flows::open_schedule(sys, "Queue", &[("D1", 100), ("D2", 100)]).await?;
    let other = flows::open_schedule(sys, "Elsewhere", &[("E1", 100)]).await?;
    flows::join_queue(sys, "eve", &other.schedule_id).await?; // its inventory is built
    let join = |user: &'static str| flows::join_queue(sys, user, &s.schedule_id);
    let (a, b, c, d) = (
        join("amy").await?,
        join("bob").await?,
        join("cyd").await?,
        join("dan").await?,
    );
    let status = |v: &serde_json::Value| {
        (
            v["status"].as_str().unwrap_or_default().to_owned(),
            v["position"].as_i64().unwrap_or(-1),
        )
    };
    assert_eq!(status(&a), ("active".into(), 0));
    assert_eq!(status(&b), ("active".into(), 0));
    assert_eq!(status(&c), ("waiting".into(), 1));
    assert_eq!(status(&d), ("waiting".into(), 2));
    let token = |v: &serde_json::Value| v["token"].as_str().unwrap_or_default().to_owned();
    let poll = async |user: &str, t: &str| -> anyhow::Result<(String, i64)> {
        let r = sys
            .seat
            .api()
            .get(&format!("/queue/{t}"), Some(&sys.user_token(user)))
            .await?;
        Ok(status(&r.body))
    };

    // Someone else's token, a waiting token, a token for another schedule: all 403.
    flows::hold(
        sys,
        "bob",
        &s.schedule_id,
        &token(&a),
        &[s.seat_ids[0].clone()],
    )
    .await?
    .expect_problem(403, "token-not-yours");
    flows::hold(
        sys,
        "cyd",
        &s.schedule_id,
        &token(&c),
        &[s.seat_ids[0].clone()],
    )
    .await?
    .expect_problem(403, "token-not-active");
    flows::hold(
        sys,
        "amy",
        &other.schedule_id,
        &token(&a),
        &[other.seat_ids[0].clone()],
    )
    .await?
    .expect_problem(403, "token-not-yours");

    // amy holds and pays: her token is done and cyd, first in line, is admitted; dan moves up.
    flows::charge(sys, "amy", 100).await?;
    let held = flows::hold(
        sys,
        "amy",
        &s.schedule_id,
        &token(&a),
        &[s.seat_ids[0].clone()],
    )
    .await?
    .expect(201);
    let r = held.str("reservation_id");
    // One live hold per token.
    flows::hold(
        sys,
        "amy",
        &s.schedule_id,
        &token(&a),
        &[s.seat_ids[1].clone()],
    )
    .await?
    .expect_problem(409, "already-holding");
    flows::wait_reservation(sys, "amy", &r, "awaiting_payment").await?;
    flows::pay(sys, "amy", &r).await?.expect(202);
    flows::wait_reservation(sys, "amy", &r, "confirmed").await?;
    eventually("cyd to be admitted", flows::STEP, async || {
        Ok((poll("cyd", &token(&c)).await?.0 == "active").then_some(()))
    })
    .await?;
    assert_eq!(poll("amy", &token(&a)).await?, ("done".into(), 0));
    assert_eq!(poll("dan", &token(&d)).await?, ("waiting".into(), 1));

    // bob never uses his token: it expires after its time to live and dan gets his place.
    eventually("bob's token to expire", flows::STEP, async || {
        // cyd and dan keep their tokens alive by asking; bob's goes idle.
        poll("cyd", &token(&c)).await?;
        let dan = poll("dan", &token(&d)).await?;
        Ok((dan.0 == "active").then_some(()))
    })
    .await?;
    flows::hold(
        sys,
        "bob",
        &s.schedule_id,
        &token(&b),
        &[s.seat_ids[1].clone()],
    )
    .await?
    .expect_problem(403, "token-not-active");
    // And bob may line up again, behind the two active ones.
    let again = join("bob").await?;
    assert_ne!(token(&again), token(&b));
    assert_eq!(status(&again), ("waiting".into(), 1));
    Ok(())
}
