//! Payment failures, cancels and contention: compensations run and every service agrees.

use crate::helpers::on_system;
use e2e::eventually;
use e2e::flows;
use e2e::system::Options;
use e2e::{Frontend, System};

/// Several paths at once on one system, then the checker.
#[tokio::test]
async fn failed_payments_and_cancels_compensate_and_every_service_agrees() {
    on_system(Options::default(), async |sys| compensations(sys).await).await;
}

async fn compensations(sys: &System) -> anyhow::Result<()> {
    let s = flows::open_schedule(sys, "Compensations", &flows::numbered_seats("B", 6, 100)).await?;
    let seat = |i: usize| vec![s.seat_ids[i].clone()];

    // Not enough points: the payment fails, the seat is free again at once, nothing is taken.
    let poor = flows::holding(sys, "poor", 50, &s.schedule_id, &seat(0)).await?;
    flows::pay(sys, "poor", &poor).await?.expect(202);
    let r = flows::wait_reservation(sys, "poor", &poor, "failed").await?;
    assert_eq!(r["reason"], "insufficient_points");
    assert_eq!(flows::balance(sys, "poor").await?, 50);
    flows::wait_view(sys, &s.schedule_id, &seat(0), "available").await?;
    let next = flows::holding(sys, "next", 100, &s.schedule_id, &seat(0)).await?;
    flows::cancel(sys, "poor", &poor)
        .await?
        .expect_problem(409, "not-cancellable");

    // Cancel before paying: the seat is released, nothing was charged.
    flows::cancel(sys, "next", &next).await?.expect(202);
    flows::wait_reservation(sys, "next", &next, "cancelled").await?;
    flows::cancel(sys, "next", &next)
        .await?
        .expect_problem(409, "not-cancellable");
    flows::pay(sys, "next", &next)
        .await?
        .expect_problem(409, "not-awaiting-payment");
    flows::wait_view(sys, &s.schedule_id, &seat(0), "available").await?;

    // Cancel after confirmation: seats back, points back, exactly once.
    let fan = flows::holding(sys, "fan", 300, &s.schedule_id, &seat(1)).await?;
    flows::pay(sys, "fan", &fan).await?.expect(202);
    flows::wait_reservation(sys, "fan", &fan, "confirmed").await?;
    assert_eq!(flows::balance(sys, "fan").await?, 200);
    flows::cancel(sys, "fan", &fan).await?.expect(202);
    flows::cancel(sys, "fan", &fan)
        .await?
        .expect_problem(409, "not-cancellable");
    flows::wait_view(sys, &s.schedule_id, &seat(1), "available").await?;
    eventually("the refund", flows::STEP, async || {
        Ok((flows::balance(sys, "fan").await? == 300).then_some(()))
    })
    .await?;
    assert_eq!(
        flows::ledger_kinds(sys, "fan").await?,
        ["charge", "debit", "refund"]
    );

    // Contention: 40 users at once on one seat; exactly one wins, the rest get 409.
    let contested = seat(2);
    let schedule = s.schedule_id.as_str();
    let tokens = futures::future::try_join_all((0..40).map(|i| {
        let user = format!("rush{i}");
        async move {
            let t = flows::join_queue(sys, &user, schedule).await?;
            anyhow::Ok((user, t["token"].as_str().unwrap_or_default().to_owned()))
        }
    }))
    .await?;
    let answers = futures::future::try_join_all(
        tokens
            .iter()
            .map(|(user, t)| flows::hold(sys, user, &s.schedule_id, t, &contested)),
    )
    .await?;
    let won = answers.iter().filter(|a| a.is(201)).count();
    let winner = answers.iter().position(|a| a.is(201)).unwrap_or(0);
    let lost = answers.iter().filter(|a| a.is(409)).count();
    assert_eq!(
        (won, lost),
        (1, 39),
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );

    // A multi-seat hold is all or nothing: seat 3 stays free when seat 2 is taken.
    let (user, token) = &tokens[answers.iter().position(|a| a.is(409)).unwrap()];
    flows::hold(
        sys,
        user,
        &s.schedule_id,
        token,
        &[s.seat_ids[2].clone(), s.seat_ids[3].clone()],
    )
    .await?
    .expect_problem(409, "seat-unavailable");
    let partial = flows::hold(sys, user, &s.schedule_id, token, &seat(3))
        .await?
        .expect(201);
    // Neither of them pays: both cancel, so every saga ends.
    for (who, reply) in [(&tokens[winner].0, &answers[winner]), (user, &partial)] {
        let id = reply.str("reservation_id");
        flows::wait_reservation(sys, who, &id, "awaiting_payment").await?;
        flows::cancel(sys, who, &id).await?.expect(202);
    }

    // The live status stream: current status first, one event per change, ends when terminal.
    let watcher = flows::holding(sys, "watcher", 100, &s.schedule_id, &seat(4)).await?;
    let (opened, is_open) = tokio::sync::oneshot::channel();
    let stream = tokio::spawn(flows::status_events(
        sys.reservation.api(),
        sys.user_token("watcher"),
        watcher.clone(),
        opened,
    ));
    tokio::time::timeout(flows::STEP, is_open).await??;
    flows::pay(sys, "watcher", &watcher).await?.expect(202);
    let statuses = tokio::time::timeout(flows::STEP, stream).await???;
    assert_eq!(
        statuses.first().map(String::as_str),
        Some("awaiting_payment"),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.last().map(String::as_str),
        Some("confirmed"),
        "{statuses:?}"
    );
    let mut dedup = statuses.clone();
    dedup.dedup();
    assert_eq!(dedup, statuses, "one event per change");

    let report = sys.settle(flows::STEP).await?;
    assert_eq!(report.outcomes.get("cancelled"), Some(&4), "{report}");
    Ok(())
}
