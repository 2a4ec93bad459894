//! NATS or a service goes away: commands are still accepted, nothing is lost or published twice,
//! and what was missed is replayed.

use crate::helpers::on_system;
use async_nats::jetstream;
use e2e::flows;
use e2e::system::Options;
use e2e::{Frontend, System, eventually};
use harness::stream_messages;

#[tokio::test]
async fn a_payment_accepted_while_nats_is_down_survives_a_kill_and_is_published_once() {
    on_system(Options::default(), async |sys| {
        pay_through_an_outage(sys).await
    })
    .await;
}

async fn pay_through_an_outage(sys: &mut System) -> anyhow::Result<()> {
    let s = flows::open_schedule(sys, "Outage", &[("A1", 100)]).await?;
    flows::charge(sys, "ann", 500).await?;
    let token = flows::join_queue(sys, "ann", &s.schedule_id).await?;
    let held = flows::hold(
        sys,
        "ann",
        &s.schedule_id,
        token["token"].as_str().unwrap(),
        &s.seat_ids,
    )
    .await?
    .expect(201);
    let r = held.str("reservation_id");
    flows::wait_reservation(sys, "ann", &r, "awaiting_payment").await?;

    // NATS goes away; the pay command is still accepted: its event waits in the outbox.
    sys.nats.kill();
    flows::pay(sys, "ann", &r).await?.expect(202);
    let ready = sys.reservation.api().get("/readyz", None).await?;
    assert!(ready.is(503), "readyz must report NATS down: {ready:?}");
    sys.reservation
        .api()
        .get("/healthz", None)
        .await?
        .expect(200);
    // The process dies before it could publish.
    sys.reservation.kill();

    sys.nats.restart()?;
    sys.reservation.restart()?;
    flows::wait_reservation(sys, "ann", &r, "confirmed").await?;
    assert_eq!(flows::balance(sys, "ann").await?, 400);

    let js = jetstream::new(async_nats::connect(sys.nats.url()).await?);
    let subject = format!("reservation.payment_requested.{r}");
    let stream = js.get_stream("RESERVATION").await?;
    let info = stream.info_with_subjects(&subject).await?;
    use futures::TryStreamExt;
    let counts: Vec<(String, usize)> = info.try_collect().await?;
    assert_eq!(counts, vec![(subject, 1)], "published exactly once");
    sys.settle(flows::STEP).await?;
    Ok(())
}

/// NATS goes away: charge, hold and pay are still accepted, readiness says why, a service even
/// starts without it; when NATS is back everything is published and the sagas complete.
#[tokio::test]
async fn commands_are_accepted_while_nats_is_down_and_complete_when_it_is_back() {
    on_system(Options::default(), async |sys| nats_outage(sys).await).await;
}

async fn nats_outage(sys: &mut System) -> anyhow::Result<()> {
    let s = flows::open_schedule(sys, "Outage", &[("N1", 100), ("N2", 100)]).await?;
    let before =
        flows::holding(sys, "early", 100, &s.schedule_id, &[s.seat_ids[0].clone()]).await?;
    let token = flows::join_queue(sys, "later", &s.schedule_id).await?;

    sys.nats.kill();
    assert_eq!(flows::charge(sys, "later", 100).await?, 100);
    let held = flows::hold(
        sys,
        "later",
        &s.schedule_id,
        token["token"].as_str().unwrap(),
        &[s.seat_ids[1].clone()],
    )
    .await?
    .expect(201);
    flows::pay(sys, "early", &before).await?.expect(202);
    for p in sys.services() {
        let ready = p.api().get("/readyz", None).await?;
        assert!(
            ready.is(503) && ready.str("detail").contains("NATS down"),
            "{}: {ready:?}",
            p.name
        );
        p.api().get("/healthz", None).await?.expect(200);
    }
    // A service that starts now starts without NATS.
    sys.payment.restart()?;
    assert!(sys.payment.api().get("/readyz", None).await?.is(503));

    sys.nats.restart()?;
    for p in sys.services() {
        sys.wait_ready(p).await?;
    }
    let later = held.str("reservation_id");
    flows::wait_reservation(sys, "later", &later, "awaiting_payment").await?;
    flows::pay(sys, "later", &later).await?.expect(202);
    flows::wait_reservation(sys, "early", &before, "confirmed").await?;
    flows::wait_reservation(sys, "later", &later, "confirmed").await?;
    let report = sys.settle(flows::STEP).await?;
    assert_eq!(report.outcomes.get("confirmed"), Some(&2), "{report}");
    Ok(())
}

/// payment-svc is down: the rest keeps answering, paying is accepted and waits; when it comes
/// back it replays what it missed from its durable consumer and the saga completes.
#[tokio::test]
async fn a_stopped_service_catches_up_on_what_it_missed() {
    on_system(Options::default(), async |sys| outage_replay(sys).await).await;
}

async fn outage_replay(sys: &mut System) -> anyhow::Result<()> {
    let s = flows::open_schedule(sys, "Replay", &[("O1", 100), ("O2", 100)]).await?;
    let a = flows::holding(sys, "ola", 100, &s.schedule_id, &[s.seat_ids[0].clone()]).await?;
    let b = flows::holding(sys, "oli", 100, &s.schedule_id, &[s.seat_ids[1].clone()]).await?;
    sys.payment.kill();
    sys.let_go("payment-svc").await?;
    flows::pay(sys, "ola", &a).await?.expect(202);
    flows::pay(sys, "oli", &b).await?.expect(202);
    sys.concert.api().get("/concerts", None).await?.expect(200);
    // Nothing can move them while payment-svc is away: they wait, paid for but not charged.
    sys.reservation
        .api()
        .get(&format!("/reservations/{a}"), Some(&sys.user_token("ola")))
        .await?
        .expect(200);
    assert_eq!(
        flows::wait_reservation(sys, "ola", &a, "payment_pending").await?["status"],
        "payment_pending"
    );
    sys.payment.restart()?;
    flows::wait_reservation(sys, "ola", &a, "confirmed").await?;
    flows::wait_reservation(sys, "oli", &b, "confirmed").await?;
    assert_eq!(flows::balance(sys, "ola").await?, 0);
    sys.settle(flows::STEP).await?;
    Ok(())
}

/// payment-svc's database goes away while users pay. Its consumer waits for the database instead
/// of giving up: nothing is dead-lettered, and every saga completes once the database is back.
/// (On main the batch was retried `CONSUMER_MAX_DELIVER` times and then every payment request
/// in flight went to the DLQ: points never taken, reservations `payment_pending` for good.)
#[tokio::test]
async fn a_database_outage_pauses_consumers_and_nothing_is_dead_lettered() {
    let opts = Options {
        // Two failing deliveries would dead-letter an event on main.
        max_deliver: 2,
        outages: true,
        ..Default::default()
    };
    on_system(opts, async |sys| database_outage(sys).await).await;
}

async fn database_outage(sys: &mut System) -> anyhow::Result<()> {
    use std::time::{Duration, Instant};

    let seats = flows::numbered_seats("D", 6, 100);
    let s = flows::open_schedule(sys, "Outage", &seats).await?;
    let mut holds = Vec::new();
    for (i, seat) in s.seat_ids.iter().enumerate() {
        let user = format!("payer{i}");
        let id =
            flows::holding(sys, &user, 100, &s.schedule_id, std::slice::from_ref(seat)).await?;
        holds.push((user, id));
    }

    let payment = e2e::process::SERVICES[3];
    let cut = sys
        .breaker(payment)
        .expect("outages were asked for")
        .cut()
        .await?;
    for (user, id) in &holds {
        flows::pay(sys, user, id).await?.expect(202);
    }
    // The outage lasts until payment-svc's consumer has found the database down, paused, and
    // found it still down twice more (on SQLite each try waits out the writer's 10 s busy
    // timeout): longer than main took to dead-letter every payment request in flight.
    let metrics = sys.payment.api();
    eventually(
        "payment-svc to wait for its database",
        Duration::from_secs(90),
        async || {
            let text = metrics.get("/metrics", None).await?.body;
            let waits: f64 = text
                .as_str()
                .unwrap_or_default()
                .lines()
                .filter(|l| l.starts_with("consumer_database_waits_total"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum();
            Ok((waits >= 2.0).then_some(()))
        },
    )
    .await?;
    let ready = sys.payment.api().get("/readyz", None).await?;
    assert!(
        ready.is(503) && ready.str("detail").contains("consumer(s) restarting"),
        "payment-svc says it waits: {ready:?}"
    );
    let restored = Instant::now();
    drop(cut);

    for (user, id) in &holds {
        flows::wait_reservation(sys, user, id, "confirmed").await?;
    }
    eprintln!(
        "every saga confirmed {:.1} s after the database came back",
        restored.elapsed().as_secs_f64()
    );
    let js = jetstream::new(async_nats::connect(sys.nats.url()).await?);
    assert_eq!(
        stream_messages(&js, "DLQ").await?,
        0,
        "nothing dead-lettered"
    );
    sys.settle(flows::STEP).await?;
    Ok(())
}
