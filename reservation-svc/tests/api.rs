//! reservation-svc over HTTP and JetStream, with a real nats-server and SQLite: reservations
//! appear from seat events, are paid (202 + an event), and follow the saga to a terminal state.

use contracts::events::{PaymentFailed, SeatHeld, SeatReleased, SeatSold};
use contracts::{
    PaymentEvent, Points, ReleaseReason, ReservationId, ScheduleId, SeatEvent, SeatId, UserId,
};
use harness::{Api, TestEnv, eventually};
use nats::runtime::Service;
use reservation_svc::ReservationSvc;
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

async fn start(env: &TestEnv) -> Api {
    env.start::<ReservationSvc>(Default::default())
        .await
        .expect("reservation-svc ready")
}

async fn held(env: &TestEnv, user: &str) -> ReservationId {
    held_for_show(env, user, None).await
}

/// A hold by `user` for a show starting at `starts_at`, as seat-svc announces it.
async fn held_for_show(
    env: &TestEnv,
    user: &str,
    starts_at: Option<time::OffsetDateTime>,
) -> ReservationId {
    let r = ReservationId::new();
    let event = hold_event_at(r, user, starts_at);
    env.publish("seat-svc", &event).await.unwrap();
    r
}

fn hold_event(r: ReservationId, user: &str) -> SeatEvent {
    hold_event_at(r, user, None)
}

fn hold_event_at(
    r: ReservationId,
    user: &str,
    starts_at: Option<time::OffsetDateTime>,
) -> SeatEvent {
    SeatEvent::Held(SeatHeld {
        reservation_id: r,
        user_id: UserId(user.into()),
        schedule_id: ScheduleId::new(),
        seat_ids: vec![SeatId::new(), SeatId::new()],
        amount: Points::new(200).unwrap(),
        expires_at: time::OffsetDateTime::now_utc() + time::Duration::minutes(5),
        starts_at,
        versions: Default::default(),
    })
}

/// The pay command on `r` with `token`.
async fn pay(api: &Api, token: &str, r: ReservationId) -> harness::Reply {
    api.post(
        &format!("/reservations/{r}/payment"),
        Some(token),
        &json!({}),
    )
    .await
    .unwrap()
}

async fn status_of(
    env: &TestEnv,
    api: &Api,
    user: &str,
    r: ReservationId,
    status: &str,
) -> serde_json::Value {
    let t = env.user(user);
    eventually(&format!("reservation {status}"), WAIT, async || {
        let reply = api.get(&format!("/reservations/{r}"), Some(&t)).await?;
        Ok((reply.is(200) && reply.str("status") == status).then_some(reply.body))
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_held_reservation_is_paid_once_and_confirmed_when_sold() {
    let env = TestEnv::new().unwrap();
    let api = start(&env).await;
    let ann = env.user("ann");
    // An id no hold ever made is unknown.
    api.get(&format!("/reservations/{}", long_ago()), Some(&ann))
        .await
        .unwrap()
        .expect_problem(404, "unknown-reservation");

    let r = held(&env, "ann").await;
    let body = status_of(&env, &api, "ann", r, "awaiting_payment").await;
    assert_eq!(body["amount"], 200);
    api.get(&format!("/reservations/{r}"), Some(&env.user("eve")))
        .await
        .unwrap()
        .expect_problem(404, "unknown-reservation");
    pay(&api, &env.user("eve"), r)
        .await
        .expect_problem(404, "unknown-reservation");

    let paid = pay(&api, &ann, r).await.expect(202);
    assert_eq!(paid.body["status"], "payment_pending");
    let again = pay(&api, &ann, r)
        .await
        .expect_problem(409, "not-awaiting-payment");
    assert_eq!(again.content_type, "application/problem+json");
    assert!(
        again.str("detail").contains("payment_pending"),
        "{}",
        again.body
    );

    let request = env
        .event("RESERVATION", &format!("reservation.payment_requested.{r}"))
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&request.payload).unwrap();
    assert_eq!(
        (body["user_id"].as_str(), body["amount"].as_i64()),
        (Some("ann"), Some(200))
    );
    let js = env.jetstream().await.unwrap();
    assert_eq!(
        harness::stream_messages(&js, "RESERVATION").await.unwrap(),
        1,
        "one request, not two"
    );

    let sold = SeatEvent::Sold(SeatSold {
        reservation_id: r,
        seat_ids: vec![],
        versions: Default::default(),
    });
    env.publish("seat-svc", &sold).await.unwrap();
    status_of(&env, &api, "ann", r, "confirmed").await;
    let confirmed = env
        .event("RESERVATION", &format!("reservation.confirmed.{r}"))
        .await
        .unwrap();
    assert_eq!(
        confirmed.headers.get("ce-correlationid").unwrap().as_str(),
        r.to_string()
    );

    let mine = api
        .get("/reservations", Some(&ann))
        .await
        .unwrap()
        .expect(200);
    assert_eq!(mine.body.as_array().unwrap().len(), 1);
    let theirs = api
        .get("/reservations", Some(&env.user("eve")))
        .await
        .unwrap()
        .expect(200);
    assert_eq!(theirs.body, json!([]));
}

#[tokio::test]
async fn a_failed_payment_fails_the_reservation_with_its_reason_and_late_events_change_nothing() {
    let env = TestEnv::new().unwrap();
    let api = start(&env).await;
    let r = held(&env, "ann").await;
    status_of(&env, &api, "ann", r, "awaiting_payment").await;
    pay(&api, &env.user("ann"), r).await.expect(202);
    let failed = PaymentEvent::Failed(PaymentFailed {
        reservation_id: r,
        reason: contracts::PaymentFailure::InsufficientPoints,
    });
    env.publish("payment-svc", &failed).await.unwrap();
    let body = status_of(&env, &api, "ann", r, "failed").await;
    assert_eq!(body["reason"], "insufficient_points");

    // The release that follows a failed payment, arriving late, changes nothing (nor its
    // reason), and neither does a redelivery of the failure.
    let late = SeatEvent::Released(SeatReleased {
        reservation_id: r,
        seat_ids: vec![],
        reason: ReleaseReason::PaymentFailed,
        versions: Default::default(),
    });
    env.publish("seat-svc", &late).await.unwrap();
    env.publish("payment-svc", &failed).await.unwrap();
    // Wait until the late events have been handled before looking.
    env.handled_all("SEAT", ReservationSvc::NAME).await.unwrap();
    env.handled_all("PAYMENT", ReservationSvc::NAME)
        .await
        .unwrap();
    let body = status_of(&env, &api, "ann", r, "failed").await;
    assert_eq!(body["reason"], "insufficient_points");
    pay(&api, &env.user("ann"), r)
        .await
        .expect_problem(409, "not-awaiting-payment");
}

#[tokio::test]
async fn reservation_ids_that_do_not_parse_are_unknown_and_tokens_are_required() {
    let env = TestEnv::new().unwrap();
    let api = start(&env).await;
    // Not even an id: nothing can be known by it.
    api.get("/reservations/nope", Some(&env.user("ann")))
        .await
        .unwrap()
        .expect_problem(404, "not-found");
    api.get("/reservations", None)
        .await
        .unwrap()
        .expect_problem(401, "unauthorized");
    api.post(
        &format!("/reservations/{}/payment", long_ago()),
        Some(&env.user("ann")),
        &json!({}),
    )
    .await
    .unwrap()
    .expect_problem(404, "unknown-reservation");
}

/// A reservation id made ten minutes ago (ids are UUIDv7): no longer on its way here.
fn long_ago() -> ReservationId {
    ReservationId(harness::id_made_long_ago())
}

/// Read-your-writes: seat-svc hands out a reservation's id before this service has consumed
/// the hold that creates it. A read, a payment or a status stream about it then waits for it
/// rather than answering 404; one that never arrives is 503 with `Retry-After`, not 404.
#[tokio::test]
async fn a_reservation_just_handed_out_is_waited_for_never_unknown() {
    let env = TestEnv::new().unwrap();
    let api = start(&env).await;
    let ann = env.user("ann");

    // Asked for before its hold is announced: each request is answered once it arrives.
    let r = ReservationId::new();
    let path = format!("/reservations/{r}");
    let (get, paid, published) = tokio::join!(
        api.get(&path, Some(&ann)),
        async {
            // The payment after the read has started waiting (its first look found nothing).
            tokio::time::sleep(Duration::from_millis(300)).await;
            pay(&api, &ann, r).await
        },
        async {
            tokio::time::sleep(Duration::from_millis(600)).await;
            env.publish("seat-svc", &hold_event(r, "ann")).await
        }
    );
    published.unwrap();
    let get = get.unwrap().expect(200);
    assert_eq!(get.body["user_id"], "ann");
    assert_eq!(paid.expect(202).body["status"], "payment_pending");

    // Someone else's, once here: 404 at once, as before.
    let other = api
        .get(&format!("/reservations/{r}"), Some(&env.user("eve")))
        .await
        .unwrap();
    assert!(other.is(404), "{other:?}");

    // One that never arrives: 503 with Retry-After after a brief wait, for a read, a command
    // and a status stream alike.
    let never = ReservationId::new();
    let started = std::time::Instant::now();
    let read = api
        .get(&format!("/reservations/{never}"), Some(&ann))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "it waited");
    for reply in [
        read,
        pay(&api, &ann, never).await,
        api.get(&format!("/reservations/{never}/events"), Some(&ann))
            .await
            .unwrap(),
    ] {
        assert!(
            reply.is(503) && reply.retry_after.is_some(),
            "expected 503 with Retry-After: {reply:?}"
        );
        assert_eq!(reply.content_type, "application/problem+json");
        assert!(reply.str("detail").contains("being set up"), "{reply:?}");
    }
}

/// A client cannot make the service hold many requests open by asking about fresh ids that
/// never arrive: beyond a few waiting at once per user, 429 with `Retry-After` at once.
#[tokio::test]
async fn a_user_may_have_only_a_few_requests_waiting_for_reservations() {
    use reservation_svc::watchers::ARRIVALS_PER_USER;
    let env = TestEnv::new().unwrap();
    let api = start(&env).await;
    let mallory = env.user("mallory");
    let paths: Vec<String> = (0..=ARRIVALS_PER_USER)
        .map(|_| format!("/reservations/{}", ReservationId::new()))
        .collect();
    let replies = futures::future::join_all(paths.iter().map(|p| api.get(p, Some(&mallory)))).await;
    let (waited, refused): (Vec<_>, Vec<_>) = replies
        .into_iter()
        .map(Result::unwrap)
        .partition(|r| r.is(503));
    assert_eq!(waited.len(), ARRIVALS_PER_USER, "{refused:?}");
    assert_eq!(refused.len(), 1, "{refused:?}");
    let refused = &refused[0];
    assert!(
        refused.is(429) && refused.retry_after.is_some(),
        "{refused:?}"
    );
    assert_eq!(refused.content_type, "application/problem+json");
    // Someone else is not held up by it.
    let r = held(&env, "ann").await;
    status_of(&env, &api, "ann", r, "awaiting_payment").await;
}

/// Once its show has started, a confirmed reservation cannot be cancelled (409): the seat would be
/// refunded after it was used. Before the show, it can. (Main answered 202 either way.)
#[tokio::test]
async fn a_confirmed_reservation_cannot_be_cancelled_once_its_show_has_started() {
    let env = TestEnv::new().unwrap();
    let api = start(&env).await;
    let now = time::OffsetDateTime::now_utc();
    let cancel = async |r: ReservationId| {
        api.post(
            &format!("/reservations/{r}/cancel"),
            Some(&env.user("ann")),
            &json!({}),
        )
        .await
        .unwrap()
    };
    let started = held_for_show(&env, "ann", Some(now - time::Duration::minutes(1))).await;
    let later = held_for_show(&env, "ann", Some(now + time::Duration::days(30))).await;
    for r in [started, later] {
        status_of(&env, &api, "ann", r, "awaiting_payment").await;
        pay(&api, &env.user("ann"), r).await.expect(202);
        let sold = SeatEvent::Sold(SeatSold {
            reservation_id: r,
            seat_ids: vec![],
            versions: Default::default(),
        });
        env.publish("seat-svc", &sold).await.unwrap();
        let body = status_of(&env, &api, "ann", r, "confirmed").await;
        assert!(body["starts_at"].is_string(), "{body}");
    }
    let refused = cancel(started).await.expect_problem(409, "show-started");
    assert!(
        refused.str("detail").contains("show has started"),
        "{}",
        refused.body
    );
    cancel(later).await.expect(202);
}

/// A user may keep `STREAMS_PER_USER` live status streams open; one more is answered 429 (a
/// problem with Retry-After) until one closes. A stream ends when the token that opened it
/// expires, whatever the reservation's status. A change this process commits reaches its stream
/// at once. (On main a user could open streams without limit, each polling the database every
/// 50 ms, and a stream outlived its token.)
#[tokio::test]
async fn live_streams_are_capped_per_user_and_end_with_their_token() {
    use reservation_svc::watchers::STREAMS_PER_USER;
    let env = TestEnv::new().unwrap();
    let api = start(&env).await;
    let r = held(&env, "ann").await;
    status_of(&env, &api, "ann", r, "awaiting_payment").await;
    let ann = env.user("ann");
    let path = format!("/reservations/{r}/events");
    let mut open = Vec::new();
    for _ in 0..STREAMS_PER_USER {
        let resp = api.get_streaming(&path, &ann).await.unwrap();
        assert_eq!(resp.status(), 200);
        open.push(resp);
    }
    let refused = api.get(&path, Some(&ann)).await.unwrap();
    assert!(refused.is(429), "{refused:?}");
    assert_eq!(refused.content_type, "application/problem+json");
    assert!(
        refused.str("detail").contains("live streams"),
        "{refused:?}"
    );

    // A stream open on a change: the pay command's status arrives without a poll's delay.
    let mut watching = open.pop().unwrap();
    let mut seen = String::new();
    while !seen.contains("awaiting_payment") {
        seen.push_str(&String::from_utf8_lossy(
            &watching.chunk().await.unwrap().unwrap(),
        ));
    }
    pay(&api, &ann, r).await.expect(202);
    tokio::time::timeout(Duration::from_millis(900), async {
        while !seen.contains("payment_pending") {
            seen.push_str(&String::from_utf8_lossy(
                &watching.chunk().await.unwrap().unwrap(),
            ));
        }
    })
    .await
    .expect("the change pushed before the other-replica poll (1 s) could find it");
    drop(watching);
    // A stream closed: room for one more.
    let reopened = eventually("a stream freed", WAIT, async || {
        let resp = api.get_streaming(&path, &ann).await?;
        Ok((resp.status() == 200).then_some(resp))
    })
    .await
    .unwrap();
    drop(reopened);
    drop(open);

    // A token good for 2 s: its stream ends by itself although the reservation is not done.
    let short = env.auth.issue("ann", None, Duration::from_secs(2));
    let mut resp = eventually("a stream with the short token", WAIT, async || {
        let resp = api.get_streaming(&path, &short).await?;
        Ok((resp.status() == 200).then_some(resp))
    })
    .await
    .unwrap();
    tokio::time::timeout(WAIT, async {
        while resp.chunk().await.unwrap().is_some() {}
    })
    .await
    .expect("the stream ended when its token expired");
    status_of(&env, &api, "ann", r, "payment_pending").await;
}
