//! The whole system, end to end: a real nats-server and the four service binaries as separate
//! processes, driven over HTTP only.

use async_nats::jetstream;
use e2e::eventually;
use e2e::flows;
use e2e::process::Options;
use e2e::{Frontend, System};
use platform::harness::stream_messages;
use serde_json::json;

/// Starts a whole system with `opts`, runs `scenario` on it, and on failure shows the end of
/// every service's log with the error.
async fn on_system(opts: Options, scenario: impl AsyncFnOnce(&mut System) -> anyhow::Result<()>) {
    let mut sys = System::start_with(opts).await.expect("start the system");
    if let Err(e) = scenario(&mut sys).await {
        panic!("{e:#}\n{}", sys.logs_tail(30));
    }
}

#[tokio::test]
async fn a_reservation_goes_from_hold_to_confirmed_across_all_four_services() {
    on_system(Options::default(), async |sys| happy_path(sys).await).await;
}

async fn happy_path(sys: &System) -> anyhow::Result<()> {
    // Admin: a concert and a schedule of four 100-point seats.
    let s = flows::open_schedule(
        sys,
        "Night Songs",
        &[("A1", 100), ("A2", 100), ("A3", 100), ("A4", 100)],
    )
    .await?;
    assert_eq!(s.seat_ids.len(), 4);
    let concerts = sys.concert.api().get("/concerts", None).await?.expect(200);
    assert!(
        concerts
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == s.concert_id.as_str())
    );
    flows::wait_view(sys, &s.schedule_id, &s.seat_ids, "available").await?;

    // The user: 1000 points, a queue token (admitted at once), two seats held.
    assert_eq!(flows::charge(sys, "alice", 1000).await?, 1000);
    let token = flows::join_queue(sys, "alice", &s.schedule_id).await?;
    assert_eq!(token["status"], "active", "{token}");
    assert_eq!(token["position"], 0);
    let queue_token = token["token"].as_str().unwrap().to_owned();
    let status = sys
        .seat
        .api()
        .get(
            &format!("/queue/{queue_token}"),
            Some(&sys.user_token("alice")),
        )
        .await?
        .expect(200);
    assert_eq!(status.body["status"], "active");

    let seats = s.seat_ids[..2].to_vec();
    let held = flows::hold(sys, "alice", &s.schedule_id, &queue_token, &seats)
        .await?
        .expect(201);
    assert_eq!(held.body["amount"], 200);
    let reservation = held.str("reservation_id");

    // reservation-svc learns of it from seat.held; the view shows the seats held.
    let r = flows::wait_reservation(sys, "alice", &reservation, "awaiting_payment").await?;
    assert_eq!(r["amount"], 200);
    assert_eq!(r["seat_ids"].as_array().unwrap().len(), 2);
    flows::wait_view(sys, &s.schedule_id, &seats, "held").await?;

    // Someone else's reservation is not theirs to see: 404, not 403.
    sys.reservation
        .api()
        .get(
            &format!("/reservations/{reservation}"),
            Some(&sys.user_token("mallory")),
        )
        .await?
        .expect(404);

    // Pay: accepted at once, confirmed when the saga is through.
    let paid = flows::pay(sys, "alice", &reservation).await?.expect(202);
    assert_eq!(paid.body["status"], "payment_pending");
    flows::wait_reservation(sys, "alice", &reservation, "confirmed").await?;
    flows::pay(sys, "alice", &reservation).await?.expect(409);

    // Every service agrees: points debited once, seats sold in the view.
    assert_eq!(flows::balance(sys, "alice").await?, 800);
    let ledger = sys
        .payment
        .api()
        .get("/wallet/ledger", Some(&sys.user_token("alice")))
        .await?
        .expect(200);
    let entries = ledger.body.as_array().unwrap();
    assert_eq!(entries.len(), 2, "{}", ledger.body);
    assert_eq!(
        (entries[0]["kind"].as_str(), entries[0]["amount"].as_i64()),
        (Some("charge"), Some(1000))
    );
    assert_eq!(
        (entries[1]["kind"].as_str(), entries[1]["amount"].as_i64()),
        (Some("debit"), Some(200))
    );
    assert_eq!(entries[1]["reservation_id"], reservation.as_str());
    assert_eq!(entries[1]["balance_after"], 800);
    flows::wait_view(sys, &s.schedule_id, &seats, "sold").await?;
    let statuses = flows::view_statuses(sys, &s.schedule_id).await?;
    assert_eq!(
        statuses.iter().filter(|(_, st)| st == "available").count(),
        2
    );
    let schedules = sys
        .concert
        .api()
        .get(&format!("/concerts/{}/schedules", s.concert_id), None)
        .await?
        .expect(200);
    assert_eq!(schedules.body[0]["available_seats"], 2);
    let mine = sys
        .reservation
        .api()
        .get("/reservations", Some(&sys.user_token("alice")))
        .await?
        .expect(200);
    assert_eq!(mine.body.as_array().unwrap().len(), 1);

    // On the bus: every event of the saga carries the reservation id as its correlation id,
    // and each names the event that caused it.
    let js = jetstream::new(async_nats::connect(sys.nats.url()).await?);
    let chain = [
        ("SEAT", "seat.held", "seat-svc"),
        (
            "RESERVATION",
            "reservation.payment_requested",
            "reservation-svc",
        ),
        ("PAYMENT", "payment.completed", "payment-svc"),
        ("SEAT", "seat.sold", "seat-svc"),
        ("RESERVATION", "reservation.confirmed", "reservation-svc"),
    ];
    let mut previous_id: Option<String> = None;
    for (stream, prefix, source) in chain {
        let subject = format!("{prefix}.{reservation}");
        let msg = js
            .get_stream(stream)
            .await?
            .get_last_raw_message_by_subject(&subject)
            .await
            .map_err(|e| anyhow::anyhow!("{subject}: {e}"))?;
        let h = |k: &str| {
            msg.headers
                .get(k)
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default()
        };
        assert_eq!(h("ce-correlationid"), reservation, "{subject}");
        assert_eq!(h("ce-type"), format!("{prefix}.v1"));
        assert_eq!(h("ce-source"), source);
        assert_eq!(h("ce-id"), h("Nats-Msg-Id"));
        // The pay command starts a new causal chain; the rest follow one from another.
        if prefix != "reservation.payment_requested"
            && let Some(prev) = &previous_id
        {
            assert_eq!(&h("ce-causationid"), prev, "{subject} names its cause");
        }
        previous_id = Some(h("ce-id"));
    }
    let report = sys.settle(flows::STEP).await?;
    assert_eq!(report.outcomes.get("confirmed"), Some(&1), "{report}");
    Ok(())
}

#[tokio::test]
async fn identity_is_checked_and_errors_are_problem_json() {
    let sys = System::start().await.expect("start the system");
    let concert = sys.concert.api();
    let no_token = concert
        .post("/concerts", None, &json!({"title": "x"}))
        .await
        .unwrap();
    assert!(no_token.is(401));
    assert_eq!(no_token.content_type, "application/problem+json");
    let bad = concert
        .post("/concerts", Some("not-a-jwt"), &json!({"title": "x"}))
        .await
        .unwrap();
    assert!(bad.is(401));
    let user = concert
        .post(
            "/concerts",
            Some(&sys.user_token("bob")),
            &json!({"title": "x"}),
        )
        .await
        .unwrap();
    assert!(user.is(403), "{:?}", user);
    // Every service answers unknown routes and bad tokens the same way.
    for p in sys.services() {
        let r = p.api().get("/no/such/route", None).await.unwrap();
        assert!(
            r.is(404) && r.content_type == "application/problem+json",
            "{}: {r:?}",
            p.name
        );
        p.api().get("/healthz", None).await.unwrap().expect(200);
        let m = p.api().get("/metrics", None).await.unwrap().expect(200);
        let text = m.body.as_str().unwrap_or_default();
        assert!(text.contains("http_requests_total"), "{}: {text}", p.name);
    }
    let wallet = sys
        .payment
        .api()
        .get("/wallet", Some("Bearer-less"))
        .await
        .unwrap();
    assert!(wallet.is(401));
}

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
    flows::cancel(sys, "poor", &poor).await?.expect(409);

    // Cancel before paying: the seat is released, nothing was charged.
    flows::cancel(sys, "next", &next).await?.expect(202);
    flows::wait_reservation(sys, "next", &next, "cancelled").await?;
    flows::cancel(sys, "next", &next).await?.expect(409);
    flows::pay(sys, "next", &next).await?.expect(409);
    flows::wait_view(sys, &s.schedule_id, &seat(0), "available").await?;

    // Cancel after confirmation: seats back, points back, exactly once.
    let fan = flows::holding(sys, "fan", 300, &s.schedule_id, &seat(1)).await?;
    flows::pay(sys, "fan", &fan).await?.expect(202);
    flows::wait_reservation(sys, "fan", &fan, "confirmed").await?;
    assert_eq!(flows::balance(sys, "fan").await?, 200);
    flows::cancel(sys, "fan", &fan).await?.expect(202);
    flows::cancel(sys, "fan", &fan).await?.expect(409);
    flows::wait_view(sys, &s.schedule_id, &seat(1), "available").await?;
    eventually("the refund", flows::STEP, async || {
        Ok((flows::balance(sys, "fan").await? == 300).then_some(()))
    })
    .await?;
    let ledger = sys
        .payment
        .api()
        .get("/wallet/ledger", Some(&sys.user_token("fan")))
        .await?
        .expect(200);
    let kinds: Vec<&str> = ledger
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["charge", "debit", "refund"]);

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
    .expect(409);
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

/// Short holds: an unpaid hold expires; a payment that completes after expiry is refunded; a
/// cancel while the payment is pending (payment-svc down) refunds once it is back.
#[tokio::test]
async fn expired_holds_release_their_seats_and_late_payments_are_refunded() {
    let opts = Options {
        hold_ttl_secs: 1,
        ..Default::default()
    };
    on_system(opts, async |sys| expiry(sys).await).await;
}

async fn expiry(sys: &mut System) -> anyhow::Result<()> {
    let s =
        flows::open_schedule(sys, "Short holds", &[("C1", 100), ("C2", 100), ("C3", 100)]).await?;
    let seat = |i: usize| vec![s.seat_ids[i].clone()];

    // Nobody pays, and seat-svc is down when the deadline passes: the deadline is in its
    // database, so the hold expires once it is back. Paying afterwards is refused.
    let idle = flows::holding(sys, "idle", 100, &s.schedule_id, &seat(0)).await?;
    sys.seat.kill();
    let deadline =
        flows::wait_reservation(sys, "idle", &idle, "awaiting_payment").await?["expires_at"]
            .as_str()
            .map(|t| time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339))
            .transpose()?
            .expect("a deadline");
    eventually("the deadline to pass", flows::STEP, async || {
        Ok((time::OffsetDateTime::now_utc() > deadline).then_some(()))
    })
    .await?;
    flows::wait_reservation(sys, "idle", &idle, "awaiting_payment").await?;
    sys.seat.restart()?;
    flows::wait_reservation(sys, "idle", &idle, "expired").await?;
    flows::pay(sys, "idle", &idle).await?.expect(409);
    flows::cancel(sys, "idle", &idle).await?.expect(409);
    flows::wait_view(sys, &s.schedule_id, &seat(0), "available").await?;
    assert_eq!(flows::balance(sys, "idle").await?, 100);

    // From here on two seat-svc replicas share the work (and the expiry scans).
    let _replica = sys.seat.replica(2)?;

    // payment-svc is down while two users pay; one of them cancels meanwhile.
    let late = flows::holding(sys, "late", 100, &s.schedule_id, &seat(1)).await?;
    let quitter = flows::holding(sys, "quitter", 100, &s.schedule_id, &seat(2)).await?;
    sys.payment.kill();
    flows::pay(sys, "late", &late).await?.expect(202);
    flows::pay(sys, "quitter", &quitter).await?.expect(202);
    flows::cancel(sys, "quitter", &quitter).await?.expect(202);
    // Both holds expire while the payments wait; the paid-for one waits for its outcome.
    flows::wait_view(sys, &s.schedule_id, &seat(1), "available").await?;
    let pending = flows::wait_reservation(sys, "late", &late, "payment_pending").await?;
    assert_eq!(pending["status"], "payment_pending");

    // payment-svc comes back and catches up: it debits, seat-svc refuses the sale of an expired
    // hold, payment-svc refunds. The cancelled one is refunded too, or never charged.
    sys.payment.restart()?;
    let failed = flows::wait_reservation(sys, "late", &late, "failed").await?;
    assert_eq!(failed["reason"], "hold_expired");
    flows::wait_reservation(sys, "quitter", &quitter, "cancelled").await?;
    for user in ["late", "quitter"] {
        eventually(&format!("{user}'s points back"), flows::STEP, async || {
            Ok((flows::balance(sys, user).await? == 100).then_some(()))
        })
        .await?;
    }
    let ledger = sys
        .payment
        .api()
        .get("/wallet/ledger", Some(&sys.user_token("late")))
        .await?
        .expect(200);
    let kinds: Vec<&str> = ledger
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["charge", "debit", "refund"]);

    let report = sys.settle(flows::STEP).await?;
    assert_eq!(report.sagas(), 3, "{report}");
    // Each hold was released exactly once, whichever replica did it.
    let js = jetstream::new(async_nats::connect(sys.nats.url()).await?);
    let stream = js.get_stream("SEAT").await?;
    for r in [&idle, &late, &quitter] {
        use futures::TryStreamExt;
        let subject = format!("seat.released.{r}");
        let counts: Vec<(String, usize)> = stream
            .info_with_subjects(&subject)
            .await?
            .try_collect()
            .await?;
        assert_eq!(counts, vec![(subject, 1)]);
    }
    Ok(())
}

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
    .expect(403);
    flows::hold(
        sys,
        "cyd",
        &s.schedule_id,
        &token(&c),
        &[s.seat_ids[0].clone()],
    )
    .await?
    .expect(403);
    flows::hold(
        sys,
        "amy",
        &other.schedule_id,
        &token(&a),
        &[other.seat_ids[0].clone()],
    )
    .await?
    .expect(403);

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
    .expect(409);
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
    .expect(403);
    // And bob may line up again, behind the two active ones.
    let again = join("bob").await?;
    assert_ne!(token(&again), token(&b));
    assert_eq!(status(&again), ("waiting".into(), 1));
    Ok(())
}

/// A busy run, then the availability view is rebuilt from the `SEAT` stream: the rebuilt view
/// equals the live one, and merging it changes nothing.
#[tokio::test]
async fn the_view_rebuilt_from_the_stream_equals_the_live_one_after_a_busy_run() {
    on_system(Options::default(), async |sys| rebuild(sys).await).await;
}

async fn rebuild(sys: &System) -> anyhow::Result<()> {
    let s = flows::open_schedule(sys, "Busy", &flows::numbered_seats("F", 12, 100)).await?;
    flows::busy_run(sys, &s, 30).await?;
    let before = sys.settle(flows::STEP).await?;
    assert!(before.sagas() >= 12, "{before}");

    let admin = sys.admin_token();
    let api = sys.concert.api();
    let report = api
        .post("/admin/view/rebuild", Some(&admin), &json!({}))
        .await?
        .expect(200);
    assert_eq!(report.body["differences"], json!([]), "{}", report.body);
    assert!(
        report.body["events"].as_u64().unwrap() >= before.sagas() as u64 * 2,
        "{}",
        report.body
    );
    assert_eq!(report.body["seats"], 12);

    // A view that lost an event (a row gone wrong) is found and repaired by the rebuild.
    let concert = platform::db::Db::connect(&sys.databases().concert).await?;
    sqlx::query("UPDATE seat_view SET status = 'sold', last_seq = 0 WHERE seat_id = $1")
        .bind(&s.seat_ids[0])
        .execute(concert.pool())
        .await?;
    let merged = api
        .post("/admin/view/rebuild?apply=true", Some(&admin), &json!({}))
        .await?
        .expect(200);
    assert_eq!(merged.body["applied"], true);
    assert_eq!(
        merged.body["differences"][0]["seat_id"],
        s.seat_ids[0].as_str(),
        "{}",
        merged.body
    );
    assert_eq!(merged.body["differences"].as_array().unwrap().len(), 1);
    let again = api
        .post("/admin/view/rebuild", Some(&admin), &json!({}))
        .await?
        .expect(200);
    assert_eq!(again.body["differences"], json!([]));
    sys.settle(flows::STEP).await?;
    api.post(
        "/admin/view/rebuild",
        Some(&sys.user_token("eve")),
        &json!({}),
    )
    .await?
    .expect(403);
    Ok(())
}

/// An event that keeps failing is retried a bounded number of times, then dead-lettered with
/// its reason while the other sagas go on; once its cause is fixed, replaying it from the DLQ
/// (with the `dlq` tool) completes it.
#[tokio::test]
async fn a_poison_event_goes_to_the_dlq_without_blocking_others_and_replays_once_fixed() {
    let opts = Options {
        max_deliver: 2,
        ..Default::default()
    };
    on_system(opts, async |sys| poison(sys).await).await;
}

async fn poison(sys: &System) -> anyhow::Result<()> {
    use contracts::events::{SeatHeld, SeatSold};
    use contracts::{Message, Points, ReservationId, ScheduleId, SeatEvent, SeatId, UserId};
    let js = jetstream::new(async_nats::connect(sys.nats.url()).await?);
    let publish = async |event: &SeatEvent| {
        let msg = Message::new("seat-svc", event, None, time::OffsetDateTime::now_utc());
        platform::harness::publish_message(&js, &msg).await
    };

    // A sale whose hold event has not reached reservation-svc: it cannot be applied yet.
    let r = ReservationId::new();
    publish(&SeatEvent::Sold(SeatSold {
        reservation_id: r,
        seat_ids: vec![],
    }))
    .await?;

    // Meanwhile other sagas complete.
    let s = flows::open_schedule(sys, "Poison", &[("P1", 100)]).await?;
    let ok = flows::holding(sys, "ok", 100, &s.schedule_id, &s.seat_ids).await?;
    flows::pay(sys, "ok", &ok).await?.expect(202);
    flows::wait_reservation(sys, "ok", &ok, "confirmed").await?;

    // After its two deliveries it is in the DLQ, with why and from where.
    let dlq = e2e::service_binary("dlq")?;
    let run = |args: &[&str]| -> anyhow::Result<String> {
        let out = std::process::Command::new(&dlq)
            .args(args)
            .env("NATS_URL", sys.nats.url())
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "dlq {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let listed = eventually("the DLQ entry", flows::STEP, async || {
        let out = run(&["list"])?;
        Ok(out.contains(&format!("seat.sold.{r}")).then_some(out))
    })
    .await?;
    assert!(
        listed.contains("reservation-svc") && listed.contains("not known yet"),
        "{listed}"
    );
    let seq = listed.split_whitespace().next().unwrap().to_owned();
    let shown: serde_json::Value = serde_json::from_str(&run(&["show", &seq])?)?;
    assert_eq!(shown["delivered"], "2");
    assert!(
        shown["reason"]
            .as_str()
            .unwrap()
            .starts_with("gave up after 2 deliveries")
    );

    // The missing hold arrives; replaying the dead letter completes the saga.
    publish(&SeatEvent::Held(SeatHeld {
        reservation_id: r,
        user_id: UserId("late".into()),
        schedule_id: ScheduleId::new(),
        seat_ids: vec![SeatId::new()],
        amount: Points::new(100)?,
        expires_at: time::OffsetDateTime::now_utc() + time::Duration::minutes(5),
    }))
    .await?;
    flows::wait_reservation(sys, "late", &r.to_string(), "awaiting_payment").await?;
    assert!(run(&["replay", "--all"])?.contains(&format!("seat.sold.{r}")));
    flows::wait_reservation(sys, "late", &r.to_string(), "confirmed").await?;
    assert_eq!(run(&["list"])?.trim(), "the DLQ is empty");
    Ok(())
}

/// Two processes each of seat-svc, reservation-svc and payment-svc share their durable
/// consumers and databases: a contended sale still ends with every invariant holding, and the
/// work is shared.
#[tokio::test]
async fn two_replicas_of_each_service_share_the_work_without_double_effects() {
    let opts = Options {
        replicas: 2,
        ..Default::default()
    };
    on_system(opts, async |sys| replicas(sys).await).await;
}

async fn replicas(sys: &System) -> anyhow::Result<()> {
    let s = flows::open_schedule(sys, "Replicas", &flows::numbered_seats("R", 10, 100)).await?;
    flows::busy_run(sys, &s, 40).await?;
    let report = sys.settle(flows::STEP).await?;
    assert!(report.sagas() >= 10, "{report}");
    // Both processes of each service handled events.
    let handled = async |p: &e2e::ServiceProcess| -> anyhow::Result<f64> {
        let text = p
            .api()
            .get("/metrics", None)
            .await?
            .body
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Ok(text
            .lines()
            .filter(|l| l.starts_with("events_handled_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    };
    for (first, second) in [
        (&sys.seat, &sys.replicas[0]),
        (&sys.reservation, &sys.replicas[1]),
        (&sys.payment, &sys.replicas[2]),
    ] {
        let (a, b) = (handled(first).await?, handled(second).await?);
        assert!(
            a > 0.0 && b > 0.0,
            "{}: {a} and {b} events handled",
            first.name
        );
    }
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

/// SIGTERM: a service stops taking requests, finishes what it has, flushes its outbox and
/// exits 0 promptly; what it accepted completes after it comes back.
#[tokio::test]
async fn sigterm_stops_a_service_cleanly_without_losing_accepted_work() {
    on_system(Options::default(), async |sys| graceful(sys).await).await;
}

async fn graceful(sys: &mut System) -> anyhow::Result<()> {
    let s = flows::open_schedule(sys, "Graceful", &[("G1", 100)]).await?;
    let r = flows::holding(sys, "gina", 100, &s.schedule_id, &s.seat_ids).await?;
    // An open status stream must not hold the shutdown up.
    let (opened, is_open) = tokio::sync::oneshot::channel();
    let stream = tokio::spawn(flows::status_events(
        sys.reservation.api(),
        sys.user_token("gina"),
        r.clone(),
        opened,
    ));
    tokio::time::timeout(flows::STEP, is_open).await??;
    flows::pay(sys, "gina", &r).await?.expect(202);
    let started = std::time::Instant::now();
    assert!(
        sys.reservation
            .terminate(std::time::Duration::from_secs(15))?,
        "exit status 0"
    );
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(12), "took {took:?}");
    let _ = stream.await;
    for p in [&mut sys.seat, &mut sys.payment, &mut sys.concert] {
        assert!(
            p.terminate(std::time::Duration::from_secs(15))?,
            "{} exits 0",
            p.name
        );
        p.restart()?;
    }
    sys.reservation.restart()?;
    flows::wait_reservation(sys, "gina", &r, "confirmed").await?;
    sys.settle(flows::STEP).await?;
    Ok(())
}

/// A short chaos run: 100 users, 30 seats, 10 SIGKILLs of services and nats-server at random
/// moments; every saga finishes, nothing accepted is lost, every invariant holds.
#[tokio::test]
async fn a_flash_sale_survives_random_kills_of_services_and_nats() {
    let cfg = e2e::chaos::Config {
        users: 100,
        seats: 30,
        kills: 10,
        seed: 7,
        replicas: 1,
        kill_nats: true,
        cluster: false,
        hold_ttl_secs: 5,
        converge_within: std::time::Duration::from_secs(90),
    };
    let report = e2e::chaos::run(&cfg, |line| eprintln!("{line}"))
        .await
        .expect("chaos run");
    assert_eq!(report.kills.len(), 10);
    assert!(report.invariants.sagas() >= 25, "{}", report.invariants);
    assert_eq!(report.lost, Vec::<String>::new());
    assert!(report.invariants.is_clean(), "{}", report.invariants);
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

/// Each service on a NATS user of its own: the system works, and seat-svc's credentials can
/// neither publish a payment event nor read another service's durable consumer.
#[tokio::test]
async fn on_a_secured_bus_services_work_and_cannot_step_outside_their_context() {
    let opts = Options {
        secured: true,
        ..Default::default()
    };
    on_system(opts, async |sys| secured(sys).await).await;
}

async fn secured(sys: &System) -> anyhow::Result<()> {
    let s = flows::open_schedule(sys, "Secured", &[("K1", 100)]).await?;
    let r = flows::holding(sys, "kim", 100, &s.schedule_id, &s.seat_ids).await?;
    flows::pay(sys, "kim", &r).await?.expect(202);
    flows::wait_reservation(sys, "kim", &r, "confirmed").await?;
    sys.settle(flows::STEP).await?;
    let rebuilt = sys
        .concert
        .api()
        .post("/admin/view/rebuild", Some(&sys.admin_token()), &json!({}))
        .await?;
    anyhow::ensure!(rebuilt.is(200), "rebuild: {rebuilt:?}");
    assert_eq!(rebuilt.body["differences"], json!([]), "{}", rebuilt.body);
    assert!(rebuilt.body["events"].as_u64().unwrap() >= 2);
    let logs = sys.logs_tail(100_000);
    assert!(
        !logs.contains("Permissions Violation"),
        "a service was refused something it needs:\n{logs}"
    );

    let seat = sys.bus_as("seat-svc").await?;
    // Its own events: allowed.
    let own = seat.publish("seat.probe.x", "{}".into()).await?.await;
    assert!(own.is_ok(), "seat-svc publishes seat.*: {own:?}");
    // A payment event and another service's durable: both refused (each waits out a request
    // timeout, so they are tried at once), and nothing reaches the PAYMENT stream.
    let admin = sys.bus_as("admin").await?;
    let before = stream_messages(&admin, "PAYMENT").await?;
    let forged = async {
        seat.publish("payment.completed.forged", "{}".into())
            .await?
            .await?;
        anyhow::Ok(())
    };
    let theirs = seat
        .get_consumer_from_stream::<async_nats::jetstream::consumer::pull::Config, _, _>(
            "payment-svc",
            "RESERVATION",
        );
    let limit = std::time::Duration::from_secs(10);
    let (forged, theirs) = tokio::join!(
        tokio::time::timeout(limit, forged),
        tokio::time::timeout(limit, theirs)
    );
    assert!(
        !matches!(forged, Ok(Ok(()))),
        "seat-svc must not publish payment events"
    );
    assert!(
        !matches!(theirs, Ok(Ok(_))),
        "seat-svc must not read payment-svc's consumer"
    );
    assert_eq!(stream_messages(&admin, "PAYMENT").await?, before);
    // Its own durable: allowed.
    let mine = seat
        .get_consumer_from_stream::<async_nats::jetstream::consumer::pull::Config, _, _>(
            "seat-svc", "PAYMENT",
        )
        .await;
    assert!(mine.is_ok(), "{:?}", mine.err());
    Ok(())
}

/// A flash sale on a three-node cluster running the committed `nats/conf/cluster.conf` (R3
/// streams and durables, each service on its own NATS user): the node leading the SEAT stream is
/// SIGKILLed mid-sale and stays down; every saga still ends and the invariants hold. Restarted,
/// the node catches up on everything published while it was away.
#[tokio::test]
async fn a_flash_sale_on_a_three_node_cluster_survives_losing_a_node() {
    let opts = Options {
        cluster: true,
        // Longer than a leader election (a few seconds), or every hold expires meanwhile.
        hold_ttl_secs: 15,
        queue_active_limit: 1000,
        ..Default::default()
    };
    on_system(opts, async |sys| node_loss(sys).await).await;
}

async fn node_loss(sys: &mut System) -> anyhow::Result<()> {
    use std::time::{Duration, Instant};
    let admin = sys.bus_as("admin").await?;
    let seats = flows::numbered_seats("C", 30, 100);
    let s = flows::open_schedule(sys, "Cluster", &seats).await?;
    let seat_stream = admin.get_stream("SEAT").await?.get_info().await?;
    let replicas = seat_stream.config.num_replicas;
    assert_eq!(replicas, 3, "streams are R3 on the cluster");
    let leader = seat_stream
        .cluster
        .and_then(|c| c.leader)
        .expect("an R3 stream has a leader");

    let sale = e2e::chaos::Sale::start(
        sys.client(),
        80,
        3,
        &s,
        Instant::now() + Duration::from_secs(120),
    );
    eventually(
        "the sale to be under way",
        Duration::from_secs(60),
        async || Ok((sale.holds() >= 10).then_some(())),
    )
    .await?;
    let sold_at_kill = seat_events(&admin).await?;
    let node = std::iter::once(&sys.nats)
        .chain(&sys.peers)
        .position(|n| n.name() == Some(leader.as_str()))
        .expect("the leader is one of the nodes");
    sys.nats_node_mut(node).kill();
    let killed = Instant::now();

    let accepted = sale.finish().await?;
    let report = sys.settle(Duration::from_secs(90)).await?;
    eprintln!(
        "{report}; {} holds, {} payments, {} cancels accepted; settled {:.1} s after losing {leader}",
        accepted.holds.len(),
        accepted.paid.len(),
        accepted.cancelled.len(),
        killed.elapsed().as_secs_f64()
    );
    assert!(report.sagas() >= 20, "{report}");
    assert_eq!(
        e2e::chaos::lost_commands(sys, &accepted).await?,
        Vec::<String>::new()
    );
    let after = seat_events(&admin).await?;
    assert!(
        after > sold_at_kill,
        "the sale went on without {leader}: SEAT went from {sold_at_kill} to {after} events"
    );

    // Back, it rejoins every stream and replays what it missed until it is current.
    sys.nats_node_mut(node).restart()?;
    for stream in ["CONCERT", "SEAT", "RESERVATION", "PAYMENT"] {
        eventually(
            &format!("{leader} to be current on {stream}"),
            Duration::from_secs(30),
            async || {
                let info = admin.get_stream(stream).await?.get_info().await?;
                let cluster = info.cluster.unwrap_or_default();
                let current = cluster.leader.as_deref() == Some(leader.as_str())
                    || cluster.replicas.iter().any(|p| {
                        p.name == leader && p.current && !p.offline && p.lag.unwrap_or(0) == 0
                    });
                Ok(current.then_some(()))
            },
        )
        .await?;
    }
    Ok(())
}

/// Events in the SEAT stream so far, retried while a leader election leaves it unanswered.
async fn seat_events(js: &jetstream::Context) -> anyhow::Result<u64> {
    eventually(
        "SEAT stream info",
        std::time::Duration::from_secs(30),
        async || Ok(Some(stream_messages(js, "SEAT").await?)),
    )
    .await
}
