//! The whole saga across all four services, and the envelope on every event.

use crate::helpers::on_system;
use async_nats::jetstream;
use e2e::flows;
use e2e::system::Options;
use e2e::{Frontend, System};

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
    // seat-svc told when the show starts, with the hold.
    assert_eq!(r["starts_at"], s.starts_at, "{r}");
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
        .expect_problem(404, "unknown-reservation");

    // Pay: accepted at once, confirmed when the saga is through. The request's id comes back,
    // and is the cause of the event the command emits.
    let paid = sys
        .reservation
        .api()
        .send(
            reqwest::Method::POST,
            &format!("/reservations/{reservation}/payment"),
            Some(&sys.user_token("alice")),
            &[("X-Request-Id", "pay-alice-1")],
            Some(harness::RawBody::Json(&serde_json::json!({}))),
        )
        .await?
        .expect(202);
    assert_eq!(paid.body["status"], "payment_pending");
    assert_eq!(paid.request_id.as_deref(), Some("pay-alice-1"));
    flows::wait_reservation(sys, "alice", &reservation, "confirmed").await?;
    flows::pay(sys, "alice", &reservation)
        .await?
        .expect_problem(409, "not-awaiting-payment");

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
    // and each names what caused it: the pay command's request id, then the event before.
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
        assert_eq!(h("ce-datacontenttype"), "application/json", "{subject}");
        // The hold and the pay command start causal chains of their own (their request ids);
        // the rest follow one from another.
        match prefix {
            "seat.held" => assert!(!h("ce-causationid").is_empty(), "{subject}: a request id"),
            "reservation.payment_requested" => {
                assert_eq!(h("ce-causationid"), "pay-alice-1", "{subject}")
            }
            _ => assert_eq!(
                Some(h("ce-causationid")),
                previous_id,
                "{subject} names its cause"
            ),
        }
        previous_id = Some(h("ce-id"));
    }
    let report = sys.settle(flows::STEP).await?;
    assert_eq!(report.outcomes.get("confirmed"), Some(&1), "{report}");
    Ok(())
}
