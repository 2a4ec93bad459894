//! seat-svc over HTTP and JetStream, with a real nats-server and SQLite: inventory from the
//! schedule event, the queue, holds and their bad input, and the payment reactions.

use async_nats::jetstream::AckKind;
use contracts::events::{PaymentCompleted, ReservationCancelled, ScheduleOpened};
use contracts::{
    ConcertEvent, ConcertId, Event, PaymentEvent, Points, ReservationEvent, ReservationId,
    ScheduleId, SeatId, SeatSpec, UserId,
};
use futures::StreamExt;
use harness::{Api, RawBody, TestEnv, eventually};
use nats::messaging::topology::{ConsumerSpec, ensure_consumer, ensure_streams};
use nats::runtime::Service;
use reqwest::Method;
use seat_svc::SeatSvc;
use seat_svc::config::Limits;
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

async fn start(env: &TestEnv, queue_active_limit: i64) -> Api {
    let limits = Limits {
        queue_active_limit,
        ..Limits::default()
    };
    env.start::<SeatSvc>(limits).await.expect("seat-svc ready")
}

fn opened(seats: usize) -> (ScheduleId, Vec<SeatId>, ConcertEvent) {
    opened_at(seats, 100)
}

/// A schedule of `seats` seats at `price` each, as concert-svc would announce it.
fn opened_at(seats: usize, price: i64) -> (ScheduleId, Vec<SeatId>, ConcertEvent) {
    let starts_at = time::OffsetDateTime::now_utc() + time::Duration::days(90);
    opened_starting(seats, price, starts_at)
}

/// A schedule of `seats` seats at `price` each whose show starts at `starts_at`.
fn opened_starting(
    seats: usize,
    price: i64,
    starts_at: time::OffsetDateTime,
) -> (ScheduleId, Vec<SeatId>, ConcertEvent) {
    let schedule = ScheduleId::new();
    let specs: Vec<SeatSpec> = (0..seats)
        .map(|i| SeatSpec {
            seat_id: SeatId::new(),
            label: format!("A{i}"),
            grade: "R".into(),
            price: Points::new(price).unwrap(),
        })
        .collect();
    let ids = specs.iter().map(|s| s.seat_id).collect();
    let event = ConcertEvent::ScheduleOpened(ScheduleOpened {
        schedule_id: schedule,
        concert_id: ConcertId::new(),
        starts_at,
        seats: specs,
    });
    (schedule, ids, event)
}

/// Takes a queue token for `user`, waiting while the inventory is being built.
async fn token(env: &TestEnv, api: &Api, user: &str, schedule: ScheduleId) -> serde_json::Value {
    let t = env.user(user);
    eventually("a queue token", WAIT, async || {
        let r = api
            .post(
                &format!("/schedules/{schedule}/queue"),
                Some(&t),
                &json!({}),
            )
            .await?;
        Ok((r.is(201) || r.is(200)).then_some(r.body))
    })
    .await
    .unwrap()
}

/// The queue token `user` takes (as [`token`]), as sent in `Queue-Token`.
async fn token_id(env: &TestEnv, api: &Api, user: &str, schedule: ScheduleId) -> String {
    token(env, api, user, schedule).await["token"]
        .as_str()
        .expect("a token answer carries its token")
        .to_owned()
}

/// payment-svc's word that `user` paid 100 points for `reservation`.
fn paid(reservation: ReservationId, user: &str) -> PaymentEvent {
    PaymentEvent::Completed(PaymentCompleted {
        reservation_id: reservation,
        user_id: UserId(user.into()),
        amount: Points::new(100).unwrap(),
    })
}

async fn hold(
    env: &TestEnv,
    api: &Api,
    user: &str,
    schedule: ScheduleId,
    token: &str,
    seats: &[SeatId],
) -> harness::Reply {
    api.send(
        Method::POST,
        &format!("/schedules/{schedule}/holds"),
        Some(&env.user(user)),
        &[("Queue-Token", token)],
        Some(RawBody::Json(&json!({"seat_ids": seats}))),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_seat_is_held_once_and_a_multi_seat_hold_is_all_or_nothing() {
    let env = TestEnv::new().unwrap();
    let api = start(&env, 100).await;
    let (schedule, seats, event) = opened(3);
    env.publish("concert-svc", &event).await.unwrap();

    let a = token(&env, &api, "ann", schedule).await;
    assert_eq!(
        (a["status"].as_str(), a["position"].as_i64()),
        (Some("active"), Some(0))
    );
    let a = a["token"].as_str().unwrap().to_owned();
    let b = token_id(&env, &api, "ben", schedule).await;

    let first = hold(&env, &api, "ann", schedule, &a, &seats[..1])
        .await
        .expect(201);
    assert_eq!(first.body["amount"], 100);
    let taken = hold(&env, &api, "ben", schedule, &b, &seats[..1])
        .await
        .expect_problem(409, "seat-unavailable");
    assert_eq!(taken.content_type, "application/problem+json");
    // Seat 0 is taken, so asking for 0 and 1 takes neither; seat 1 stays free for ben.
    hold(&env, &api, "ben", schedule, &b, &seats[..2])
        .await
        .expect_problem(409, "seat-unavailable");
    hold(&env, &api, "ben", schedule, &b, &seats[1..2])
        .await
        .expect(201);

    // The hold is announced on the SEAT stream, correlated by its reservation id.
    let r = first.str("reservation_id");
    let msg = env.event("SEAT", &format!("seat.held.{r}")).await.unwrap();
    assert_eq!(msg.headers.get("ce-correlationid").unwrap().as_str(), r);
    // The seat's first change: the view orders a seat's events by it.
    let body: serde_json::Value = serde_json::from_slice(&msg.payload).unwrap();
    assert_eq!(body["versions"], json!({seats[0].to_string(): 1}));
}

/// Prices that add up past what an amount can hold are refused (422), never wrapped: main
/// answered 201 with `amount: 0` for four seats at 2^62. concert-svc refuses such prices too;
/// this is seat-svc's own guard.
#[tokio::test]
async fn seats_whose_prices_add_up_past_any_amount_are_refused_not_wrapped() {
    let env = TestEnv::new().unwrap();
    let api = start(&env, 100).await;
    let (schedule, seats, event) = opened_at(4, 1 << 62);
    env.publish("concert-svc", &event).await.unwrap();
    let t = token_id(&env, &api, "ann", schedule).await;
    let refused = hold(&env, &api, "ann", schedule, &t, &seats)
        .await
        .expect_problem(422, "too-expensive");
    assert!(
        refused.str("detail").contains("cost more"),
        "{}",
        refused.body
    );
    // Nothing was kept: one seat alone can still be held.
    let one = hold(&env, &api, "ann", schedule, &t, &seats[..1])
        .await
        .expect(201);
    assert_eq!(one.body["amount"], 1i64 << 62);
}

#[tokio::test]
async fn bad_hold_requests_get_the_right_problem() {
    let env = TestEnv::new().unwrap();
    let api = start(&env, 100).await;
    let (schedule, seats, event) = opened(2);
    env.publish("concert-svc", &event).await.unwrap();
    let t = token_id(&env, &api, "ann", schedule).await;
    let ann = env.user("ann");
    let path = format!("/schedules/{schedule}/holds");
    // (body, queue token, user, expected status)
    let cases = [
        (json!({"seat_ids": []}), Some(t.as_str()), "ann", 422),
        (
            json!({"seat_ids": [seats[0], seats[0]]}),
            Some(&t),
            "ann",
            422,
        ),
        (json!({"seat_ids": [SeatId::new()]}), Some(&t), "ann", 404),
        (json!({"seat_ids": ["not-a-seat"]}), Some(&t), "ann", 404),
        (json!({"seat_ids": [seats[0]]}), None, "ann", 403),
        (
            json!({"seat_ids": [seats[0]]}),
            Some("no-such-token"),
            "ann",
            403,
        ),
        (json!({"seat_ids": [seats[0]]}), Some(&t), "eve", 403),
        (json!({"seats": [seats[0]]}), Some(&t), "ann", 422),
    ];
    for (body, token, user, status) in cases {
        let headers: Vec<(&str, &str)> = token.map(|t| ("Queue-Token", t)).into_iter().collect();
        let r = api
            .send(
                Method::POST,
                &path,
                Some(&env.user(user)),
                &headers,
                Some(RawBody::Json(&body)),
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), status, "{body} as {user}: {}", r.body);
        assert_eq!(r.content_type, "application/problem+json");
    }
    let malformed = api
        .send(
            Method::POST,
            &path,
            Some(&ann),
            &[("Queue-Token", &t)],
            Some(RawBody::Text("[")),
        )
        .await
        .unwrap();
    assert!(malformed.is(400), "{malformed:?}");

    // A schedule seat-svc has caught up on and never heard of is unknown...
    let unknown = ScheduleId(harness::id_made_long_ago());
    api.post(
        &format!("/schedules/{unknown}/queue"),
        Some(&ann),
        &json!({}),
    )
    .await
    .unwrap()
    .expect_problem(404, "unknown-schedule");
    // ...unless its id was just made: concert-svc may not have announced it yet.
    let just_made = ScheduleId::new();
    let r = api
        .post(
            &format!("/schedules/{just_made}/queue"),
            Some(&ann),
            &json!({}),
        )
        .await
        .unwrap()
        .expect_problem(503, "schedule-not-ready");
    assert!(r.retry_after.is_some(), "{r:?}");
    // A token is its owner's to look at.
    api.get(&format!("/queue/{t}"), Some(&env.user("eve")))
        .await
        .unwrap()
        .expect_problem(404, "unknown-queue-token");
    // Text no database could look up is no token either.
    api.get("/queue/a%00b", Some(&ann))
        .await
        .unwrap()
        .expect_problem(404, "unknown-queue-token");
    api.get(&format!("/queue/{t}"), Some(&ann))
        .await
        .unwrap()
        .expect(200);
    // Nothing was held by all of that.
    hold(&env, &api, "ann", schedule, &t, &seats)
        .await
        .expect(201);
}

/// One user joining the same line 50 times at once gets one token: one 201, the rest 200 with
/// the same token. (On PostgreSQL main made several live tokens: 50 joins gave 4.)
#[tokio::test]
async fn parallel_joins_by_one_user_give_one_token() {
    let env = TestEnv::new().unwrap();
    let api = start(&env, 100).await;
    let (schedule, _, event) = opened(1);
    env.publish("concert-svc", &event).await.unwrap();
    token(&env, &api, "probe", schedule).await; // the inventory is built
    let ann = env.user("ann");
    let (path, body) = (format!("/schedules/{schedule}/queue"), json!({}));
    let answers =
        futures::future::join_all((0..50).map(|_| api.post(&path, Some(&ann), &body))).await;
    let mut tokens = std::collections::HashSet::new();
    let mut created = 0;
    for a in answers {
        let a = a.unwrap();
        assert!(a.is(200) || a.is(201), "{a:?}");
        created += usize::from(a.is(201));
        tokens.insert(a.str("token"));
    }
    assert_eq!((tokens.len(), created), (1, 1), "{tokens:?}");
}

/// Holds that reach the committer together run as one pass, where a hold's writes may wait for
/// the next hold's statements: the next check of the same token must still see the hold.
#[tokio::test]
async fn parallel_holds_with_one_token_hold_once() {
    let env = TestEnv::new().unwrap();
    let api = start(&env, 100).await;
    let (schedule, seats, event) = opened(24);
    env.publish("concert-svc", &event).await.unwrap();
    let ann = token_id(&env, &api, "ann", schedule).await;
    let ben = token_id(&env, &api, "ben", schedule).await;
    // ann's token asks for 12 seats one by one, ben's for the other 12, all at once.
    let asks = seats.iter().enumerate().map(|(i, seat)| {
        let (user, token) = if i % 2 == 0 {
            ("ann", &ann)
        } else {
            ("ben", &ben)
        };
        let (env, api) = (&env, &api);
        async move { (user, hold(env, api, user, schedule, token, &[*seat]).await) }
    });
    let answers = futures::future::join_all(asks).await;
    for user in ["ann", "ben"] {
        let theirs: Vec<_> = answers.iter().filter(|(u, _)| *u == user).collect();
        let held = theirs.iter().filter(|(_, a)| a.is(201)).count();
        assert_eq!(held, 1, "{user}: {theirs:?}");
        for (_, a) in theirs.iter().filter(|(_, a)| !a.is(201)) {
            a.clone().expect_problem(409, "already-holding");
        }
    }
}

#[tokio::test]
async fn past_the_active_limit_users_wait_in_line() {
    let env = TestEnv::new().unwrap();
    let api = start(&env, 1).await;
    let (schedule, seats, event) = opened(2);
    env.publish("concert-svc", &event).await.unwrap();
    let first = token(&env, &api, "ann", schedule).await;
    assert_eq!(first["status"], "active");
    let second = token(&env, &api, "ben", schedule).await;
    assert_eq!(
        (second["status"].as_str(), second["position"].as_i64()),
        (Some("waiting"), Some(1))
    );
    let third = token(&env, &api, "cat", schedule).await;
    assert_eq!(third["position"], 2);
    // Asking again gives the same token, not a second place in line.
    let again = token(&env, &api, "ben", schedule).await;
    assert_eq!(again["token"], second["token"]);
    let waiting = second["token"].as_str().unwrap();
    let r = hold(&env, &api, "ben", schedule, waiting, &seats[..1])
        .await
        .expect_problem(403, "token-not-active");
    assert!(r.str("detail").contains("waiting"), "{}", r.body);
}

/// A join reads the bound the last token in line keeps, not the whole line; once that bound
/// reaches the limit while fewer are in fact ahead (a token ahead has left), the join counts
/// and is admitted all the same, and the next one waits.
#[tokio::test]
async fn a_place_freed_ahead_admits_the_next_to_join_though_the_bound_says_full() {
    let env = TestEnv::new().unwrap();
    let api = start(&env, 2).await;
    let (schedule, seats, event) = opened(1);
    env.publish("concert-svc", &event).await.unwrap();
    let ann = token(&env, &api, "ann", schedule).await;
    let ben = token(&env, &api, "ben", schedule).await;
    assert_eq!(
        (ann["status"].as_str(), ben["status"].as_str()),
        (Some("active"), Some("active"))
    );
    // Ann buys her seat: her token is used up and leaves the line.
    let held = hold(
        &env,
        &api,
        "ann",
        schedule,
        ann["token"].as_str().unwrap(),
        &seats,
    )
    .await
    .expect(201);
    let r = ReservationId::parse(&held.str("reservation_id")).unwrap();
    env.publish("payment-svc", &paid(r, "ann")).await.unwrap();
    env.event("SEAT", &format!("seat.sold.{r}")).await.unwrap();
    let cat = token(&env, &api, "cat", schedule).await;
    assert_eq!(
        (cat["status"].as_str(), cat["position"].as_i64()),
        (Some("active"), Some(0))
    );
    let dan = token(&env, &api, "dan", schedule).await;
    assert_eq!(
        (dan["status"].as_str(), dan["position"].as_i64()),
        (Some("waiting"), Some(1))
    );
}

#[tokio::test]
async fn once_the_show_has_started_its_line_is_closed_and_its_seats_cannot_be_held() {
    let env = TestEnv::new().unwrap();
    let api = start(&env, 100).await;
    let starts_at = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    let (schedule, seats, event) = opened_starting(2, 100, starts_at);
    env.publish("concert-svc", &event).await.unwrap();
    let t = token(&env, &api, "ann", schedule).await;
    assert_eq!(t["status"], "active", "{t}");
    eventually("the show to start", WAIT, async || {
        Ok((time::OffsetDateTime::now_utc() > starts_at).then_some(()))
    })
    .await
    .unwrap();

    // A token taken before the start holds nothing after it; nobody new joins the line.
    let r = hold(
        &env,
        &api,
        "ann",
        schedule,
        t["token"].as_str().unwrap(),
        &seats[..1],
    )
    .await
    .expect_problem(422, "schedule-past");
    assert!(r.str("detail").contains("has started"), "{}", r.body);
    api.post(
        &format!("/schedules/{schedule}/queue"),
        Some(&env.user("ben")),
        &json!({}),
    )
    .await
    .unwrap()
    .expect_problem(422, "schedule-past");
}

#[tokio::test]
async fn while_the_schedule_event_is_still_being_handled_the_answer_is_503() {
    let env = TestEnv::new().unwrap();
    let js = env.jetstream().await.unwrap();
    ensure_streams(&js, 1, Default::default()).await.unwrap();
    let spec = ConsumerSpec::new(SeatSvc::NAME, seat_svc::inventory::SUBSCRIPTION, 1);
    let consumer = ensure_consumer(&js, &spec).await.unwrap();
    let (schedule, _, event) = opened(1);
    env.publish("concert-svc", &event).await.unwrap();
    // Another replica has taken the event and not finished with it yet.
    let mut batch = consumer.fetch().max_messages(1).messages().await.unwrap();
    let in_hand = batch.next().await.unwrap().unwrap();

    let api = start(&env, 100).await;
    let r = api
        .post(
            &format!("/schedules/{schedule}/queue"),
            Some(&env.user("ann")),
            &json!({}),
        )
        .await
        .unwrap();
    let r = r.expect_problem(503, "schedule-not-ready");
    assert!(r.str("detail").contains("not built yet"));
    assert!(r.retry_after.is_some(), "{r:?}");

    // That replica gives up on it; this one builds the inventory.
    in_hand.ack_with(AckKind::Nak(None)).await.unwrap();
    token(&env, &api, "ann", schedule).await;
}

#[tokio::test]
async fn a_completed_payment_sells_a_live_hold_and_refuses_an_unknown_one() {
    let env = TestEnv::new().unwrap();
    let api = start(&env, 100).await;
    let (schedule, seats, event) = opened(1);
    env.publish("concert-svc", &event).await.unwrap();
    let t = token_id(&env, &api, "ann", schedule).await;
    let held = hold(&env, &api, "ann", schedule, &t, &seats)
        .await
        .expect(201);
    let r = ReservationId::parse(&held.str("reservation_id")).unwrap();

    env.publish("payment-svc", &paid(r, "ann")).await.unwrap();
    let stranger = ReservationId::new();
    env.publish("payment-svc", &paid(stranger, "ann"))
        .await
        .unwrap();

    let sold = env.event("SEAT", &format!("seat.sold.{r}")).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&sold.payload).unwrap();
    assert_eq!(body["seat_ids"], json!(seats));
    assert_eq!(body["versions"], json!({seats[0].to_string(): 2}));
    let rejected = env
        .event("SEAT", &format!("seat.sale_rejected.{stranger}"))
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&rejected.payload).unwrap();
    assert_eq!(body["reason"], "unknown_hold");
    // The sold seat cannot be held again.
    let t2 = token_id(&env, &api, "ben", schedule).await;
    hold(&env, &api, "ben", schedule, &t2, &seats)
        .await
        .expect_problem(409, "seat-unavailable");
}

/// Settling a hold reads its seats' versions with the hold and writes their change without
/// asking back: the versions each event announces are the seat's own, also for a seat that an
/// earlier hold released and a later one took, and a late cancel of the earlier hold moves
/// nothing.
#[tokio::test]
async fn settled_holds_announce_the_versions_their_seats_have() {
    let env = TestEnv::new().unwrap();
    let api = start(&env, 100).await;
    let (schedule, seats, event) = opened(1);
    env.publish("concert-svc", &event).await.unwrap();
    let versions = |v: u64| json!({seats[0].to_string(): v});
    let cancelled = |r: ReservationId, user: &str| {
        ReservationEvent::Cancelled(ReservationCancelled {
            reservation_id: r,
            user_id: UserId(user.into()),
        })
    };
    let payload = |m: async_nats::jetstream::message::StreamMessage| -> serde_json::Value {
        serde_json::from_slice(&m.payload).unwrap()
    };

    let t1 = token_id(&env, &api, "ann", schedule).await;
    let first = hold(&env, &api, "ann", schedule, &t1, &seats)
        .await
        .expect(201);
    let r1 = ReservationId::parse(&first.str("reservation_id")).unwrap();
    env.publish("reservation-svc", &cancelled(r1, "ann"))
        .await
        .unwrap();
    let released = env
        .event("SEAT", &format!("seat.released.{r1}"))
        .await
        .unwrap();
    assert_eq!(payload(released)["versions"], versions(2));

    let t2 = token_id(&env, &api, "ben", schedule).await;
    let second = hold(&env, &api, "ben", schedule, &t2, &seats)
        .await
        .expect(201);
    let r2 = ReservationId::parse(&second.str("reservation_id")).unwrap();
    env.publish("payment-svc", &paid(r2, "ben")).await.unwrap();
    let sold = env.event("SEAT", &format!("seat.sold.{r2}")).await.unwrap();
    assert_eq!(payload(sold)["versions"], versions(4));

    // The first hold's cancel again (a late copy), then the second's: only the second moves the
    // seat, from the version its sale left.
    env.publish("reservation-svc", &cancelled(r1, "ann"))
        .await
        .unwrap();
    env.publish("reservation-svc", &cancelled(r2, "ben"))
        .await
        .unwrap();
    let released = env
        .event("SEAT", &format!("seat.released.{r2}"))
        .await
        .unwrap();
    assert_eq!(payload(released)["versions"], versions(5));
    let again = hold(&env, &api, "ann", schedule, &t1, &seats).await;
    assert_eq!(
        again.status, 403,
        "the first token is used up: {}",
        again.body
    );
}

#[tokio::test]
async fn an_event_seat_svc_cannot_read_goes_to_the_dlq_with_the_reason() {
    let env = TestEnv::new().unwrap();
    let _api = start(&env, 100).await;
    let (_, _, event) = opened(1);
    // The right headers but a payload of another shape, as from a broken producer.
    let mut msg =
        contracts::Message::new("concert-svc", &event, None, time::OffsetDateTime::now_utc());
    msg.payload = br#"{"schedule_id": 42}"#.to_vec();
    let js = env.jetstream().await.unwrap();
    harness::publish_message(&js, &msg).await.unwrap();
    let subject = format!("dlq.{}.{}", SeatSvc::NAME, event.subject());
    let entry = env.event("DLQ", &subject).await.unwrap();
    let reason = entry.headers.get("Dlq-Reason").unwrap().as_str().to_owned();
    assert!(reason.contains("payload does not match"), "{reason}");
    assert_eq!(
        entry.headers.get("ce-id").unwrap().as_str(),
        msg.id.to_string()
    );
    assert_eq!(entry.payload.as_ref(), msg.payload.as_slice());
}

/// Polling a queue token reads; it writes only to keep an idle token alive (once a tenth of its
/// time to live) or when a place may be free. With every write to the queue blocked, a user
/// polling a fresh token, waiting or active, is still answered at once. (On main every poll
/// was a write transaction: on SQLite a turn on the one writer that holds and payments wait
/// for, so polling users slowed down buying users.)
#[tokio::test]
async fn polling_a_queue_token_does_not_take_the_writer() {
    use sqlx::{Connection as _, Executor as _};
    let env = TestEnv::new().unwrap();
    let api = start(&env, 1).await;
    let (schedule, _, event) = opened(2);
    env.publish("concert-svc", &event).await.unwrap();
    let active = token(&env, &api, "ann", schedule).await;
    let waiting = token(&env, &api, "ben", schedule).await;
    assert_eq!(
        (active["status"].as_str(), waiting["status"].as_str()),
        (Some("active"), Some("waiting"))
    );

    // Block every write to the queue: SQLite's write lock, or PostgreSQL's table lock that
    // lets reads through.
    sqlx::any::install_default_drivers();
    let url = env.database_url(SeatSvc::NAME).unwrap();
    let mut lock = sqlx::AnyConnection::connect(&url).await.unwrap();
    if url.starts_with("sqlite:") {
        lock.execute("BEGIN EXCLUSIVE").await.unwrap();
    } else {
        lock.execute("BEGIN").await.unwrap();
        lock.execute("LOCK TABLE queue_tokens IN EXCLUSIVE MODE")
            .await
            .unwrap();
    }
    for (user, t, status) in [("ann", &active, "active"), ("ben", &waiting, "waiting")] {
        let path = format!("/queue/{}", t["token"].as_str().unwrap());
        let answer = tokio::time::timeout(WAIT / 3, api.get(&path, Some(&env.user(user))))
            .await
            .unwrap_or_else(|_| panic!("{user}'s poll waited for the writer"))
            .unwrap()
            .expect(200);
        assert_eq!(answer.str("status"), status);
    }
    drop(lock);
}
